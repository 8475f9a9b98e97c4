package docker

import (
	"context"
	"errors"
	"mkube/pkg/driver"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Health checks that Docker is installed, its daemon answers, and we may talk to it.
func Health(ctx context.Context) driver.Health {
	cli, err := newClient()
	if err != nil {
		return driver.Health{Problem: err.Error(), Fix: "check DOCKER_HOST"}
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = cli.Ping(ctx, client.PingOptions{})
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

func lookPath(names ...string) (string, error) {
	for _, dir := range strings.Split(os.Getenv("PATH"), string(os.PathListSeparator)) {
		for _, n := range names {
			p := dir + "/" + n
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	return "", errors.New("not found")
}
