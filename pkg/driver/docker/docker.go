// Package docker is the docker driver: the node is a container from mkube's node image, on a
// dedicated Docker network with a stable IP, with /var on a volume so a stopped cluster keeps its
// state, and the API server and SSH ports published on 127.0.0.1 only. The same Driver runs the
// podman driver's node through Podman's Docker-compatible API: an Engine says which engine it
// talks to and what differs.
package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/util/wait"

	"mkube/pkg/driver"
	"mkube/pkg/release"
)

// Name of the driver.
const Name = "docker"

// DefaultImage is the node image: `make node-image` builds it into the local engine (pkg/artifacts),
// and a release publishes it to its registry (pkg/release), from where a start pulls it.
func DefaultImage() string { return release.LocalRef(release.NodeRepo) }

// SSHUser is the node image's login user.
const SSHUser = "docker"

// Driver runs one profile's node container in one engine.
type Driver struct {
	profile string
	machine string // the node: the profile's name for the primary, <profile>-mNN for the others
	owner   driver.Owner
	eng     Engine
	cli     *client.Client
}

// New connects to the Docker engine in the environment (DOCKER_HOST or the default socket). The
// driver holds that client until Close.
func New(profile string, opts driver.Options) (driver.Driver, error) {
	d, err := NewOn(Docker(), profile, opts)
	if err != nil {
		return nil, err // not a nil *Driver in a non-nil interface
	}
	return d, nil
}

// NewOn is the driver of a profile's node in the engine eng (Docker, or Podman's compat service).
func NewOn(eng Engine, profile string, opts driver.Options) (*Driver, error) {
	cli, err := eng.Connect()
	if err != nil {
		return nil, err
	}
	machine := opts.Machine
	if machine == "" {
		machine = profile
	}
	return &Driver{profile: profile, machine: machine, owner: opts.Owner, eng: eng, cli: cli}, nil
}

// Close closes the driver's Docker API client, which its runners share: neither is used after.
func (d *Driver) Close() error {
	if d.cli == nil {
		return nil
	}
	return d.cli.Close()
}

// Entry registers the driver.
func Entry(goos string) driver.Entry {
	return driver.Entry{Name: Name, Priority: 100, Supported: true, MultiNode: true, New: New,
		Health: func(ctx context.Context, _ driver.Settings) driver.Health { return Health(ctx) }}
}

func (d *Driver) Name() string { return d.eng.Driver }

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }

// The container and volume are named for the node, the network for the profile (all its nodes
// share it), as minikube's are.
func (d *Driver) container() string { return d.machine }
func (d *Driver) network() string   { return d.profile }
func (d *Driver) volume() string    { return d.machine }

// primary says this driver manages the profile's first node, which owns what the nodes share.
func (d *Driver) primary() bool { return d.machine == d.profile }

// PrepareShared makes what the profile's machines share (its network) before any of them, so a
// start can create them together; Create makes it too when it is missing.
func (d *Driver) PrepareShared(ctx context.Context) error {
	if err := d.CheckOwned(ctx); err != nil {
		return err
	}
	_, err := d.ensureNetwork(ctx)
	return err
}

// Create makes the network, the volume and the container, each only if missing, then starts it.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) error {
	// A foreign container, volume or network of the profile's name is refused before anything is
	// created beside it.
	if err := d.CheckOwned(ctx); err != nil {
		return err
	}
	sn, err := d.ensureNetwork(ctx)
	if err != nil {
		return err
	}
	ip := nodeIP(sn, spec.Ordinal)
	if err := d.ensureVolume(ctx); err != nil {
		return err
	}
	if st, err := d.ownContainer(ctx); err != nil {
		return err
	} else if st != nil {
		return d.Start(ctx)
	}
	if _, err := d.cli.ImageInspect(ctx, spec.Image); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("node image %s is not in the local %s engine: build it with `make node-image`, or pass --base-image", spec.Image, d.eng.Title)
		}
		return err
	}
	cgroupV2, err := d.cgroupV2(ctx)
	if err != nil {
		return err
	}
	// Real users' machines accept --privileged. Where a host's bounding set lacks a capability
	// (seen: CAP_SYS_RESOURCE), runc refuses it: retry with every capability the host can grant.
	for _, privileged := range []bool{true, false} {
		if err := d.createContainer(ctx, spec, ip, privileged, cgroupV2); err != nil {
			if !nameTaken(err) {
				return err
			}
			// The name is taken, though the container was missing a moment ago: a create that an
			// earlier, interrupted start sent is still finishing in the engine. Once it shows, it
			// is this profile's node (or refused as another's), and starting it resumes.
			if _, err := d.awaitContainer(ctx, raceWindow); err != nil {
				return err
			}
			return d.Start(ctx)
		}
		_, err := d.cli.ContainerStart(ctx, d.container(), client.ContainerStartOptions{})
		if err == nil {
			return d.waitBooted(ctx)
		}
		if !privileged || !strings.Contains(err.Error(), "apply caps") {
			return fmt.Errorf("starting the node container: %w", err)
		}
		if _, err := d.cli.ContainerRemove(ctx, d.container(), client.ContainerRemoveOptions{Force: true}); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) cgroupV2(ctx context.Context) (bool, error) {
	info, err := d.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, err
	}
	return info.Info.CgroupVersion == "2", nil
}

func (d *Driver) createContainer(ctx context.Context, spec driver.Spec, ip string, privileged, cgroupV2 bool) error {
	sshPort := network.MustParsePort("22/tcp")
	apiPort, err := network.ParsePort(strconv.Itoa(max(spec.APIServerPort, 1)) + "/tcp")
	if err != nil {
		return fmt.Errorf("API server port: %w", err)
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	ports := network.PortMap{sshPort: {{HostIP: loopback}}}
	exposed := network.PortSet{sshPort: {}}
	if spec.APIServerPort != 0 { // a worker serves no API server
		ports[apiPort] = []network.PortBinding{{HostIP: loopback}}
		exposed[apiPort] = struct{}{}
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Hostname:     d.machine,
		Labels:       d.labels(),
		Env:          []string{"container=" + d.eng.Driver},
		ExposedPorts: exposed,
		StopSignal:   "SIGRTMIN+3", // systemd's clean halt
	}
	hc := &container.HostConfig{
		PortBindings: ports,
		Privileged:   privileged,
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"},
		Tmpfs:        map[string]string{"/run": "rw,nosuid,nodev", "/tmp": "rw,nosuid,nodev"},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: d.volume(), Target: "/var"},
			{Type: mount.TypeBind, Source: "/lib/modules", Target: "/lib/modules", ReadOnly: true},
		},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Resources: container.Resources{
			NanoCPUs: int64(spec.CPUs) * 1e9,
			Memory:   int64(spec.MemoryMB) << 20,
		},
	}
	if _, err := os.Stat("/lib/modules"); err != nil {
		hc.Mounts = hc.Mounts[:1] // macOS/Windows hosts: the Docker VM's modules are not ours to mount
	}
	if cgroupV2 {
		hc.CgroupnsMode = container.CgroupnsModePrivate
	} else {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup"})
	}
	if !privileged {
		d.unprivileged(hc)
	}
	nodeIP, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("node address %q: %w", ip, err)
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		d.network(): {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: nodeIP}},
	}}
	_, err = d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: d.container()})
	if err != nil {
		return fmt.Errorf("creating the node container: %w", err)
	}
	return nil
}

// unprivileged gives a node every capability the host can grant instead of --privileged, for hosts
// whose bounding set lacks one (seen: CAP_SYS_RESOURCE), where runc refuses --privileged.
func (d *Driver) unprivileged(hc *container.HostConfig) {
	hc.Privileged = false
	hc.CapAdd = []string{"ALL"}
	hc.CapDrop = []string{"SYS_RESOURCE"}
	// docker run's --security-opt systempaths=unconfined: a writable /proc/sys for the kubelet.
	hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
	for _, o := range d.eng.UnmaskAll {
		if !slices.Contains(hc.SecurityOpt, o) {
			hc.SecurityOpt = append(hc.SecurityOpt, o)
		}
	}
	hc.Devices = []container.DeviceMapping{{PathOnHost: "/dev/kmsg", PathInContainer: "/dev/kmsg", CgroupPermissions: "rwm"}}
	// Privileged pods (kube-proxy) need every device in their devices cgroup, which nests in
	// the node's: it must allow them too, as --privileged would.
	hc.DeviceCgroupRules = []string{"a *:* rwm"}
}

