//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mkube/pkg/driver"
	dockerdriver "mkube/pkg/driver/docker"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/driver/podman"
)

// needPodman skips — saying why — when rootful Podman's API service is not usable here
// (hack/podman-up.sh installs and starts it), and makes sure Podman holds the node image: a
// development build has no registry to pull it from, so the one `make node-image` built into
// Docker is copied over, as a user would with `docker save | podman load`.
func needPodman(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed: hack/podman-up.sh installs Debian's podman and starts its API service")
	}
	if h := podman.Health(t.Context()); !h.Healthy {
		t.Skipf("rootful Podman is not usable here (hack/podman-up.sh starts its API service): %s — %s", h.Problem, h.Fix)
	}
	img := dockerdriver.DefaultImage()
	if _, err := runErr("podman", "image", "exists", img); err == nil {
		return
	}
	if _, err := docker("image", "inspect", img); err != nil {
		t.Fatalf("the node image %s is in neither Podman nor Docker: `make node-image` builds it into Docker", img)
	}
	archive := filepath.Join(t.TempDir(), "node.tar")
	run(t, "docker", "save", "-o", archive, img)
	run(t, "podman", "load", "-i", archive)
}

// TestDriverConformancePodman runs the driver suite against rootful Podman's compat API.
func TestDriverConformancePodman(t *testing.T) {
	needPodman(t)
	drivertest.Run(t, drivertest.Config{
		New: func(dir string) (driver.Driver, error) {
			return podman.New("itest-drv-podman", driver.Options{MachineDir: dir, Owner: itestOwner("itest-drv-podman")})
		},
		// The same profile from another home: refused, the container left running.
		Intruder: func(dir string) (driver.Driver, error) {
			return podman.New("itest-drv-podman", driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "itestdrvpodmanothr", Profile: "itest-drv-podman"}})
		},
		Spec:    driver.Spec{Name: "itest-drv-podman", CPUs: 2, MemoryMB: 2048, Image: dockerdriver.DefaultImage(), APIServerPort: 8443},
		Timeout: 5 * time.Minute,
	})
}

// podmanObject says whether Podman has a container, network or volume of that name.
func podmanObject(kind, name string) bool {
	_, err := runErr("podman", kind, "exists", name)
	return err == nil
}

// TestPodmanDriver is TestCluster's day on rootful Podman: picked automatically when Docker is
// absent, a NodePort app at mkube ip, DNS, a PersistentVolumeClaim, stop/start keeping them, and a
// delete that leaves no container, network or volume; with neither Docker nor Podman (nor a VM
// driver) usable, the error names both; the user's own Podman volume or network named like a
// profile is refused and left alone; a start killed with SIGKILL while its container is created
// resumes beside the first cluster.
func TestPodmanDriver(t *testing.T) {
	needPodman(t)
	c := newCluster(t, serveMirror(t))
	const p = "itest-podman"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	t.Cleanup(func() { c.dumpOnFailure(p) })
	// Docker is absent as far as mkube can tell: auto-selection must pick Podman.
	noDocker := []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}

	t.Run("neither Docker nor Podman", func(t *testing.T) {
		env := append(noDocker, "CONTAINER_HOST=unix:///nonexistent/podman.sock")
		cmd := execMkube(t, c, env, append([]string{"start", "-p", "itest-podman-none", "--kvm-qemu-uri=qemu:///system?socket=/nonexistent/libvirt-sock"}, c.mirrorFlags()...)...)
		out, err := cmd.CombinedOutput()
		if code := exitCode(err); code != 55 {
			t.Errorf("exit %d, want 55 (DRV_NOT_DETECTED)\n%s", code, out)
		}
		for _, want := range []string{"DRV_NOT_DETECTED", "docker: ", "podman: ", "install Docker or Podman"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the error lacks %q:\n%s", want, out)
			}
		}
		if podmanObject("container", "itest-podman-none") {
			t.Error("a failed start left a container behind")
		}
	})

	t.Run("the user's own Podman objects named like a profile are refused", func(t *testing.T) {
		for _, kind := range []string{"volume", "network"} {
			name := "itest-podman-user" + kind
			run(t, "podman", kind, "create", name)
			t.Cleanup(func() { runErr("podman", kind, "rm", name) })
			out, code := c.run(append([]string{"start", "-p", name, "--driver=podman"}, c.mirrorFlags()...)...)
			if code != 11 || !strings.Contains(out, "MK_CONFLICT") || !strings.Contains(out, fmt.Sprintf("Podman %s %q", kind, name)) {
				t.Errorf("start beside the user's %s: exit %d, want 11 (MK_CONFLICT) naming it\n%s", kind, code, out)
			}
			if podmanObject("container", name) {
				t.Errorf("a container was created beside the user's %s", kind)
			}
			if !podmanObject(kind, name) {
				t.Errorf("the user's %s is gone", kind)
			}
		}
	})

	start := time.Now()
	c.extraEnv = noDocker
	out := c.must(append([]string{"start", "-p", p}, c.mirrorFlags()...)...)
	t.Logf("podman start: %s", time.Since(start).Round(time.Second))
	for _, want := range []string{"Automatically selected the podman driver", "Creating podman container", "Done!"} {
		if !strings.Contains(out, want) {
			t.Errorf("start output lacks %q:\n%s", want, out)
		}
	}
	c.extraEnv = nil
	ip := strings.TrimSpace(c.must("-p", p, "ip"))

	t.Run("node Ready, ports on loopback only", func(t *testing.T) {
		got := c.kubectl(p, "get", "nodes", "-o", `jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address} {.items[0].status.conditions[?(@.type=="Ready")].status}`)
		if got != ip+" True" {
			t.Errorf("node: %q, want %q", got, ip+" True")
		}
		ports := run(t, "podman", "port", p)
		for _, l := range strings.Split(strings.TrimSpace(ports), "\n") {
			if !strings.Contains(l, "-> 127.0.0.1:") {
				t.Errorf("a port is published beyond loopback: %s", l)
			}
		}
		if out := c.must("-p", p, "ssh", "--", "uname", "-a"); !strings.Contains(out, "Linux "+p) {
			t.Errorf("ssh uname: %s", out)
		}
	})

	agnhost := "registry.k8s.io/e2e-test-images/agnhost:" + agnhostVersion(t)
	nodePortURL := func() string { return c.nodePortURL(p, ip) }
	answers := c.echoAnswers(p, ip)
	t.Run("NodePort app at mkube ip", func(t *testing.T) {
		c.must("-p", p, "cache", "add", agnhost)
		c.kubectl(p, "create", "deployment", "echo", "--image="+agnhost, "--", "/agnhost", "netexec", "--http-port=8080")
		c.kubectl(p, "expose", "deployment", "echo", "--type=NodePort", "--port=8080")
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=180s")
		eventually(t, 2*time.Minute, answers)
		if out := strings.TrimSpace(c.must("-p", p, "service", "echo", "--url")); out+"/hostname" != nodePortURL() {
			t.Errorf("service --url = %q, want %q", out, nodePortURL())
		}
	})

	t.Run("a pod resolves kubernetes.default through CoreDNS", func(t *testing.T) { c.checkDNS(t, p, agnhost) })

	t.Run("image load takes an image from Podman, not Docker", func(t *testing.T) {
		// An image only Podman has (one file, imported: nothing to pull).
		const img = "localhost/mkube-itest/podman-only:1"
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from podman\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tarball := filepath.Join(dir, "rootfs.tar")
		run(t, "tar", "-C", dir, "-cf", tarball, "hello")
		run(t, "podman", "import", tarball, img)
		t.Cleanup(func() { runErr("podman", "rmi", "-f", img) })
		c.must("-p", p, "image", "load", img)
		if ls := c.must("-p", p, "image", "ls"); !strings.Contains(ls, img) {
			t.Errorf("image ls lacks %s after image load:\n%s", img, ls)
		}
	})

	var written string
	t.Run("a PersistentVolumeClaim is provisioned and written", func(t *testing.T) {
		written = c.checkPVC(t, p, agnhost, 180*time.Second)
	})

	t.Run("stop and start keep workloads and data", func(t *testing.T) {
		c.must("-p", p, "stop")
		if out := strings.TrimSpace(run(t, "podman", "inspect", "-f", "{{.State.Status}}", p)); out != "exited" && out != "stopped" {
			t.Errorf("after stop the container is %q", out)
		}
		if _, code := c.run("-p", p, "status"); code != 7 {
			t.Errorf("status of a stopped cluster exits %d, want 7", code)
		}
		start := time.Now()
		c.must("-p", p, "start")
		t.Logf("restart: %s", time.Since(start).Round(time.Second))
		eventually(t, 3*time.Minute, answers)
		c.checkVolumeKept(t, p, written)
	})

	t.Run("a start killed while the container is created resumes", func(t *testing.T) {
		const k = p + "-kill"
		t.Cleanup(func() { c.run("delete", "-p", k) })
		c.startUntil("Creating podman container", append([]string{"start", "-p", k, "--driver=podman"}, c.mirrorFlags()...)...)
		c.must("-p", k, "start")
		if got := c.kubectl(k, "get", "nodes", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`); got != "True" {
			t.Errorf("node Ready = %q after resuming", got)
		}
		if answers() != "" {
			t.Error("the second profile broke the first one's app")
		}
		c.must("delete", "-p", k)
	})

	t.Run("delete leaves nothing behind", func(t *testing.T) {
		c.must("delete", "-p", p)
		for _, kind := range []string{"container", "network", "volume"} {
			if podmanObject(kind, p) {
				t.Errorf("podman %s %s still exists after delete", kind, p)
			}
		}
		if out := run(t, "podman", "ps", "-a", "--filter", "label="+driver.LabelProfile+"="+p, "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("containers of the profile left: %s", out)
		}
		if _, code := c.run("-p", p, "status"); code != 85 {
			t.Errorf("status of a deleted profile exits %d, want 85", code)
		}
	})
}
