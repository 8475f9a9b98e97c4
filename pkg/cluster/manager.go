// Package cluster runs mkube's lifecycle commands: start as an ordered list of small steps that are
// each safe to re-run (so a start after a crash, Ctrl-C or stop resumes), stop, delete and status.
package cluster

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/lockfile"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/safepath"
)

// Version of mkube.
const Version = "v0.1.0"

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
}

// lockProfile keeps other mkube processes off a profile while this one changes it; a second
// `mkube start` waits for the first instead of fighting it. The lock dies with the process.
func (m *Manager) lockProfile(ctx context.Context, name string) (func(), error) {
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

// driverFor builds the driver a profile uses.
func (m *Manager) driverFor(p *config.Profile) (driver.Driver, error) {
	e, ok := m.Drivers.Lookup(p.Driver)
	if !ok || !e.Supported {
		return nil, reason.Errorf(reason.DriverUnsupported, "", "the driver %q of profile %q is not supported on %s/%s", p.Driver, p.Name, runtime.GOOS, runtime.GOARCH)
	}
	opts, err := m.driverOptions(p.Name, p)
	if err != nil {
		return nil, err
	}
	return e.New(p.Name, opts)
}

// driverOptions are what a profile's driver is built with (p is nil for a profile whose
// config.json is gone: delete still cleans up what carries its mark).
func (m *Manager) driverOptions(name string, p *config.Profile) (driver.Options, error) {
	dir, err := m.Home.MachineDir(name)
	if err != nil {
		return driver.Options{}, err
	}
	opts := driver.Options{
		MachineDir: dir,
		Owner:      driver.Owner{HomeID: m.HomeID, Profile: name},
		Log:        func(format string, args ...any) { m.Out.Warn(format, args...) },
	}
	if p != nil {
		opts.Owner.Legacy = !p.OwnerMarks
		opts.Extra = map[string]string{"kvm-qemu-uri": p.KVMQemuURI, "kvm-accel": p.KVMAccel, "hyperv-virtual-switch": p.HypervSwitch}
	}
	return opts, nil
}

// runningDriver loads a profile whose machine must be running.
func (m *Manager) runningDriver(ctx context.Context, name string) (*config.Profile, driver.Driver, error) {
	p, err := m.loadProfile(name)
	if err != nil {
		return nil, nil, err
	}
	d, err := m.driverFor(p)
	if err != nil {
		return nil, nil, err
	}
	st, err := d.State(ctx)
	if err != nil {
		return nil, nil, machineError(reason.ProviderError, err, "")
	}
	if st != driver.Running {
		return nil, nil, reason.Errorf(reason.GuestNotRunning, "to start a cluster, run: mkube start -p "+name,
			"the control-plane node %s host is not running: state=%s", name, st)
	}
	return p, d, nil
}

// runningRunner loads a profile whose machine must be running, with a runner into it.
func (m *Manager) runningRunner(ctx context.Context, name string) (*config.Profile, driver.Runner, error) {
	p, d, err := m.runningDriver(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	r, err := d.Runner(ctx)
	return p, r, err
}

// runningEndpoint loads a profile whose machine must be running, and where the host reaches it.
func (m *Manager) runningEndpoint(ctx context.Context, name string) (*config.Profile, driver.Endpoint, error) {
	p, d, err := m.runningDriver(ctx, name)
	if err != nil {
		return nil, driver.Endpoint{}, err
	}
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return nil, ep, reason.New(reason.GuestError, err, "")
	}
	return p, ep, nil
}

// runningClient is a Kubernetes client for a profile whose machine must be running.
func (m *Manager) runningClient(ctx context.Context, name string) (kubernetes.Interface, driver.Endpoint, error) {
	_, ep, err := m.runningEndpoint(ctx, name)
	if err != nil {
		return nil, ep, err
	}
	c, err := m.client(name, ep)
	return c, ep, err
}

// credentials are the files a profile's kubeconfig entry refers to. The name was validated when
// the command started; a name that is not one path element gets paths that do not exist.
func (m *Manager) credentials(name string) (ca, cert, key string) {
	dir, err := m.Home.ProfileDir(name)
	if err != nil {
		dir = filepath.Join(m.Home.CertsDir(), "invalid-profile")
	}
	return filepath.Join(m.Home.CertsDir(), "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
}

// machineKey is the SSH private key of a profile's machine.
func (m *Manager) machineKey(name string) (string, error) {
	dir, err := m.Home.MachineDir(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "id_ed25519"), nil
}

// restConfig is a client configuration for the profile's API server as the host reaches it.
func (m *Manager) restConfig(name string, ep driver.Endpoint) *rest.Config {
	ca, cert, key := m.credentials(name)
	return &rest.Config{
		Host:            serverURL(ep),
		TLSClientConfig: rest.TLSClientConfig{CAFile: ca, CertFile: cert, KeyFile: key},
		QPS:             50,
		Burst:           100,
	}
}

func (m *Manager) client(name string, ep driver.Endpoint) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(m.restConfig(name, ep))
}

func serverURL(ep driver.Endpoint) string {
	u := url.URL{Scheme: "https", Host: fmt.Sprintf("%s:%d", ep.APIServerHost, ep.APIServerPort)}
	return u.String()
}

// updateKubeconfig points the profile's kubeconfig entry at the API server's current address.
func (m *Manager) updateKubeconfig(ctx context.Context, p *config.Profile, ep driver.Endpoint, setCurrent bool) error {
	ca, cert, key := m.credentials(p.Name)
	_, err := kubeconfig.Update(kubeconfig.WithWarnings(ctx, m.Out.Warn), m.KubeconfigPaths, kubeconfig.Entry{
		Name: p.Name, Server: serverURL(ep), CAFile: ca, ClientCert: cert, ClientKey: key, Embed: p.EmbedCerts,
		HomeID: m.HomeID,
	}, setCurrent)
	if errors.Is(err, kubeconfig.ErrNotOurs) {
		return reason.New(reason.Conflict, err, "")
	}
	return err
}

// hostOS describes the host for the first line of start, as minikube's does.
func hostOS() string {
	raw, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return runtime.GOOS
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }
