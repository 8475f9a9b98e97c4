package docker

import (
	"context"
	"encoding/csv"
	"strings"

	"github.com/moby/moby/client"
)

// Engine is a container engine that serves the Docker API, and what differs between the ones mkube
// drives: Docker itself (the docker driver) and Podman's Docker-compatible service (the podman
// driver, pkg/driver/podman). Both drivers are this package's Driver over their Engine, so a node
// container is made, started, reached and removed the same way whichever engine holds it.
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
	// UnmaskAll are the security options that give a node started without --privileged a writable
	// /proc/sys (what Docker's `--security-opt systempaths=unconfined` does through HostConfig's
	// MaskedPaths, which Podman's compat API ignores).
	UnmaskAll []string
}

// Docker is the Docker engine in the environment (DOCKER_HOST, else the default socket).
func Docker() Engine {
	return Engine{Driver: Name, Title: "Docker", CLI: "docker", Connect: newClient}
}

// newClient is a client of the engine in the environment that negotiates the API version on its
// first request, down to the engine's own (Debian's Docker 20.10 speaks 1.41; the client goes as
// low as client.MinAPIVersion, 1.40).
func newClient() (*client.Client, error) {
	return client.New(client.FromEnv, client.WithAPIVersionNegotiation())
}

// Rootless tells whether the security options an engine's /info lists say it runs rootless: Docker
// lists "name=rootless" (so do newer Podman releases' compat API; Podman 4.3's does not). An entry holds comma-separated key=value
// fields ("name=seccomp,profile=default").
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
