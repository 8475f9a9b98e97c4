package docker

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/moby/moby/client"
)

// Engine is a container engine that serves the Docker API, and what differs between the ones mkube
// drives: Docker itself (the docker driver) and Podman's Docker-compatible service (the podman
// driver, pkg/driver/podman, which adds its registry entry and health advice). Both drivers are
// this package's Driver over their Engine, so a node container is made, started, reached and
// removed the same way whichever engine holds it. Both engines are described here, side by side,
// because each must know the other (Peers).
type Engine struct {
	// Driver is the driver's name ("docker"); it is also the node's container= variable, which
	// tells systemd in the node what it runs in.
	Driver string
	// Title names the engine in messages ("Docker"); CLI is its command in advice ("docker").
	Title, CLI string
	// Connect makes a client of the engine that negotiates the API version on its first request.
	Connect func() (*client.Client, error)
	// Rootless tells whether the engine runs rootless; nil asks /info's security options, as
	// Docker lists "name=rootless" there.
	Rootless func(ctx context.Context, cli *client.Client) (bool, error)
	// Peers are the other engines on this host whose networks a new profile network must not
	// overlap. Their bridges are not always up where the host's interfaces would show them:
	// netavark (Podman) brings a network's bridge up only while a container on it runs, so a
	// stopped Podman cluster's subnet is visible only by asking Podman.
	Peers func() []Engine
	// UnmaskAll are the security options that give a node started without --privileged a writable
	// /proc/sys (what Docker's `--security-opt systempaths=unconfined` does through HostConfig's
	// MaskedPaths, which Podman's compat API ignores).
	UnmaskAll []string
}

// Docker is the Docker engine in the environment (DOCKER_HOST, else the default socket).
func Docker() Engine {
	return Engine{Driver: Name, Title: "Docker", CLI: "docker", Connect: newClient,
		Peers: func() []Engine { return []Engine{Podman()} }}
}

// PodmanSocket is rootful Podman's API socket: where systemd's podman.socket listens, and where
// `podman system service` listens when run as root without an address.
const PodmanSocket = "unix:///run/podman/podman.sock"

// Podman is rootful Podman's Docker-compatible service at PodmanHost(): the podman driver's engine.
func Podman() Engine {
	return Engine{Driver: "podman", Title: "Podman", CLI: "podman", Connect: podmanClient, Rootless: podmanRootless,
		Peers: func() []Engine { return []Engine{Docker()} },
		// Podman's compat API ignores HostConfig.MaskedPaths; its own option unmasks /proc/sys.
		UnmaskAll: []string{"unmask=ALL"}}
}

// PodmanHost is where Podman's service is: CONTAINER_HOST (podman --remote's own variable) when
// set, else rootful Podman's socket. DOCKER_HOST is Docker's and is not looked at.
func PodmanHost() string {
	if h := os.Getenv("CONTAINER_HOST"); h != "" {
		return h
	}
	return PodmanSocket
}

func podmanClient() (*client.Client, error) {
	host := PodmanHost()
	// The Docker API client speaks HTTP over a unix socket or TCP; Podman's ssh:// connections
	// (podman machine, remote hosts) are podman --remote's own protocol.
	if !strings.HasPrefix(host, "unix://") && !strings.HasPrefix(host, "tcp://") {
		return nil, fmt.Errorf("CONTAINER_HOST=%s: mkube reaches Podman's API service at a unix:// or tcp:// address", host)
	}
	return client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
}

// podmanRootless asks Podman's compat /info whether it runs rootless. Podman 4.3 (Debian 12's)
// says so only in a field of its own, "Rootless", which the Docker API's Info type has not; newer
// releases also list "name=rootless" in SecurityOptions, as Docker does. The request goes over the
// client's own connection (unix or plain tcp, as podmanClient allows), unversioned as the API
// permits.
func podmanRootless(ctx context.Context, cli *client.Client) (bool, error) {
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
	return info.Rootless || Rootless(info.SecurityOptions), nil
}

// newClient is a client of the engine in the environment that negotiates the API version on its
// first request, down to the engine's own (Debian's Docker 20.10 speaks 1.41; the client goes as
// low as client.MinAPIVersion, 1.40).
func newClient() (*client.Client, error) {
	return client.New(client.FromEnv, client.WithAPIVersionNegotiation())
}

// Rootless tells whether the security options an engine's /info lists say it runs rootless: Docker
// lists "name=rootless" (so do newer Podman releases' compat API; Podman 4.3's does not). An entry
// holds comma-separated key=value fields ("name=seccomp,profile=default").
func Rootless(securityOptions []string) bool {
	for _, o := range securityOptions {
		fields, err := csv.NewReader(strings.NewReader(o)).Read()
		if err != nil {
			continue
		}
		for _, f := range fields {
			if strings.TrimSpace(f) == "name=rootless" {
				return true
			}
		}
	}
	return false
}

// engineRootless asks the engine whether it runs rootless.
func engineRootless(ctx context.Context, eng Engine, cli *client.Client) (bool, error) {
	if eng.Rootless != nil {
		return eng.Rootless(ctx, cli)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return false, err
	}
	return Rootless(info.Info.SecurityOptions), nil
}
