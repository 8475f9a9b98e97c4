// Package podman is the podman driver: the docker driver's node — the same node image, a network
// per profile with a stable IP, /var on a volume, the API server and SSH ports published on
// 127.0.0.1 only — made through rootful Podman's Docker-compatible API service
// (`podman system service`, systemd's podman.socket). The node is pkg/driver/docker's Driver over
// the Engine this package describes; only what differs is here: where the service listens, the
// names in messages, and the health advice.
package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"mkube/pkg/driver"
	"mkube/pkg/driver/docker"
)

// Name of the driver.
const Name = "podman"

// DefaultSocket is rootful Podman's API socket: where systemd's podman.socket listens, and where
// `podman system service` listens when run as root without an address.
const DefaultSocket = "unix:///run/podman/podman.sock"

// Entry registers the driver. It ranks below docker (which wins when both are healthy, as in
// minikube) and above the VM drivers: a container starts in seconds, a VM in minutes.
func Entry(goos string) driver.Entry {
	return driver.Entry{Name: Name, Priority: 90, Supported: goos == "linux", New: New,
		Health: func(ctx context.Context, _ driver.Settings) driver.Health { return Health(ctx) }}
}

// Engine is rootful Podman's compat service at Host().
func Engine() docker.Engine {
	return docker.Engine{Driver: Name, Title: "Podman", CLI: "podman", Connect: connect, Rootless: askRootless,
		// Podman's compat API ignores HostConfig.MaskedPaths; its own option unmasks /proc/sys.
		UnmaskAll: []string{"unmask=ALL"}}
}

// New connects to Podman's service; the driver holds that client until Close.
func New(profile string, opts driver.Options) (driver.Driver, error) {
	d, err := docker.NewOn(Engine(), profile, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Host is where Podman's service is: CONTAINER_HOST (podman --remote's own variable) when set,
// else rootful Podman's socket. DOCKER_HOST is Docker's and is not looked at.
func Host() string {
	if h := os.Getenv("CONTAINER_HOST"); h != "" {
		return h
	}
	return DefaultSocket
}

func connect() (*client.Client, error) {
	host := Host()
	// The Docker API client speaks HTTP over a unix socket or TCP; Podman's ssh:// connections
	// (podman machine, remote hosts) are podman --remote's own protocol.
	if !strings.HasPrefix(host, "unix://") && !strings.HasPrefix(host, "tcp://") {
		return nil, fmt.Errorf("CONTAINER_HOST=%s: mkube reaches Podman's API service at a unix:// or tcp:// address", host)
	}
	return client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
}

// Health checks that Podman's rootful API service answers and that we may use it.
func Health(ctx context.Context) driver.Health {
	return health(ctx, Engine(), Host(), docker.LookPath, rootlessSocket())
}

// startService is how a user starts rootful Podman's API service.
const startService = "start its API service: sudo systemctl enable --now podman.socket (without systemd: sudo podman system service --time=0 unix:///run/podman/podman.sock &)"

// health turns what the engine at host answered into advice. rootlessSock is the user's own
// rootless Podman socket when one exists ("" otherwise): named, so a user who has only that knows
// why it is not used.
func health(ctx context.Context, eng docker.Engine, host string, lookPath func(...string) (string, error), rootlessSock string) driver.Health {
	rootless, err := docker.Probe(ctx, eng)
	if errors.Is(err, docker.ErrEngineAddress) {
		return driver.Health{Problem: strings.TrimPrefix(firstLine(err), docker.ErrEngineAddress.Error()+": "),
			Fix: "unset CONTAINER_HOST (mkube then uses rootful Podman's " + DefaultSocket + "), or set it to a unix:// socket"}
	}
	if err == nil && rootless {
		return driver.Health{Installed: true, Running: true,
			Problem: "Podman at " + host + " runs rootless, and mkube does not support rootless Podman yet",
			Fix:     "use rootful Podman: unset CONTAINER_HOST, " + startService + ", and run mkube as root"}
	}
	if err == nil {
		return driver.Health{Installed: true, Running: true, Healthy: true}
	}
	_, lookErr := lookPath("podman")
	switch {
	case strings.Contains(err.Error(), "permission denied"):
		return driver.Health{Installed: true, Running: true,
			Problem: "rootful Podman's API socket " + strings.TrimPrefix(host, "unix://") + " is root's, and you may not use it",
			Fix:     "run mkube as root (sudo), or let your group use the socket: `sudo systemctl edit podman.socket` with [Socket] SocketGroup=YOURGROUP and SocketMode=0660"}
	case lookErr != nil:
		return driver.Health{Problem: "Podman is not installed",
			Fix: "install it (Debian/Ubuntu: sudo apt-get install podman), then " + startService}
	default:
		problem := "Podman is installed but its rootful API service does not answer at " + host
		if rootlessSock != "" {
			problem += " (a rootless Podman service answers at " + rootlessSock + ": mkube does not support rootless Podman yet)"
		}
		return driver.Health{Installed: true, Problem: problem, Fix: startService}
	}
}

// askRootless asks Podman's compat /info whether it runs rootless. Podman 4.3 (Debian 12's) says so
// only in a field of its own, "Rootless", which the Docker API's Info type has not; newer releases
// also list "name=rootless" in SecurityOptions, as Docker does. The request goes over the client's
// own connection (unix or plain tcp, as connect allows), unversioned as the API permits.
func askRootless(ctx context.Context, cli *client.Client) (bool, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return cli.Dialer()(ctx) },
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://podman/info", nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("podman /info: %s", resp.Status)
	}
	var info struct {
		Rootless        bool
		SecurityOptions []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return false, fmt.Errorf("podman /info: %w", err)
	}
	return info.Rootless || docker.Rootless(info.SecurityOptions), nil
}

// rootlessSocket is the user's rootless Podman socket, "" when there is none (or we are root).
func rootlessSocket() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if os.Geteuid() == 0 || dir == "" {
		return ""
	}
	p := filepath.Join(dir, "podman", "podman.sock")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }
