package sshdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/ssh"
)

// Driver is one profile's node on a machine the user already has.
type Driver struct {
	profile string
	opts    driver.Options
	owner   driver.Owner
	ip      string
	port    int
	user    string
	key     string
}

// New makes the driver for a profile from its settings (ssh-ip-address, ssh-user, ssh-key,
// ssh-port).
func New(profile string, opts driver.Options) (driver.Driver, error) {
	owner, err := opts.Owner.ForProfile(profile)
	if err != nil {
		return nil, err
	}
	s := opts.Settings
	if s["ssh-ip-address"] == "" {
		return nil, errors.New("the ssh driver needs --ssh-ip-address: the machine to run the node on")
	}
	for _, o := range Options {
		if v := s[o.Name]; v != "" {
			if err := o.Check(v); err != nil {
				return nil, err
			}
		}
	}
	key, err := keyPath(s)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(s["ssh-port"])
	if port == 0 {
		port = 22
	}
	user := s["ssh-user"]
	if user == "" {
		user = "root"
	}
	return &Driver{profile: profile, opts: opts, owner: owner, ip: s["ssh-ip-address"], port: port, user: user, key: key}, nil
}

func (d *Driver) Name() string { return Name }

// Close does nothing: every method opens and closes its own SSH connection.
func (d *Driver) Close() error { return nil }

// host names the machine in messages.
func (d *Driver) host() string { return d.user + "@" + net.JoinHostPort(d.ip, strconv.Itoa(d.port)) }

// dialTimeout bounds reaching the machine: unlike a VM mkube boots, it is up or it is not.
const dialTimeout = 30 * time.Second

// knownHosts pins the machine's host key, in the machine directory (where `mkube ssh` looks too).
func (d *Driver) knownHosts() string { return filepath.Join(d.opts.MachineDir, "known_hosts") }

