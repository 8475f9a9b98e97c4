// Package podman is the podman driver: the docker driver's node — the same node image, a network
// per profile with a stable IP, /var on a volume, the API server and SSH ports published on
// 127.0.0.1 only — made through rootful Podman's Docker-compatible API service
// (`podman system service`, systemd's podman.socket). The node is pkg/driver/docker's Driver over
// docker.Podman(), the engine description (where the service listens, names in messages, what its
// compat API needs differently); this package is the driver's registry entry and health advice.
package podman

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"mkube/pkg/driver"
	"mkube/pkg/driver/docker"
)

// Name of the driver.
const Name = "podman"

// DefaultSocket is rootful Podman's API socket, which mkube uses unless CONTAINER_HOST says otherwise.
const DefaultSocket = docker.PodmanSocket

// Entry registers the driver. It ranks below docker (which wins when both are healthy, as in
// minikube) and above the VM drivers: a container starts in seconds, a VM in minutes.
func Entry(goos string) driver.Entry {
	return driver.Entry{Name: Name, Priority: 90, Supported: goos == "linux", New: New,
		Health: func(ctx context.Context, _ driver.Settings) driver.Health { return Health(ctx) }}
}

// Engine is rootful Podman's compat service at Host() (described in pkg/driver/docker, beside
// Docker, so each engine can name the other as a peer).
func Engine() docker.Engine { return docker.Podman() }

// New connects to Podman's service; the driver holds that client until Close.
func New(profile string, opts driver.Options) (driver.Driver, error) {
	d, err := docker.NewOn(Engine(), profile, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Host is where Podman's service is: CONTAINER_HOST when set, else DefaultSocket.
func Host() string { return docker.PodmanHost() }

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
