// Package cluster runs mkube's lifecycle commands: start as an ordered list of small steps that are
// each safe to re-run (so a start after a crash, Ctrl-C or stop resumes), stop, delete and status.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"mkube/pkg/addons/apply"
	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/lockfile"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/safepath"
	"mkube/pkg/ssh"
)

// Defaults, as minikube's where it has them.
const (
	DefaultBinaryMirror = "https://dl.k8s.io/release"
	DefaultAPIPort      = 8443
	DefaultServiceCIDR  = "10.96.0.0/12"
	DefaultPodCIDR      = "10.244.0.0/16"
	DefaultDNSDomain    = "cluster.local"
	MinCPUs             = 2
	MinMemoryMB         = 1800
	MinDiskMB           = 2000
)

// Manager carries what every lifecycle command needs.
type Manager struct {
	Home    config.Home
	Out     *out.Printer
	Drivers *driver.Registry
	// KubeconfigPaths are the user's kubeconfig files ($KUBECONFIG or ~/.kube/config).
	KubeconfigPaths []string
	// HomeID is the random ID in $MKUBE_HOME's marker file: it marks what this home owns.
	HomeID string
	// HostOS and HostArch are the host's (runtime.GOOS/GOARCH in the program; tests give others).
	HostOS, HostArch string
	// NewApplier builds what applies addons to a cluster; nil is server-side apply from the host
	// (pkg/addons/apply). Tests give a recorder.
	NewApplier func(cfg *rest.Config) (Applier, error)
}

// Applier applies an addon's manifests to a running cluster, and removes what they created.
type Applier interface {
	Apply(ctx context.Context, name string, manifest []byte) error
	Remove(ctx context.Context, name string, manifest []byte) error
}

// LockProfile keeps other mkube processes off a profile while this one changes it; a second
// `mkube start` waits for the first instead of fighting it. The lock dies with the process.
func (m *Manager) LockProfile(ctx context.Context, name string) (func(), error) {
	path, err := safepath.Join(string(m.Home), "locks", name+".lock")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	try, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	unlock, err := lockfile.Lock(try, path)
	cancel()
	if err == nil {
		return unlock, nil
	}
	m.Out.Step(out.Stop, "Another mkube command is working on %q: waiting for it ...", name)
	wait, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return lockfile.Lock(wait, path)
}

// loadProfile reads a profile, turning "no such profile" into minikube's message and exit code.
func (m *Manager) loadProfile(name string) (*config.Profile, error) {
	p, err := m.Home.Load(name)
	if errors.Is(err, config.ErrNoProfile) {
		return nil, reason.Errorf(reason.GuestNotFound, "run `mkube profile list` to view all profiles, or `mkube start -p "+name+"` to create it",
			"profile %q not found", name)
	}
	return p, err
}

// Profile reads a profile, answering as minikube does (exit 85) when it does not exist.
func (m *Manager) Profile(name string) (*config.Profile, error) { return m.loadProfile(name) }

// driverFor builds the driver a profile uses.
func (m *Manager) driverFor(p *config.Profile) (driver.Driver, error) {
	return m.nodeDriverFor(p, p.Name)
}

// nodeDriverFor builds the driver of one node of a profile.
func (m *Manager) nodeDriverFor(p *config.Profile, nodeName string) (driver.Driver, error) {
	e, ok := m.Drivers.Lookup(p.Driver)
	if !ok || !e.Supported {
		return nil, reason.Errorf(reason.DriverUnsupported, "", "the driver %q of profile %q is not supported on %s/%s", p.Driver, p.Name, m.HostOS, m.HostArch)
	}
	return m.NewNodeDriver(e, p.Name, nodeName, p)
}

// NewDriver builds a profile's driver (p is nil for a profile whose config.json is gone: delete
// still cleans up what carries its mark).
func (m *Manager) NewDriver(e driver.Entry, name string, p *config.Profile) (driver.Driver, error) {
	return m.NewNodeDriver(e, name, name, p)
}

// CheckMultiNode refuses a driver that runs one node per cluster, naming those here that run more.
func (m *Manager) CheckMultiNode(e driver.Entry) error {
	if e.MultiNode {
		return nil
	}
	var multi []string
	for _, n := range m.Drivers.Names() {
		if o, _ := m.Drivers.Lookup(n); o.MultiNode {
			multi = append(multi, n)
		}
	}
	return reason.Errorf(reason.Usage, "drivers that run more than one node here: "+strings.Join(multi, ", "), "the %s driver runs one node per cluster", e.Name)
}