// nameTaken says a create failed because the engine holds the container's name already: Docker
// answers 409 Conflict, Podman's compat API 500 with "already in use" (both say that).
func nameTaken(err error) bool {
	return cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already in use")
}

// recreateUnprivileged replaces a privileged node container that has never run (a create cut
// short between its privileged try and the fallback) by the same container without --privileged,
// as Create's fallback would have made it. Nothing is lost: it never ran, and /var is a volume.
func (d *Driver) recreateUnprivileged(ctx context.Context, st *container.InspectResponse) error {
	hc := st.HostConfig
	d.unprivileged(hc)
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	if n, ok := st.NetworkSettings.Networks[d.network()]; ok && n.IPAMConfig != nil {
		nc.EndpointsConfig[d.network()] = &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: n.IPAMConfig.IPv4Address}}
	}
	if _, err := d.cli.ContainerRemove(ctx, st.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		return err
	}
	if _, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: st.Config, HostConfig: hc, NetworkingConfig: nc, Name: d.container()}); err != nil {
		return fmt.Errorf("creating the node container: %w", err)
	}
	_, err := d.cli.ContainerStart(ctx, d.container(), client.ContainerStartOptions{})
	return err
}

// awaitContainer waits until the profile's container, whose name the engine holds, can be
// inspected: a readiness check on the engine, for at most window.
func (d *Driver) awaitContainer(parent context.Context, window time.Duration) (*container.InspectResponse, error) {
	ctx, cancel := context.WithTimeout(parent, window)
	defer cancel()
	var st *container.InspectResponse
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		st, err = d.ownContainer(ctx)
		return st != nil, err
	})
	if err != nil && parent.Err() != nil {
		return nil, parent.Err()
	}
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("the name of the node container %s is taken, but no container of that name shows: see `%s ps -a`", d.container(), d.eng.CLI)
	}
	return st, err
}

// raceWindow bounds the wait for a container an interrupted create left in flight in the engine.
const raceWindow = 30 * time.Second

// neverRan says a container has not been started once.
func neverRan(st *container.InspectResponse) bool {
	return st.State == nil || st.State.StartedAt == "" || strings.HasPrefix(st.State.StartedAt, "0001-01-01")
}

// waitBooted waits until systemd in the node has finished booting: a readiness check, not a sleep.
// Right after the container starts, systemd may not listen on its bus yet; that is retried.
func (d *Driver) waitBooted(ctx context.Context) error {
	r, _ := d.Runner(ctx)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var state string
	var runErr error
	// Tried at once, then 50ms after each try ends (sliding), until booted, a settled failure, or
	// the deadline.
	err := wait.Backoff{Duration: 50 * time.Millisecond}.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		var out strings.Builder
		runErr = r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "is-system-running", "--wait"}, Stdout: &out})
		state = strings.TrimSpace(out.String())
		// "degraded" (a non-essential unit failed) still means booted.
		if runErr == nil || state == "degraded" {
			return true, nil
		}
		res, ierr := d.cli.ContainerInspect(ctx, d.container(), client.ContainerInspectOptions{})
		if st := res.Container; ierr == nil && st.State != nil && !st.State.Running {
			return false, fmt.Errorf("the node container exited during boot (exit code %d): see `%s logs %s`", st.State.ExitCode, d.eng.CLI, d.container())
		}
		// "offline": systemd does not answer yet (the container's PID 1 is still exec'ing it), which a
		// busy host shows for a moment; only a settled state is an answer.
		switch state {
		case "", "starting", "initializing", "offline":
			return false, nil
		default:
			return false, fmt.Errorf("the node did not boot: systemd is %q (see `%s exec %s systemctl --failed`)", state, d.eng.CLI, d.container())
		}
	})
	if err != nil && err == ctx.Err() {
		return fmt.Errorf("the node did not finish booting (systemd: %q): %w", state, runErr)
	}
	return err
}

