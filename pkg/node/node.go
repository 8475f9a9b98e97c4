// Package node is everything mkube runs inside a node, over the driver's Runner: files, the
// container runtime and the kubelet, images in containerd, cgroup facts, the login key, the
// image list of a Kubernetes version and the log sections of `mkube logs`. Nothing here knows
// which driver booted the node, nor how the host reached it.
package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"mkube/pkg/driver"
)

// Paths inside the node.
const (
	// StateDir holds mkube's markers, on the node's persistent /var.
	StateDir = "/var/lib/mkube"
	// BinDir holds kubeadm, kubelet and kubectl of the cluster's version.
	BinDir = "/usr/local/bin"
	// LoginUser is the node's SSH user (minikube's "docker").
	LoginUser = "docker"
)

// Output runs a command and returns its stdout.
func Output(ctx context.Context, r driver.Runner, args ...string) (string, error) {
	var stdout bytes.Buffer
	err := r.Run(ctx, driver.Cmd{Args: args, Stdout: &stdout})
	return stdout.String(), err
}

// Shell runs a /bin/sh script and returns its stdout.
func Shell(ctx context.Context, r driver.Runner, script string) (string, error) {
	return Output(ctx, r, "/bin/sh", "-c", script)
}

// WriteBytes writes data to path in the node.
func WriteBytes(ctx context.Context, r driver.Runner, path string, mode int64, data []byte) error {
	return r.WriteFile(ctx, path, mode, int64(len(data)), bytes.NewReader(data))
}

// CopyFile copies a host file to path in the node.
func CopyFile(ctx context.Context, r driver.Runner, path string, mode int64, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return r.WriteFile(ctx, path, mode, st.Size(), f)
}

// Marker reads a marker file in StateDir ("" when there is none).
func Marker(ctx context.Context, r driver.Runner, name string) string {
	have, _ := Output(ctx, r, "cat", StateDir+"/"+name)
	return strings.TrimSpace(have)
}

// SetMarker records value in StateDir/name (WriteFile makes the directory).
func SetMarker(ctx context.Context, r driver.Runner, name, value string) error {
	return WriteBytes(ctx, r, StateDir+"/"+name, 0o644, []byte(value+"\n"))
}

// AuthorizeKey makes pub the login user's only SSH key. Every start writes it: cheap, and it
// repairs a node whose key file was lost.
func AuthorizeKey(ctx context.Context, r driver.Runner, pub string) error {
	home := "/home/" + LoginUser
	if err := WriteBytes(ctx, r, home+"/.ssh/authorized_keys", 0o600, []byte(pub+"\n")); err != nil {
		return err
	}
	return r.Run(ctx, driver.Cmd{Args: []string{"chown", "-R", LoginUser + ":" + LoginUser, home + "/.ssh"}})
}

// Cgroups is what the kubelet must know of the node's cgroups.
type Cgroups struct {
	V1 bool
	// Root is the cgroup the node's pods go under on cgroup v1 when the node is itself in a
	// cgroup (a container); empty when the node has a private view.
	Root string
	// Driver is the cgroup driver of the kubelet and containerd: CgroupSystemd on cgroup v2, where
	// the node's systemd owns its own tree (a VM, or a container with a private cgroup namespace),
	// as kubeadm recommends; CgroupFS on cgroup v1, where systemd's driver fails for a systemd in a
	// container ("cgroup [kubepods] has some missing paths").
	Driver string
}

// The kubelet's cgroup drivers.
const (
	CgroupSystemd = "systemd"
	CgroupFS      = "cgroupfs"
)

// CgroupFacts reads the node's cgroup version and, on v1, the node's own memory cgroup. A node
// whose kubelet already runs keeps the cgroup driver it was set up with: pods and the runtime
// must never disagree on it.
func CgroupFacts(ctx context.Context, r driver.Runner) (Cgroups, error) {
	fsType, err := Output(ctx, r, "stat", "-fc", "%T", "/sys/fs/cgroup/")
	if err != nil {
		return Cgroups{}, err
	}
	c := Cgroups{V1: strings.TrimSpace(fsType) != "cgroup2fs", Driver: CgroupFS}
	if !c.V1 {
		c.Driver = CgroupSystemd
		have, err := Shell(ctx, r, "sed -n 's/^cgroupDriver: *//p' /var/lib/kubelet/config.yaml 2>/dev/null || true")
		if err != nil {
			return Cgroups{}, err
		}
		if d := strings.Trim(strings.TrimSpace(have), `"'`); d == CgroupFS {
			c.Driver = d
		}
		return c, nil
	}
	// PID 1's memory cgroup is the node's own (minus systemd's init.scope); "/" means the node
	// already has a private view.
	own, err := Shell(ctx, r, "sed -n 's/^[0-9]*:memory://p' /proc/1/cgroup")
	if err != nil {
		return Cgroups{}, err
	}
	if base := strings.TrimSuffix(strings.TrimSpace(own), "/init.scope"); base != "" && base != "/" {
		c.Root = base + "/mkube"
	}
	return c, nil
}

