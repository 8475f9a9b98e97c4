package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"mkube/pkg/driver"
)

// Health checks that Docker is installed, its daemon answers, we may talk to it, and it runs
// rootful.
func Health(ctx context.Context) driver.Health { return health(ctx, Docker(), LookPath) }

func health(ctx context.Context, eng Engine, lookPath func(...string) (string, error)) driver.Health {
	rootless, err := Probe(ctx, eng)
	if errors.Is(err, ErrEngineAddress) {
		return driver.Health{Problem: firstLine(err), Fix: "check DOCKER_HOST"}
	}
	if err == nil && rootless {
		return driver.Health{Installed: true, Running: true, Problem: "Docker runs rootless, and mkube does not support rootless Docker yet",
			Fix: "use the rootful engine: `docker context use default` and unset DOCKER_HOST (sudo systemctl start docker), or --driver=podman with rootful Podman"}
	}
	if err == nil {
		return driver.Health{Installed: true, Running: true, Healthy: true}
	}
	_, lookErr := lookPath("dockerd", "docker")
	installed := lookErr == nil
	switch {
	case strings.Contains(err.Error(), "permission denied"):
		return driver.Health{Installed: true, Running: true, Problem: "Docker is running but you may not use it: " + firstLine(err),
			Fix: "add yourself to the docker group: sudo usermod -aG docker $USER && newgrp docker"}
	case !installed:
		return driver.Health{Problem: "Docker is not installed",
			Fix: "install Docker (Debian/Ubuntu: sudo apt-get install docker.io), or pick another --driver"}
	default:
		return driver.Health{Installed: true, Problem: "Docker is installed but the daemon is not running",
			Fix: "start it: sudo systemctl start docker (without systemd: sudo dockerd &)"}
	}
}

// ErrEngineAddress is a Probe that could not make a client: the engine's address is malformed.
var ErrEngineAddress = errors.New("bad engine address")

// Probe asks the engine whether it answers and whether it runs rootless, within 5 seconds: the
// facts a driver's Health turns into advice.
func Probe(ctx context.Context, eng Engine) (rootless bool, err error) {
	cli, err := eng.Connect()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrEngineAddress, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return false, err
	}
	return engineRootless(ctx, eng, cli)
}

// LookPath finds the first of names on PATH.
func LookPath(names ...string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		for _, n := range names {
			p := filepath.Join(dir, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	return "", errors.New("not found")
}