// dial logs in with the user's key. The machine's host key is pinned on first contact in the
// machine directory (never in the user's own known_hosts), and a changed one is refused.
func (d *Driver) dial(ctx context.Context) (*ssh.Runner, error) {
	if err := os.MkdirAll(d.opts.MachineDir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	cl, err := ssh.Client{Host: d.ip, Port: d.port, User: d.user, KeyPath: d.key, Profile: d.profile,
		KnownHosts: d.knownHosts(), Up: true}.Dial(ctx)
	if err != nil {
		var changed *ssh.HostKeyChangedError
		if errors.As(err, &changed) {
			return nil, fmt.Errorf("the SSH host key of %s changed since mkube first logged in (expected %s, got %s): if you know why (the machine was reinstalled, its keys regenerated), remove %s to accept the new key",
				d.host(), changed.Want, changed.Got, d.knownHosts())
		}
		return nil, fmt.Errorf("logging in to %s with %s: %w", d.host(), d.key, err)
	}
	return &ssh.Runner{Client: cl, AsLogin: d.user == "root"}, nil
}

// root is a logged-in runner whose commands run as root: the login is root, or may use sudo without
// a password (checked, so that a sudo asking for one is said plainly rather than hanging or failing
// in the middle of an install).
func (d *Driver) root(ctx context.Context) (*ssh.Runner, error) {
	r, err := d.dial(ctx)
	if err != nil {
		return nil, err
	}
	if d.user != "root" {
		login := &ssh.Runner{Client: r.Client, AsLogin: true}
		var stderr bytes.Buffer
		if err := login.Run(ctx, driver.Cmd{Args: []string{"sudo", "-n", "true"}, Stderr: &stderr}); err != nil {
			r.Close()
			return nil, fmt.Errorf("%s may not run commands as root without a password (sudo -n true: %s): use --ssh-user=root, or give the user passwordless sudo",
				d.host(), firstLine(err))
		}
	}
	return r, nil
}

func firstLine(err error) string {
	var ee *driver.ExitError
	if errors.As(err, &ee) && strings.TrimSpace(ee.Stderr) != "" {
		return strings.SplitN(strings.TrimSpace(ee.Stderr), "\n", 2)[0]
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// shell runs a script as root and returns its stdout.
func shell(ctx context.Context, r driver.Runner, script string) (string, error) {
	var out bytes.Buffer
	err := r.Run(ctx, driver.Cmd{Args: []string{"/bin/sh", "-c", script}, Stdout: &out})
	return out.String(), err
}

// readManifest reads mkube's manifest on the machine: nil when there is none, a *NotOwnedError
// when another mkube profile or home installed it.
func (d *Driver) readManifest(ctx context.Context, r driver.Runner) (*manifest, error) {
	out, err := shell(ctx, r, "if [ -f "+manifestPath+" ]; then cat "+manifestPath+"; else echo absent; fi")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(out) == "absent" {
		return nil, nil
	}
	m, err := parseManifest(out)
	if err != nil {
		return nil, err
	}
	if err := d.owner.CheckTag("mkube installation", d.ip+":"+manifestPath, m.Owner); err != nil {
		return nil, err
	}
	return m, nil
}

// prerequisites are the machine's own tools a node needs (kubeadm, the kubelet, kube-proxy, CNI
// plugins, mkube's delete): mkube installs the container runtime, not the operating system's.
var prerequisites = []string{"iptables", "iptables-save", "iptables-restore", "conntrack", "mount", "umount", "findmnt",
	"ip", "sysctl", "sha256sum", "systemctl", "journalctl"}

// preflightScript prints one line per problem: what the machine lacks to be a node. ip must be one
// of its own addresses, as kubeadm advertises the API server there (a cloud VM's public address is
// often its provider's NAT, not the machine's).
func preflightScript(ip string) string {
	return pathLine + `[ "$(uname -s)" = Linux ] || echo "it runs $(uname -s), not Linux"
command -v ip >/dev/null 2>&1 && { ip -o addr show | grep -qF ` + ssh.Quote([]string{" " + ip + "/"}) + ` || echo "` + ip + ` is not one of its addresses (give --ssh-ip-address an address the machine has itself)"; }
[ "$(uname -m)" = x86_64 ] || echo "it is $(uname -m), and mkube's node runtime is built for x86_64 (amd64)"
[ -d /run/systemd/system ] || echo "its init is not systemd"
for c in ` + ssh.Quote(prerequisites) + `; do command -v "$c" >/dev/null 2>&1 || echo "it has no $c"; done
[ -S /run/containerd/containerd.sock ] && [ ! -f ` + manifestPath + ` ] && echo "a containerd not installed by mkube runs (/run/containerd/containerd.sock)"
true
`
}

// preflight refuses, in one line naming everything missing, a machine that cannot be a node.
func (d *Driver) preflight(ctx context.Context, r driver.Runner) error {
	out, err := shell(ctx, r, preflightScript(d.ip))
	if err != nil {
		return err
	}
	if problems := strings.Split(strings.TrimSpace(out), "\n"); problems[0] != "" {
		return fmt.Errorf("%s cannot run an mkube node: %s", d.ip, strings.Join(problems, "; "))
	}
	return nil
}

// Create installs mkube's container runtime on the machine, resuming an interrupted install, and
// starts it. It writes nothing before the machine has passed the preflight and every path it would
// install to is free (or already mkube's).
func (d *Driver) Create(ctx context.Context, spec driver.Spec) error {
	r, err := d.root(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := d.readManifest(ctx, r)
	if err != nil {
		return err
	}
	if m == nil || !m.Complete {
		if err := d.install(ctx, r, m, spec); err != nil {
			return err
		}
	}
	return d.startUnits(ctx, r)
}

// install writes the bundle and records it.
func (d *Driver) install(ctx context.Context, r driver.Runner, m *manifest, spec driver.Spec) error {
	if err := d.preflight(ctx, r); err != nil {
		return err
	}
	if spec.NodeFiles == nil {
		return errors.New("the ssh driver needs the node image's files (mkube start passes them)")
	}
	files, err := nodeFiles(ctx, spec.NodeFiles)
	if err != nil {
		return err
	}
	out, err := shell(ctx, r, probeScript(probePaths()))
	if err != nil {
		return err
	}
	add, write, err := plan(d.ip, m, parseFacts(out), files)
	if err != nil {
		return err
	}
	var lines []string
	if m == nil {
		lines = append(lines, "owner "+d.owner.Tag())
		if err := os.WriteFile(d.installedMark(), []byte(d.host()+"\n"), 0o600); err != nil {
			return err
		}
	}
	for _, e := range add {
		lines = append(lines, e.line())
	}
	if len(lines) > 0 {
		if _, err := shell(ctx, r, appendScript(lines)); err != nil {
			return fmt.Errorf("recording the install in %s: %w", manifestPath, err)
		}
	}
	for _, p := range write {
		if _, err := shell(ctx, r, appendScript([]string{entry{Kind: kindFile, Path: p.Dst, Digest: p.Digest}.line()})); err != nil {
			return err
		}
		if err := r.WriteFile(ctx, p.Dst, p.Mode, int64(len(p.Data)), bytes.NewReader(p.Data)); err != nil {
			return fmt.Errorf("installing %s: %w", p.Dst, err)
		}
	}
	var unitLines []string
	for _, u := range units {
		unitLines = append(unitLines, kindUnit+" "+u)
	}
	if _, err := shell(ctx, r, appendScript(unitLines)); err != nil {
		return err
	}
	if _, err := shell(ctx, r, setupScript); err != nil {
		return fmt.Errorf("setting up the container runtime: %w", err)
	}
	_, err = shell(ctx, r, appendScript([]string{"complete"}))
	return err
}

// setupScript makes the installed runtime usable: the kernel modules and sysctls its files
// declare (applied now, as the machine does not reboot for them; best effort where the kernel
// is not the machine's to change, as in a container), units known and enabled, and runc checked to
// run here (it needs the machine's libseccomp).
const setupScript = pathLine + `modprobe overlay >/dev/null 2>&1; modprobe br_netfilter >/dev/null 2>&1
sysctl -q -p /etc/sysctl.d/99-kubernetes.conf >/dev/null 2>&1
if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then echo "cannot turn on IPv4 forwarding (net.ipv4.ip_forward)" >&2; exit 1; fi
if ! out=$(/usr/local/sbin/runc --version 2>&1); then echo "runc does not run on this machine (install libseccomp2): $out" >&2; exit 1; fi
systemctl daemon-reload
systemctl enable containerd.service kubelet.service >/dev/null 2>&1
`

// nodeFiles reads the bundle out of the node image's files.
func nodeFiles(ctx context.Context, write func(context.Context, io.Writer) error) ([]payload, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(ctx, pw)) }()
	files, err := readBundle(pr)
	pr.CloseWithError(errors.New("done"))
	return files, err
}

// startUnits starts containerd and waits until it answers, and starts the kubelet (which, until
// kubeadm has configured it, has nothing to run and waits).
func (d *Driver) startUnits(ctx context.Context, r driver.Runner) error {
	_, err := shell(ctx, r, pathLine+`systemctl start containerd.service
for i in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr version >/dev/null || { echo "containerd does not answer" >&2; exit 1; }
[ -f /var/lib/kubelet/config.yaml ] && systemctl start kubelet.service
true`)
	return err
}

// Start starts the container runtime and the kubelet mkube installed.
func (d *Driver) Start(ctx context.Context) error {
	r, err := d.root(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := d.readManifest(ctx, r)
	if err != nil {
		return err
	}
	if m == nil || !m.Complete {
		return fmt.Errorf("mkube has not installed its node on %s: run mkube start", d.ip)
	}
	return d.startUnits(ctx, r)
}

// Stop stops the kubelet, the pods and containerd. The machine keeps running: it is not mkube's.
func (d *Driver) Stop(ctx context.Context) error {
	r, err := d.root(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := d.readManifest(ctx, r)
	if err != nil || m == nil {
		return err
	}
	_, err = shell(ctx, r, pathLine+"systemctl stop kubelet.service >/dev/null 2>&1\n"+killContainers+"true\n")
	return err
}

// installedMark is the host's own record that this profile began installing on the machine: a
// machine that cannot be reached and never had mkube's install from here holds nothing to delete.
func (d *Driver) installedMark() string { return filepath.Join(d.opts.MachineDir, "installed") }

// Delete runs kubeadm reset and removes exactly what the manifest records; a machine without one
// has nothing of mkube's.
func (d *Driver) Delete(ctx context.Context) error {
	r, err := d.root(ctx)
	if err != nil {
		if !fileExists(d.installedMark()) {
			return nil // never installed from this profile: nothing of it can be there
		}
		return fmt.Errorf("%w; mkube's install on it stays until it can be reached (if the machine is gone for good, remove %s and delete again)", err, d.installedMark())
	}
	defer r.Close()
	m, err := d.readManifest(ctx, r)
	if err != nil {
		return err
	}
	if m == nil {
		return os.RemoveAll(d.installedMark())
	}
	var stderr bytes.Buffer
	if err := r.Run(ctx, driver.Cmd{Args: []string{"/bin/sh", "-c", removeScript(m)}, Stderr: &stderr}); err != nil {
		return fmt.Errorf("removing mkube from %s: %w", d.ip, err)
	}
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		d.opts.Logf("removing mkube from %s: %s", d.ip, msg)
	}
	return os.RemoveAll(d.installedMark())
}

// State is Nonexistent until mkube's install is complete (an interrupted one is resumed by
// Create), then Running while containerd runs and Stopped when it does not; Error when the machine
// cannot be reached, or carries another mkube's install.
func (d *Driver) State(ctx context.Context) (driver.State, error) {
	r, err := d.root(ctx)
	if err != nil {
		return driver.Error, err
	}
	defer r.Close()
	m, err := d.readManifest(ctx, r)
	if err != nil {
		return driver.Error, err
	}
	if m == nil || !m.Complete {
		return driver.Nonexistent, nil
	}
	if r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "is-active", "--quiet", "containerd.service"}}) == nil {
		return driver.Running, nil
	}
	return driver.Stopped, nil
}

// Endpoint is the machine's address, given by the user: SSH and the API server answer there.
func (d *Driver) Endpoint(context.Context) (driver.Endpoint, error) {
	return driver.Endpoint{IP: d.ip, SSHHost: d.ip, SSHPort: d.port, SSHUser: d.user, SSHKey: d.key,
		APIServerHost: d.ip, APIServerPort: APIServerPort, NodeReachable: true}, nil
}

// Runner logs in and runs commands as root.
func (d *Driver) Runner(ctx context.Context) (driver.Runner, error) {
	return d.root(ctx)
}