// NewNodeDriver builds the driver of one node (machine) of a profile; every node shares the
// profile's machine directory (its login key) and owner mark.
func (m *Manager) NewNodeDriver(e driver.Entry, name, machine string, p *config.Profile) (driver.Driver, error) {
	if machine != name {
		if err := m.CheckMultiNode(e); err != nil {
			return nil, err
		}
	}
	dir, err := m.Home.MachineDir(name)
	if err != nil {
		return nil, err
	}
	opts := driver.Options{
		Machine:    machine,
		MachineDir: dir,
		Owner:      driver.Owner{HomeID: m.HomeID, Profile: name},
		Log:        func(format string, args ...any) { m.Out.Warn(format, args...) },
	}
	var values map[string]string
	if p != nil {
		opts.Owner.Legacy = !p.OwnerMarks
		values = p.DriverOptions
	}
	if opts.Settings, err = e.Settings(values); err != nil {
		return nil, reason.New(reason.Usage, err, "")
	}
	d, err := e.New(name, opts)
	if err != nil {
		return nil, reason.New(reason.Usage, err, "")
	}
	return d, nil
}

// Machine is a profile's machine as one command uses it: the driver, and a runner into the node
// opened on first use. Close lets go of both.
type Machine struct {
	Profile  *config.Profile
	Driver   driver.Driver
	State    driver.State
	Endpoint driver.Endpoint // set when running
	runner   driver.Runner
}

// Runner opens (once) a runner into the running node.
func (mc *Machine) Runner(ctx context.Context) (driver.Runner, error) {
	if mc.runner == nil {
		r, err := mc.Driver.Runner(ctx)
		if err != nil {
			return nil, err
		}
		mc.runner = r
	}
	return mc.runner, nil
}

// Close closes the runner and the driver.
func (mc *Machine) Close() {
	if mc.runner != nil {
		mc.runner.Close()
	}
	mc.Driver.Close()
}

// open builds a profile's driver and learns its machine's state (and endpoint, when running).
func (m *Manager) open(ctx context.Context, p *config.Profile) (*Machine, error) {
	return m.openNode(ctx, p, p.Name)
}

// openNode is open for one node of the profile.
func (m *Manager) openNode(ctx context.Context, p *config.Profile, nodeName string) (*Machine, error) {
	d, err := m.nodeDriverFor(p, nodeName)
	if err != nil {
		return nil, err
	}
	mc := &Machine{Profile: p, Driver: d}
	if mc.State, err = d.State(ctx); err != nil {
		d.Close()
		return nil, MachineError(reason.ProviderError, err, "")
	}
	if mc.State == driver.Running {
		if mc.Endpoint, err = d.Endpoint(ctx); err != nil {
			d.Close()
			return nil, reason.New(reason.GuestError, err, "")
		}
		mc.Endpoint = viaLB(ctx, p, d, mc.Endpoint)
	}
	return mc, nil
}

// viaLB points ep's API server at the load balancer of an --ha cluster, through which the host
// reaches its API servers (any one of them may be down).
func viaLB(ctx context.Context, p *config.Profile, d driver.Driver, ep driver.Endpoint) driver.Endpoint {
	if !p.HA {
		return ep
	}
	if lb, ok := d.(lbEndpoint); ok {
		if l, err := lb.LBEndpoint(ctx); err == nil {
			ep.APIServerHost, ep.APIServerPort = l.APIServerHost, l.APIServerPort
		}
	}
	return ep
}

// lbEndpoint is a driver that fronts an --ha cluster's API servers with a load balancer.
type lbEndpoint interface {
	LBEndpoint(ctx context.Context) (driver.Endpoint, error)
}

// Running opens a profile whose machine must be running; the caller closes it.
func (m *Manager) Running(ctx context.Context, name string) (*Machine, error) {
	return m.RunningNode(ctx, name, "")
}

// RunningNode opens one node of a profile ("" is the primary), which must be running; the caller
// closes it.
func (m *Manager) RunningNode(ctx context.Context, name, nodeName string) (*Machine, error) {
	p, err := m.loadProfile(name)
	if err != nil {
		return nil, err
	}
	n, _, ok := p.Node(nodeName)
	if !ok {
		return nil, reason.Errorf(reason.GuestNodeNotFound, "run `mkube node list -p "+name+"` to see its nodes",
			"profile %q has no node %q", name, nodeName)
	}
	mc, err := m.openNode(ctx, p, n.Name)
	if err != nil {
		return nil, err
	}
	if mc.State != driver.Running {
		mc.Close()
		what := "control-plane"
		if !n.ControlPlane {
			what = "worker"
		}
		return nil, reason.Errorf(reason.GuestNotRunning, "to start a cluster, run: mkube start -p "+name,
			"the %s node %s host is not running: state=%s", what, n.Name, mc.State)
	}
	return mc, nil
}

// Applier is the addon applier for a profile's cluster at ep. Its first call waits until the API
// server is ready (right after a restart it is still coming up); calls the node's markers make
// unnecessary never wait.
func (m *Manager) Applier(name string, ep driver.Endpoint) (Applier, error) {
	cfg := m.RestConfig(name, ep)
	if m.NewApplier != nil {
		return m.NewApplier(cfg)
	}
	sa, err := apply.New(cfg)
	if err != nil {
		return nil, err
	}
	sa.Logf = func(format string, args ...any) { m.Out.V(1, format, args...) }
	client, err := m.Client(name, ep)
	if err != nil {
		return nil, err
	}
	ready := func(ctx context.Context) error {
		return kubeadm.Wait(ctx, client, nil, []string{kubeadm.WaitAPIServer}, func(f string, a ...any) { m.Out.V(1, f, a...) })
	}
	return &readyFirst{Applier: sa, ready: ready}, nil
}

// readyFirst waits for the API server before its first call.
type readyFirst struct {
	Applier
	ready func(context.Context) error
	done  bool
}

func (r *readyFirst) wait(ctx context.Context) error {
	if r.done {
		return nil
	}
	if err := r.ready(ctx); err != nil {
		return err
	}
	r.done = true
	return nil
}

func (r *readyFirst) Apply(ctx context.Context, name string, manifest []byte) error {
	if err := r.wait(ctx); err != nil {
		return err
	}
	return r.Applier.Apply(ctx, name, manifest)
}

func (r *readyFirst) Remove(ctx context.Context, name string, manifest []byte) error {
	if err := r.wait(ctx); err != nil {
		return err
	}
	return r.Applier.Remove(ctx, name, manifest)
}

// inNode runs fn with a runner into a profile's running node, and closes both after.
func (m *Manager) inNode(ctx context.Context, name string, fn func(p *config.Profile, r driver.Runner) error) error {
	return m.inMachine(ctx, name, func(mc *Machine, r driver.Runner) error { return fn(mc.Profile, r) })
}

// inMachine is inNode for a caller that needs the machine's driver too.
func (m *Manager) inMachine(ctx context.Context, name string, fn func(mc *Machine, r driver.Runner) error) error {
	return m.inNodeMachine(ctx, name, "", fn)
}

// inNodeMachine is inMachine for one node of the profile ("" is the primary).
func (m *Manager) inNodeMachine(ctx context.Context, name, nodeName string, fn func(mc *Machine, r driver.Runner) error) error {
	mc, err := m.RunningNode(ctx, name, nodeName)
	if err != nil {
		return err
	}
	defer mc.Close()
	r, err := mc.Runner(ctx)
	if err != nil {
		return err
	}
	return fn(mc, r)
}

