//go:build integration

package integration

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mkube/pkg/cache"
	"mkube/pkg/driver"
	dockerdriver "mkube/pkg/driver/docker"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/driver/sshdriver"
	"mkube/pkg/ssh"
)

// sshHostImage is a "bare" Linux machine: mkube's node image with mkube's runtime taken out —
// Debian with systemd, sshd, sudo, iptables, conntrack and the other tools a node needs from its
// operating system, and no containerd, runc, CNI plugins, kubelet or their configuration. The
// login user docker has passwordless sudo, as on a Vagrant box or a cloud VM.
const sshHostImage = "mkube-itest/ssh-host:latest"

// bareScript removes mkube's runtime from a copy of the node image.
const bareScript = `set -e
dpkg --purge runc containernetworking-plugins >/dev/null
rm -f /usr/local/bin/containerd /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr \
  /usr/local/bin/mkube-docker-dns /usr/local/bin/mkube-kubelet-cgroup
rm -rf /etc/containerd /etc/crictl.yaml /etc/sysctl.d/99-kubernetes.conf /etc/modules-load.d/kubernetes.conf \
  /etc/systemd/system/containerd.service /etc/systemd/system/kubelet.service /etc/systemd/system/kubelet.service.d \
  /etc/systemd/system/mkube-docker-dns.service /etc/systemd/system/multi-user.target.wants/containerd.service \
  /etc/systemd/system/multi-user.target.wants/kubelet.service /etc/systemd/system/multi-user.target.wants/mkube-docker-dns.service
`

// buildSSHHostImage makes sshHostImage from the node image `make node-image` built.
func buildSSHHostImage(t *testing.T) {
	t.Helper()
	name := "mkube-itest-ssh-build"
	docker("rm", "-f", name)
	run(t, "docker", "run", "--name", name, "--entrypoint", "sh", dockerdriver.DefaultImage(), "-c", bareScript)
	defer docker("rm", "-f", name)
	run(t, "docker", "commit", "--change", `ENTRYPOINT ["/sbin/init"]`, "--change", "CMD []", name, sshHostImage)
	t.Cleanup(func() { docker("rmi", sshHostImage) }) // after the machine made from it (cleanups run last first)
}

// sshHost is a machine for the ssh driver: a container running systemd and sshd on a network of
// its own, with /var on a volume (containerd's overlayfs cannot nest in the container's own) and
// the node container's capabilities (pkg/driver/docker: every one the host grants, not
// --privileged, which hosts without CAP_SYS_RESOURCE refuse).
type sshHost struct {
	name       string
	ip         string
	key        string // the login's private key
	authorized string // its authorized_keys line on the machine
}

func newSSHHost(t *testing.T, name string) *sshHost {
	t.Helper()
	h := &sshHost{name: name, key: filepath.Join(t.TempDir(), "id_ed25519")}
	for _, args := range [][]string{{"rm", "-f", name}, {"volume", "rm", name}, {"network", "rm", name}} {
		docker(args...)
	}
	t.Cleanup(func() {
		for _, args := range [][]string{{"rm", "-f", "-v", name}, {"volume", "rm", name}, {"network", "rm", name}} {
			docker(args...)
		}
	})
	run(t, "docker", "network", "create", name)
	args := []string{"run", "-d", "--name", name, "--hostname", name, "--network", name,
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined", "--security-opt", "label=disable", "--security-opt", "systempaths=unconfined",
		"--device", "/dev/kmsg", "--device-cgroup-rule", "a *:* rwm", "--stop-signal", "SIGRTMIN+3",
		"--tmpfs", "/run:rw,nosuid,nodev", "--tmpfs", "/tmp:rw,nosuid,nodev", "-e", "container=docker",
		"-v", name + ":/var", "-v", "/lib/modules:/lib/modules:ro"}
	if out, _ := runErr("stat", "-fc", "%T", "/sys/fs/cgroup/"); strings.TrimSpace(out) == "cgroup2fs" {
		args = append(args, "--cgroupns", "private")
	} else {
		args = append(args, "-v", "/sys/fs/cgroup:/sys/fs/cgroup")
	}
	run(t, "docker", append(args, sshHostImage)...)
	h.ip = strings.TrimSpace(run(t, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
	gw := strings.TrimSpace(run(t, "docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", name))
	key, pub, err := ssh.EnsureKey(filepath.Dir(h.key)) // a user's key pair, as ssh-keygen makes it
	if err != nil {
		t.Fatal(err)
	}
	h.key, h.authorized = key, strings.TrimSpace(pub)
	// Docker points a container's resolver at its embedded DNS server on 127.0.0.11, which
	// answers only in the container's own network namespace: CoreDNS would forward to itself
	// and stop on its loop check. A VM or a bare-metal machine has a resolver on its network;
	// this one names the network's gateway (nothing here needs names from outside).
	h.exec(t, "echo 'nameserver "+gw+"' > /etc/resolv.conf; install -d -o docker -g docker -m 700 /home/docker/.ssh; echo '"+h.authorized+
		"' > /home/docker/.ssh/authorized_keys; chown docker:docker /home/docker/.ssh/authorized_keys")
	eventually(t, time.Minute, func() string {
		out, err := docker("exec", name, "systemctl", "is-active", "ssh")
		if err != nil {
			return "sshd: " + out
		}
		return ""
	})
	return h
}

// exec runs a shell script in the machine as root.
func (h *sshHost) exec(t *testing.T, script string) string {
	t.Helper()
	return run(t, "docker", "exec", h.name, "sh", "-c", script)
}

// listing is every file on the machine's disks with its mode and size, leaving out what any
// running Linux machine changes by itself (the journal, systemd's own state), the SSH host keys
// (which TestSSHDriver itself regenerates) and the kernel's and runtime's virtual file systems,
// which checks of their own cover (see leftovers).
func (h *sshHost) listing(t *testing.T) string {
	t.Helper()
	return h.exec(t, `find / /var -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/log/journal -o -path /var/lib/systemd -o -path '/etc/ssh/ssh_host_*' \) -prune -o -printf '%p %M %s\n' | sort`)
}

// leftovers is what the node's runtime leaves outside the disks: processes, mounts, the bridge,
// iptables chains, mkube's /etc/hosts line and /run directories. Empty when there are none.
func (h *sshHost) leftovers(t *testing.T) string {
	t.Helper()
	return h.exec(t, `ps -eo comm | grep -E '^(containerd|kubelet|kube-|etcd|coredns|pause|agnhost)' ;
findmnt -rn -o TARGET | grep -E 'containerd|kubelet|netns' ;
ip -o link show cni0 2>/dev/null ;
iptables-save | grep -E 'KUBE-|CNI-|"mkube: ' ;
grep mkube.internal /etc/hosts ;
ls -d /run/containerd /run/nri /run/netns 2>/dev/null ;
true`)
}

// TestSSHDriver runs the user's day on a machine that already runs Linux, reached over SSH by a
// user with sudo: mkube installs its runtime from its cache, and the cluster passes the docker
// driver's checks (NodePort, DNS, a PVC, stop/start); delete leaves the machine as it was.
func TestSSHDriver(t *testing.T) {
	buildSSHHostImage(t)
	h := newSSHHost(t, "mkube-itest-ssh")
	c := newCluster(t, serveMirror(t))
	const p = "itest-ssh"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	flags := []string{"start", "-p", p, "--driver=ssh", "--ssh-ip-address=" + h.ip, "--ssh-user=docker", "--ssh-key=" + h.key}
	before := h.listing(t)

	t.Run("hostile or missing settings are refused in one line", func(t *testing.T) {
		for _, bad := range [][]string{{"--ssh-ip-address=" + h.ip + ";reboot"}, {"--ssh-ip-address=" + h.ip, "--ssh-user=root -oProxyCommand=x"}, {"--ssh-ip-address=" + h.ip, "--ssh-port=0"}} {
			args := append([]string{"start", "-p", p + "-bad", "--driver=ssh", "--ssh-key=" + h.key}, bad...)
			if out, code := c.run(args...); code == 0 || strings.Count(strings.TrimSpace(out), "\n") > 3 {
				t.Errorf("%v: exit %d\n%s", bad, code, out)
			}
		}
		if out, code := c.run("start", "-p", p+"-bad", "--driver=ssh"); code == 0 || !strings.Contains(out, "--ssh-ip-address") {
			t.Errorf("no address: exit %d\n%s", code, out)
		}
		c.run("delete", "-p", p+"-bad")
	})

	t.Run("a file mkube did not install is refused, and nothing is written", func(t *testing.T) {
		h.exec(t, "mkdir -p /usr/local/sbin && echo 'the machine s own runc' > /usr/local/sbin/runc && chmod 755 /usr/local/sbin/runc")
		out, code := c.run(append(flags, c.mirrorFlags()...)...)
		if code == 0 || !strings.Contains(out, "/usr/local/sbin/runc") || !strings.Contains(out, "not installed by mkube") {
			t.Errorf("start over a foreign runc: exit %d\n%s", code, out)
		}
		if got := h.exec(t, "cat /usr/local/sbin/runc; ls /var/lib/mkube 2>&1 || true"); !strings.Contains(got, "the machine s own runc") || !strings.Contains(got, "No such file") {
			t.Errorf("after the refusal: %s", got)
		}
		h.exec(t, "rm /usr/local/sbin/runc")
		c.run("delete", "-p", p)
	})

	out := c.must(append(flags, c.mirrorFlags()...)...)
	for _, want := range []string{"Using the ssh driver", "Installing the container runtime", "Done!"} {
		if !strings.Contains(out, want) {
			t.Errorf("start output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(c.must("-p", p, "ip")); got != h.ip {
		t.Errorf("mkube ip = %q, want %s", got, h.ip)
	}

	t.Run("the runtime came from mkube, recorded on the machine", func(t *testing.T) {
		// The bare machine has none of these: each must be mkube's install, not a copy it left alone.
		m := h.exec(t, "cat /var/lib/mkube/installed")
		for _, want := range []string{"\nfile /usr/local/bin/containerd ", "\nfile /usr/local/sbin/runc ", "\nfile /opt/cni/bin/bridge ",
			"\nfile /etc/containerd/config.toml ", "\nclaim /usr/local/bin/kubelet\n", "\nunit kubelet.service\n", "\ncomplete\n"} {
			if !strings.Contains(m, want) {
				t.Errorf("the manifest lacks %q:\n%s", want, m)
			}
		}
	})

	t.Run("node Ready, system pods running", func(t *testing.T) {
		got := c.kubectl(p, "get", "nodes", "-o", `jsonpath={.items[0].metadata.name} {.items[0].status.conditions[?(@.type=="Ready")].status}`)
		if got != p+" True" {
			t.Errorf("nodes: %q", got)
		}
		eventually(t, 2*time.Minute, func() string {
			phases := c.kubectl(p, "get", "pods", "-n", "kube-system", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{" "}{end}`)
			for _, f := range strings.Fields(phases) {
				if !strings.HasSuffix(f, "=Running") {
					return "not running: " + f
				}
			}
			return ""
		})
	})

	t.Run("ssh logs in as the user with the user's key", func(t *testing.T) {
		if got := strings.TrimSpace(c.must("-p", p, "ssh", "--", "whoami")); got != "docker" {
			t.Errorf("whoami = %q", got)
		}
		if got := h.exec(t, "cat /home/docker/.ssh/authorized_keys"); got != h.authorized+"\n" {
			t.Errorf("mkube changed the user's authorized_keys:\n%s", got)
		}
	})

	agnhost := "registry.k8s.io/e2e-test-images/agnhost:" + agnhostVersion(t)
	c.must("-p", p, "cache", "add", agnhost)
	answers := c.echoAnswers(p, h.ip)
	t.Run("NodePort service answers at mkube ip", func(t *testing.T) {
		c.kubectl(p, "create", "deployment", "echo", "--image="+agnhost, "--", "/agnhost", "netexec", "--http-port=8080")
		c.kubectl(p, "expose", "deployment", "echo", "--type=NodePort", "--port=8080")
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=120s")
		eventually(t, time.Minute, answers)
	})

	t.Run("a pod resolves kubernetes.default through CoreDNS", func(t *testing.T) { c.checkDNS(t, p, agnhost) })

	var written string
	t.Run("a PersistentVolumeClaim is provisioned and written", func(t *testing.T) {
		written = c.checkPVC(t, p, agnhost, 120*time.Second)
	})

	t.Run("stop and start keep workloads and data", func(t *testing.T) {
		c.must("-p", p, "stop")
		if _, code := c.run("-p", p, "status"); code != 7 {
			t.Errorf("status of a stopped cluster exits %d, want 7", code)
		}
		if got := strings.Fields(h.exec(t, "systemctl is-active containerd kubelet || true")); !slices.Equal(got, []string{"inactive", "inactive"}) {
			t.Errorf("containerd and kubelet after stop: %v", got)
		}
		if got := strings.TrimSpace(h.exec(t, "ps -eo comm | grep -cE '^(kube-apiserver|etcd|containerd-shim)' || true")); got != "0" {
			t.Errorf("%s control-plane or shim processes left running after stop", got)
		}
		c.must("-p", p, "start")
		eventually(t, 2*time.Minute, answers)
		c.checkVolumeKept(t, p, written)
	})

	t.Run("a changed host key is refused until the user accepts it", func(t *testing.T) {
		h.exec(t, "rm /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; systemctl restart ssh")
		known := filepath.Join(c.home, "machines", p, "known_hosts")
		if out, code := c.run("-p", p, "start"); code == 0 || !strings.Contains(out, "host key of docker@"+h.ip+":22 changed") || !strings.Contains(out, known) {
			t.Errorf("start after the key changed: exit %d\n%s", code, out)
		}
		os.Remove(known)
		c.must("-p", p, "start")
	})

	t.Run("delete removes exactly what mkube installed", func(t *testing.T) {
		c.must("delete", "-p", p)
		if after := h.listing(t); after != before {
			t.Errorf("the machine's files differ after delete:\n%s", lineDiff(before, after))
		}
		if left := strings.TrimSpace(h.leftovers(t)); left != "" {
			t.Errorf("left on the machine after delete:\n%s", left)
		}
		if _, code := c.run("-p", p, "status"); code != 85 {
			t.Errorf("status of a deleted profile exits %d, want 85", code)
		}
		if got := h.exec(t, "systemctl is-active ssh"); strings.TrimSpace(got) != "active" {
			t.Errorf("sshd after delete: %s", got)
		}
	})

	t.Run("installed again on the same machine, deleted while stopped: nothing left either", func(t *testing.T) {
		c.must(append(flags, c.mirrorFlags()...)...)
		c.must("-p", p, "stop")
		c.must("delete", "-p", p)
		if after := h.listing(t); after != before {
			t.Errorf("the machine's files differ after delete:\n%s", lineDiff(before, after))
		}
		if left := strings.TrimSpace(h.leftovers(t)); left != "" {
			t.Errorf("left on the machine after delete:\n%s", left)
		}
	})
}

// lineDiff lists the lines only in a (-) or only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ia, ib := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !ib[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ia[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDriverConformanceSSH runs the driver suite against a bare machine as root, with the runtime
// from the local engine's node image, as a development build's start gives it.
func TestDriverConformanceSSH(t *testing.T) {
	buildSSHHostImage(t)
	h := newSSHHost(t, "mkube-itest-drv-ssh")
	h.exec(t, "install -d -m 700 /root/.ssh && cp /home/docker/.ssh/authorized_keys /root/.ssh/")
	before := h.listing(t)
	settings := driver.Settings{"ssh-ip-address": h.ip, "ssh-user": "root", "ssh-key": h.key, "ssh-port": "22"}
	nodeFiles := func(ctx context.Context, w io.Writer) error {
		return cache.DockerFiles(ctx, dockerdriver.DefaultImage(), t.TempDir(), w)
	}
	drivertest.Run(t, drivertest.Config{
		New: func(dir string) (driver.Driver, error) {
			return sshdriver.New("itest-drv-ssh", driver.Options{MachineDir: dir, Owner: itestOwner("itest-drv-ssh"), Settings: settings, Log: t.Logf})
		},
		// The same profile from another home: refused, the runtime left running.
		Intruder: func(dir string) (driver.Driver, error) {
			return sshdriver.New("itest-drv-ssh", driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "itestdrvsshother", Profile: "itest-drv-ssh"}, Settings: settings})
		},
		Spec:    driver.Spec{Name: "itest-drv-ssh", APIServerPort: 8443, NodeFiles: nodeFiles},
		Timeout: 5 * time.Minute,
	})
	// The suite's own file (/var/lib/mkube-drivertest) is its, not the driver's: it goes here.
	h.exec(t, "rm -rf /var/lib/mkube-drivertest")
	if after := h.listing(t); after != before {
		t.Errorf("the machine's files differ after the suite:\n%s", lineDiff(before, after))
	}
}