// EnsureContainerd points containerd's sandbox image at pause and its runc at the cgroup driver
// (systemd or cgroupfs), restarting it only when that changed, and waits until it answers.
func EnsureContainerd(ctx context.Context, r driver.Runner, pause, cgroupDriver string) error {
	systemd := "false"
	if cgroupDriver == CgroupSystemd {
		systemd = "true"
	}
	_, err := Shell(ctx, r, fmt.Sprintf(`set -e
f=/etc/containerd/config.toml
if ! grep -q "sandbox = '%[1]s'" $f || ! grep -q "SystemdCgroup = %[2]s$" $f; then
  sed -i -e "s|^\( *sandbox = \).*|\1'%[1]s'|" -e "s|^\( *SystemdCgroup = \).*|\1%[2]s|" $f
  systemctl restart containerd
fi
for i in $(seq 1 100); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "containerd does not answer" >&2; exit 1`, pause, systemd))
	return err
}

// StartKubelet starts the kubelet (enabled in the node, it brings static pods back by itself).
func StartKubelet(ctx context.Context, r driver.Runner) error {
	return r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "start", "kubelet"}})
}

// StopKubelet stops the kubelet, letting it wind pods down before the machine goes away.
func StopKubelet(ctx context.Context, r driver.Runner) error {
	return r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "stop", "kubelet"}})
}

// KubeletRunning tells whether the kubelet service is active.
func KubeletRunning(ctx context.Context, r driver.Runner) bool {
	return r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "is-active", "--quiet", "kubelet"}}) == nil
}

// SetHost points name at ip in /etc/hosts. Docker rewrites /etc/hosts at each container start,
// so this runs every time.
func SetHost(ctx context.Context, r driver.Runner, ip, name string) error {
	_, err := Shell(ctx, r, fmt.Sprintf(`grep -v '[[:space:]]%s$' /etc/hosts > /etc/hosts.mkube; echo '%s' >> /etc/hosts.mkube; cat /etc/hosts.mkube > /etc/hosts; rm -f /etc/hosts.mkube`,
		name, ip+"\t"+name))
	return err
}

// WriteLogs writes what a bug report needs: the kubelet's and containerd's journals, the
// control-plane containers' logs, and the node's view of its pods. A section that fails says why
// and the next one follows.
func WriteLogs(ctx context.Context, r driver.Runner, lines int, w io.Writer) {
	n := fmt.Sprint(lines)
	kubectl := []string{"kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"}
	sections := []struct {
		title string
		args  []string
	}{
		{"kubelet", []string{"journalctl", "-u", "kubelet", "--no-pager", "-n", n}},
		{"containerd", []string{"journalctl", "-u", "containerd", "--no-pager", "-n", n}},
		{"container status", []string{"ctr", "-n", "k8s.io", "containers", "ls"}},
		{"control plane", []string{"sh", "-c", "for f in /var/log/pods/kube-system_*/*/*.log; do echo \"--- $f\"; tail -n " + n + " \"$f\"; done"}},
		{"nodes", append(kubectl, "describe", "nodes")},
		{"pods", append(kubectl, "get", "pods", "-A", "-o", "wide")},
	}
	for _, s := range sections {
		fmt.Fprintf(w, "\n==> %s <==\n", s.title)
		if err := r.Run(ctx, driver.Cmd{Args: s.args, Stdout: w, Stderr: w}); err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
}

// RemoveMarker removes a marker from StateDir.
func RemoveMarker(ctx context.Context, r driver.Runner, name string) error {
	_, err := Output(ctx, r, "rm", "-f", StateDir+"/"+name)
	return err
}