// eachRunningNode runs fn with a runner into every running node of a profile, the primary first;
// nodes that are not running are skipped (a start loads what they miss).
func (m *Manager) eachRunningNode(ctx context.Context, p *config.Profile, fn func(nodeName string, r driver.Runner) error) error {
	for _, n := range p.Nodes {
		mc, err := m.openNode(ctx, p, n.Name)
		if err != nil {
			return err
		}
		err = func() error {
			defer mc.Close()
			if mc.State != driver.Running {
				return nil
			}
			r, err := mc.Runner(ctx)
			if err != nil {
				return err
			}
			return fn(n.Name, r)
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// runningClient is a Kubernetes client for a profile whose machine must be running, and where
// the host reaches the machine.
func (m *Manager) runningClient(ctx context.Context, name string) (kubernetes.Interface, driver.Endpoint, error) {
	mc, err := m.Running(ctx, name)
	if err != nil {
		return nil, driver.Endpoint{}, err
	}
	mc.Close()
	c, err := m.Client(name, mc.Endpoint)
	return c, mc.Endpoint, err
}

// Credentials are the files a profile's kubeconfig entry refers to. The name was validated when
// the command started; a name that is not one path element gets paths that do not exist.
func (m *Manager) Credentials(name string) (ca, cert, key string) {
	dir, err := m.Home.ProfileDir(name)
	if err != nil {
		dir = filepath.Join(m.Home.CertsDir(), "invalid-profile")
	}
	return filepath.Join(m.Home.CertsDir(), "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
}

// MachineKey is the SSH private key of a profile's machine.
func (m *Manager) MachineKey(name string) (string, error) {
	dir, err := m.Home.MachineDir(name)
	if err != nil {
		return "", err
	}
	return ssh.KeyFile(dir), nil
}

// sshClient is how the host logs in to a profile's primary node at ep: with the machine's own key,
// or the user's (ep.SSHKey, the ssh driver), the node's host key pinned in the machine directory
// either way.
func (m *Manager) sshClient(name string, ep driver.Endpoint) (ssh.Client, error) {
	return m.nodeSSHClient(name, name, ep)
}

// nodeSSHClient is sshClient for any node of the profile: the nodes share the login key, each
// has host keys of its own (KnownHostsFile).
func (m *Manager) nodeSSHClient(name, nodeName string, ep driver.Endpoint) (ssh.Client, error) {
	key, err := m.MachineKey(name)
	if err != nil {
		return ssh.Client{}, err
	}
	known, err := m.KnownHostsFile(name, nodeName)
	if err != nil {
		return ssh.Client{}, err
	}
	c := ssh.Client{Host: ep.SSHHost, Port: ep.SSHPort, User: ep.SSHUser, KeyPath: key, Profile: name, KnownHosts: known}
	if ep.SSHKey != "" {
		c.KeyPath = ep.SSHKey
	}
	return c, nil
}

// KnownHostsFile is where a node's SSH host keys are pinned (ssh.NodeKnownHosts).
func (m *Manager) KnownHostsFile(name, nodeName string) (string, error) {
	key, err := m.MachineKey(name)
	if err != nil {
		return "", err
	}
	if nodeName != "" && nodeName != name {
		if err := config.ValidateProfileName(nodeName); err != nil {
			return "", err
		}
	}
	return ssh.NodeKnownHosts(key, name, nodeName), nil
}

// RestConfig is a client configuration for the profile's API server as the host reaches it.
func (m *Manager) RestConfig(name string, ep driver.Endpoint) *rest.Config {
	ca, cert, key := m.Credentials(name)
	return &rest.Config{
		Host:            ServerURL(ep),
		TLSClientConfig: rest.TLSClientConfig{CAFile: ca, CertFile: cert, KeyFile: key},
		QPS:             50,
		Burst:           100,
	}
}

func (m *Manager) Client(name string, ep driver.Endpoint) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(m.RestConfig(name, ep))
}

func ServerURL(ep driver.Endpoint) string {
	u := url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", ep.APIServerHost, ep.APIServerPort)}
	return u.String()
}

// UpdateKubeconfig points the profile's kubeconfig entry at the API server's current address.
func (m *Manager) UpdateKubeconfig(ctx context.Context, p *config.Profile, ep driver.Endpoint, setCurrent bool) error {
	ca, cert, key := m.Credentials(p.Name)
	_, err := kubeconfig.Update(kubeconfig.WithWarnings(ctx, m.Out.Warn), m.KubeconfigPaths, kubeconfig.Entry{
		Name: p.Name, Server: ServerURL(ep), CAFile: ca, ClientCert: cert, ClientKey: key, Embed: p.EmbedCerts,
		HomeID: m.HomeID,
	}, setCurrent)
	if errors.Is(err, kubeconfig.ErrNotOurs) {
		return reason.New(reason.Conflict, err, "")
	}
	return err
}

// HostDescription describes the host for the first line of start, as minikube's does.
func (m *Manager) HostDescription() string {
	if m.HostOS != "linux" {
		return m.HostOS
	}
	raw, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return m.HostOS
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return m.HostOS
}