// Start starts a stopped node container.
func (d *Driver) Start(ctx context.Context) error {
	st, err := d.ownContainer(ctx)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("the node container %s does not exist", d.container())
	}
	if !st.State.Running {
		_, err := d.cli.ContainerStart(ctx, d.container(), client.ContainerStartOptions{})
		if err != nil && strings.Contains(err.Error(), "apply caps") && st.HostConfig != nil && st.HostConfig.Privileged && neverRan(st) {
			err = d.recreateUnprivileged(ctx, st)
		}
		if err != nil {
			return fmt.Errorf("starting the node container: %w", err)
		}
	}
	return d.waitBooted(ctx)
}

// Stop halts the node cleanly: systemd stops the kubelet and containerd, then the container ends.
func (d *Driver) Stop(ctx context.Context) error {
	st, err := d.ownContainer(ctx)
	if err != nil || st == nil {
		return err
	}
	timeout := 30
	_, err = d.cli.ContainerStop(ctx, st.ID, client.ContainerStopOptions{Timeout: &timeout})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// Delete removes the container, its volume, and the network — only those carrying this home's and
// profile's labels; a foreign container of the same name is refused and nothing is removed.
func (d *Driver) Delete(ctx context.Context) error {
	st, err := d.ownContainer(ctx)
	if errors.Is(err, driver.ErrNotOwned) {
		// The container of that name is someone else's: it stays, but what carries our labels
		// (volume, network) still goes; the refusal is reported after.
		if rerr := d.removeOwned(ctx); rerr != nil {
			return rerr
		}
		return err
	}
	if err != nil {
		return err
	}
	if st != nil {
		// By ID: a container that replaced ours under the same name since the check stays.
		if _, err := d.cli.ContainerRemove(ctx, st.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	if err := d.removeOwned(ctx); err != nil {
		return err
	}
	return nil
}

// State maps the container's state; a foreign container of the profile's name is an error, so
// nothing takes it for this profile's node.
func (d *Driver) State(ctx context.Context) (driver.State, error) {
	st, err := d.ownContainer(ctx)
	if err != nil {
		return driver.Error, err
	}
	if st == nil {
		return driver.Nonexistent, nil
	}
	switch {
	case st.State.Paused:
		return driver.Paused, nil
	case st.State.Running:
		return driver.Running, nil
	default:
		return driver.Stopped, nil
	}
}

// Endpoint reads the node IP and the host ports the engine published.
func (d *Driver) Endpoint(ctx context.Context) (driver.Endpoint, error) {
	res, err := d.cli.ContainerInspect(ctx, d.container(), client.ContainerInspectOptions{})
	if err != nil {
		return driver.Endpoint{}, err
	}
	st := res.Container
	ep := driver.Endpoint{SSHHost: "127.0.0.1", SSHUser: SSHUser, APIServerHost: "127.0.0.1", NodeReachable: d.bridgeReachable()}
	if n, ok := st.NetworkSettings.Networks[d.network()]; ok && n.IPAddress.IsValid() {
		ep.IP = n.IPAddress.String()
	}
	for port, bindings := range st.NetworkSettings.Ports {
		if len(bindings) == 0 {
			continue
		}
		hp, _ := strconv.Atoi(bindings[0].HostPort)
		if port.Port() == "22" {
			ep.SSHPort = hp
		} else {
			ep.APIServerPort = hp
		}
	}
	if ep.IP == "" || ep.SSHPort == 0 {
		return ep, fmt.Errorf("the node container is not running")
	}
	return ep, nil
}

// Runner runs commands in the container with the engine's exec (docker exec).
func (d *Driver) Runner(context.Context) (driver.Runner, error) {
	return &execRunner{cli: d.cli, container: d.container()}, nil
}
