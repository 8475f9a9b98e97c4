//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mkube/pkg/driver"
	dockerdriver "mkube/pkg/driver/docker"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/driver/kvm2"
	"mkube/pkg/release"
)

// itestOwner marks what the driver suites create, as a home's ID and a profile would.
func itestOwner(profile string) driver.Owner {
	return driver.Owner{HomeID: "17e5700000000000000000000000d21e", Profile: profile}
}

// TestDriverConformanceDocker runs the driver suite against the real Docker engine.
func TestDriverConformanceDocker(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		New: func(dir string) (driver.Driver, error) {
			return dockerdriver.New("itest-drv-docker", driver.Options{MachineDir: dir, Owner: itestOwner("itest-drv-docker")})
		},
		// The same profile from another home: refused, the container left running.
		Intruder: func(dir string) (driver.Driver, error) {
			return dockerdriver.New("itest-drv-docker", driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "itestdrvdockerothr", Profile: "itest-drv-docker"}})
		},
		Spec:    driver.Spec{Name: "itest-drv-docker", CPUs: 2, MemoryMB: 2048, Image: dockerdriver.DefaultImage(), APIServerPort: 8443},
		Timeout: 5 * time.Minute,
	})
}

// needLibvirt fails (not skips) when libvirtd is not there: `make integration` starts it.
func needLibvirt(t *testing.T) {
	t.Helper()
	if h := kvm2.Health(t.Context(), driver.Settings{}); !h.Healthy {
		t.Fatalf("kvm2 tests need libvirtd (hack/libvirt-up.sh starts it): %s — %s", h.Problem, h.Fix)
	}
}

// TestDriverConformanceKVM2 runs the same suite against libvirt/QEMU with the ISO `make iso` built.
func TestDriverConformanceKVM2(t *testing.T) {
	needLibvirt(t)
	iso := outPath(t, release.ISOName())
	drivertest.Run(t, drivertest.Config{
		New: func(dir string) (driver.Driver, error) {
			return kvm2.New("itest-drv-kvm2", driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "itestdrvkvm2home"}, Log: t.Logf})
		},
		// The same profile from another home: refused, the domain left running.
		Intruder: func(dir string) (driver.Driver, error) {
			return kvm2.New("itest-drv-kvm2", driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "itestdrvkvm2othr"}, Log: t.Logf})
		},
		Spec:    driver.Spec{Name: "itest-drv-kvm2", CPUs: 2, MemoryMB: 2048, DiskMB: 4096, Image: iso, APIServerPort: 8443},
		Timeout: 15 * time.Minute,
	})
}

// virsh runs virsh on the system connection.
func virsh(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := runErr("virsh", append([]string{"-c", kvm2.DefaultURI}, args...)...)
	return out
}

// TestKVM2Cluster is the docker driver's day on a VM under software emulation: start offline from
// the ISO, ssh, ip, a NodePort app at the node's address, stop/start keeping it, delete leaving no
// domain, volume or network; and bad input failing before anything is created.
//
// CI starts one VM. MKUBE_ITEST_KVM2_NODES=2 (make test-kvm2-nodes) adds a worker VM and checks
// pod traffic between the VMs: two VMs under emulation on 2 cores take about 35 minutes, too long
// and too close to the wait timeouts for every CI run.
func TestKVM2Cluster(t *testing.T) {
	needLibvirt(t)
	nodes := 1
	if os.Getenv("MKUBE_ITEST_KVM2_NODES") == "2" {
		nodes = 2
	}
	c := newCluster(t, serveMirror(t))
	const p = "itest-kvm"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	t.Cleanup(func() { c.dumpOnFailure(p) })

	t.Run("bad input", func(t *testing.T) {
		dir := t.TempDir()
		wrong := filepath.Join(dir, "wrong.iso")
		os.WriteFile(wrong, []byte("not the ISO"), 0o644)
		os.WriteFile(wrong+".sha256", []byte(strings.Repeat("0", 64)+"\n"), 0o644)
		host := hostMemoryMB(t)
		for _, tt := range []struct {
			name string
			env  []string
			args []string
			code int
			want string
		}{
			{"iso 404", nil, []string{"--iso-url", "http://" + c.mirror + "/release/nosuch.iso"}, 40, "INET_DOWNLOAD"},
			{"iso checksum", nil, []string{"--iso-url", wrong}, 40, "checksum mismatch"},
			{"memory", nil, []string{"--memory", fmt.Sprintf("%dmb", host*2)}, 23, "RSRC_INSUFFICIENT_MEMORY"},
			{"libvirtd down", nil, []string{"--kvm-qemu-uri=qemu:///system?socket=/nonexistent/libvirt-sock"}, 63, "libvirtd is not running"},
		} {
			cmd := execMkube(t, c, tt.env, append(append([]string{"start", "-p", "itest-kvm-bad", "--driver=kvm2"}, c.mirrorFlags()...), tt.args...)...)
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); err == nil || code != tt.code {
				t.Errorf("%s: exit %d, want %d\n%s", tt.name, code, tt.code, out)
			}
			if n := strings.Count(string(out), "Exiting due to"); n != 1 || !strings.Contains(string(out), tt.want) {
				t.Errorf("%s: want one error line with %q:\n%s", tt.name, tt.want, out)
			}
		}
		if strings.Contains(virsh(t, "list", "--all", "--name"), "itest-kvm-bad") {
			t.Error("bad input left a domain behind")
		}
		if _, err := os.Stat(filepath.Join(c.home, "profiles", "itest-kvm-bad")); err == nil {
			t.Error("bad input left a profile behind")
		}
	})

	// From here on the release binary, alone in a directory, with the ISO, the Kubernetes binaries
	// and images all from the release's registry.
	r := publishRelease(t)
	c.bin = releaseBinary(t, r)
	start := time.Now()
	// Two VMs under software emulation on 2 cores: a start takes about 12 minutes here. The bridge
	// CNI (no NetworkPolicy DaemonSet) keeps it to what this test checks; TestMultiNode covers
	// kube-router on the docker driver.
	c.timeout = 25 * time.Minute
	out := c.must("start", "-p", p, "--driver=kvm2", fmt.Sprintf("--nodes=%d", nodes), "--cni=bridge", "--memory=3072mb", "--mirror="+r.mirror())
	t.Logf("kvm2 start under %s: %s", map[bool]string{true: "kvm", false: "software emulation"}[!strings.Contains(out, "software emulation")], time.Since(start).Round(time.Second))
	if !strings.Contains(out, "Creating kvm2 VM") || !strings.Contains(out, "Done!") || !strings.Contains(out, "Getting VM image mkube-"+r.Version+"-amd64.iso") {
		t.Errorf("start output:\n%s", out)
	}
	ip := strings.TrimSpace(c.must("-p", p, "ip"))

	t.Run("node Ready, ssh and ip", func(t *testing.T) {
		got := c.kubectl(p, "get", "nodes", "-o", `jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address} {.items[0].status.conditions[?(@.type=="Ready")].status}`)
		if got != ip+" True" {
			t.Errorf("node: %q, want %q", got, ip+" True")
		}
		if !strings.HasPrefix(ip, "192.168.39.") {
			t.Errorf("ip %s is not on mkube's libvirt network", ip)
		}
		if out := c.must("-p", p, "ssh", "--", "uname", "-a"); !strings.Contains(out, "Linux "+p) {
			t.Errorf("ssh uname: %s", out)
		}
		if out := c.must("-p", p, "ssh", "stat -fc %T /sys/fs/cgroup"); strings.TrimSpace(out) != "cgroup2fs" {
			t.Errorf("the guest is not on cgroup v2: %s", out)
		}
		if nodes == 1 {
			return
		}
		// The second VM joined as a worker, on the same network, reached by ssh -n.
		if got := c.kubectl(p, "get", "node", p+"-m02", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
			t.Errorf("worker %s Ready = %q", p+"-m02", got)
		}
		if out := c.must("-p", p, "ssh", "-n", p+"-m02", "--", "hostname"); strings.TrimSpace(out) != p+"-m02" {
			t.Errorf("ssh -n %s hostname: %s", p+"-m02", out)
		}
	})

	agnhost := "registry.k8s.io/e2e-test-images/agnhost:" + agnhostVersion(t)
	answers := func() string {
		body, err := get(strings.TrimSpace(c.must("-p", p, "service", "echo", "--url"))+"/hostname", "")
		if err != nil || !strings.HasPrefix(body, "echo-") {
			return fmt.Sprintf("%v %q", err, body)
		}
		return ""
	}
	t.Run("NodePort app at mkube ip", func(t *testing.T) {
		c.must("-p", p, "cache", "add", agnhost)
		c.kubectl(p, "create", "deployment", "echo", "--image="+agnhost, "--", "/agnhost", "netexec", "--http-port=8080")
		c.kubectl(p, "expose", "deployment", "echo", "--type=NodePort", "--port=8080")
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=300s")
		eventually(t, 2*time.Minute, answers)
	})

	crossVM := func(t *testing.T) {
		c.kubectl(p, "run", "srv", "--image="+agnhost, `--overrides={"spec":{"nodeName":"`+p+`"}}`, "--", "netexec", "--http-port=8080")
		c.kubectl(p, "wait", "--for=condition=Ready", "pod/srv", "--timeout=300s")
		srv := c.kubectl(p, "get", "pod", "srv", "-o", "jsonpath={.status.podIP}")
		// Ready is not listening: under emulation netexec takes seconds to open its port, so the
		// client asks again until it answers, as any client would.
		c.kubectl(p, "run", "client", "--image="+agnhost, "--restart=Never", `--overrides={"spec":{"nodeName":"`+p+`-m02"}}`, "--command", "--",
			"sh", "-c", "for i in $(seq 1 60); do /agnhost connect --timeout=5s "+srv+":8080 && exit 0; sleep 2; done; exit 1")
		eventually(t, 5*time.Minute, func() string {
			if phase := c.kubectl(p, "get", "pod", "client", "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
				return "client pod on the worker: " + phase
			}
			return ""
		})
	}
	if nodes == 2 {
		t.Run("a pod on the worker VM reaches a pod on the primary", crossVM)
	}

	t.Run("stop and start keep the app", func(t *testing.T) {
		c.must("-p", p, "stop")
		for _, n := range []string{p, p + "-m02"}[:nodes] {
			if out := virsh(t, "domstate", n); !strings.Contains(out, "shut off") {
				t.Errorf("after stop the domain %s is %q", n, out)
			}
		}
		start := time.Now()
		c.must("-p", p, "start")
		t.Logf("restart: %s", time.Since(start).Round(time.Second))
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=300s")
		eventually(t, 3*time.Minute, answers)
	})

	t.Run("delete leaves nothing behind", func(t *testing.T) {
		// With the profile's record lost (a home restored from backup, a crash before a save),
		// the delete still finds the worker: it carries the profile's mark and name.
		if err := os.Remove(filepath.Join(c.home, "profiles", p, "config.json")); err != nil {
			t.Fatal(err)
		}
		c.must("-p", p, "delete")
		if out := virsh(t, "list", "--all", "--name"); strings.Contains(out, p) {
			t.Errorf("domain left (the worker's too): %s", out)
		}
		if out := virsh(t, "net-list", "--all", "--name"); strings.Contains(out, kvm2.PrivateNetwork) {
			t.Errorf("network left: %s", out)
		}
		if out := virsh(t, "vol-list", kvm2.Pool); strings.Contains(out, p+"-") {
			t.Errorf("volumes left: %s", out)
		}
	})
}

func hostMemoryMB(t *testing.T) int {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var kb int
	fmt.Sscanf(strings.SplitN(string(raw), "\n", 2)[0], "MemTotal: %d kB", &kb)
	return kb / 1024
}
