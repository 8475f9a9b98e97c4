package podman

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/client"

	"mkube/pkg/driver"
	"mkube/pkg/driver/docker"
)

// fakeService is Podman's compat API service on a unix socket, as far as a health check and
// auto-selection ask it: ping (with Podman's headers) and info, listing securityOptions and
// Rootless as Podman 4.3 does: only in its own field, never as "name=rootless". It returns the
// socket's unix:// address.
func fakeService(t *testing.T, securityOptions []string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mkube-podman") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "podman.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Libpod-Api-Version", "4.3.1")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			info := map[string]any{"SecurityOptions": securityOptions}
			if slices.Contains(securityOptions, rootless) { // Podman 4.3: the field, not the option
				info = map[string]any{"SecurityOptions": slices.DeleteFunc(slices.Clone(securityOptions), func(o string) bool { return o == rootless }), "Rootless": true}
			}
			if slices.Contains(securityOptions, rootlessNewer) { // newer Podman: both
				info["Rootless"] = true
			}
			json.NewEncoder(w).Encode(info)
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

// withPath puts a fake executable of each name alone on PATH.
func withPath(t *testing.T, names ...string) {
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

const (
	rootful       = "name=seccomp,profile=default"
	rootless      = "podman 4.3: Rootless" // the fake says it in the Rootless field only
	rootlessNewer = "name=rootless"
)

func TestHealth(t *testing.T) {
	installed := func(...string) (string, error) { return "/usr/bin/podman", nil }
	missing := func(...string) (string, error) { return "", errors.New("not found") }
	dead := "unix:///nonexistent/podman.sock"
	for _, tt := range []struct {
		name      string
		host      string // CONTAINER_HOST; "" for a fake service
		secOpts   []string
		lookPath  func(...string) (string, error)
		userSock  string
		dialErrno syscall.Errno // every connection fails with it
		healthy   bool
		installed bool
		running   bool
		problem   string
		fix       string
	}{
		{name: "rootful service answers", secOpts: []string{rootful}, lookPath: installed, healthy: true, installed: true, running: true},
		{name: "a remote service answers without a local podman", secOpts: []string{rootful}, lookPath: missing, healthy: true, installed: true, running: true},
		{name: "rootless Podman 4.3 is refused", secOpts: []string{rootful, rootless}, lookPath: installed, installed: true, running: true,
			problem: "runs rootless, and mkube does not support rootless Podman yet", fix: "use rootful Podman: unset CONTAINER_HOST"},
		{name: "rootless newer Podman is refused", secOpts: []string{rootful, rootlessNewer}, lookPath: installed, installed: true, running: true,
			problem: "runs rootless, and mkube does not support rootless Podman yet", fix: "use rootful Podman: unset CONTAINER_HOST"},
		// Only root may use rootful Podman's socket: anyone else is told so, not that it is down.
		{name: "the socket is root's", host: DefaultSocket, dialErrno: syscall.EACCES, lookPath: installed, installed: true, running: true,
			problem: "rootful Podman's API socket /run/podman/podman.sock is root's", fix: "SocketGroup="},
		{name: "not installed", host: dead, lookPath: missing,
			problem: "Podman is not installed", fix: "sudo apt-get install podman"},
		{name: "service not started", host: dead, lookPath: installed, installed: true,
			problem: "does not answer at " + dead, fix: "sudo systemctl enable --now podman.socket (without systemd: sudo podman system service --time=0 unix:///run/podman/podman.sock &)"},
		{name: "service not started, a rootless one is", host: dead, lookPath: installed, userSock: "/run/user/1000/podman/podman.sock", installed: true,
			problem: "a rootless Podman service answers at /run/user/1000/podman/podman.sock: mkube does not support rootless Podman yet", fix: "podman.socket"},
		{name: "ssh:// is podman --remote's", host: "ssh://core@127.0.0.1:2222/run/podman/podman.sock", lookPath: installed,
			problem: "CONTAINER_HOST=ssh://core@127.0.0.1:2222/run/podman/podman.sock: mkube reaches Podman's API service at a unix:// or tcp:// address", fix: "unset CONTAINER_HOST"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = fakeService(t, tt.secOpts)
			}
			t.Setenv("CONTAINER_HOST", host)
			eng := Engine()
			if tt.dialErrno != 0 {
				eng.Connect = func() (*client.Client, error) {
					return client.New(client.WithHost(host), client.WithDialContext(func(context.Context, string, string) (net.Conn, error) {
						return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", tt.dialErrno)}
					}))
				}
			}
			h := health(context.Background(), eng, Host(), tt.lookPath, tt.userSock)
			if h.Healthy != tt.healthy || h.Installed != tt.installed || h.Running != tt.running {
				t.Errorf("health = %+v, want healthy %v installed %v running %v", h, tt.healthy, tt.installed, tt.running)
			}
			if !strings.Contains(h.Problem, tt.problem) || !strings.Contains(h.Fix, tt.fix) || (tt.problem == "") != (h.Problem == "") {
				t.Errorf("problem %q, fix %q; want them to contain %q and %q", h.Problem, h.Fix, tt.problem, tt.fix)
			}
		})
	}
}

func TestHost(t *testing.T) {
	t.Setenv("CONTAINER_HOST", "")
	if got := Host(); got != DefaultSocket {
		t.Errorf("Host() = %s, want %s", got, DefaultSocket)
	}
	t.Setenv("CONTAINER_HOST", "unix:///run/user/1000/podman/podman.sock")
	if got := Host(); got != "unix:///run/user/1000/podman/podman.sock" {
		t.Errorf("Host() = %s, want CONTAINER_HOST's", got)
	}
	t.Setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
	t.Setenv("CONTAINER_HOST", "")
	if got := Host(); got != DefaultSocket {
		t.Errorf("Host() = %s: DOCKER_HOST is Docker's", got)
	}
}

func TestEntry(t *testing.T) {
	for goos, want := range map[string]bool{"linux": true, "darwin": false, "windows": false} {
		if got := Entry(goos).Supported; got != want {
			t.Errorf("Entry(%s).Supported = %v, want %v", goos, got, want)
		}
	}
	if d, p := docker.Entry("linux").Priority, Entry("linux").Priority; p >= d {
		t.Errorf("podman's priority %d is not below docker's %d", p, d)
	}
}

// Auto-selection among the container drivers, with the real health checks against fake engines:
// docker wins when both are healthy; Podman alone is picked; with neither the error names both.
func TestChoose(t *testing.T) {
	for _, tt := range []struct {
		name                string
		docker, podman      bool // a healthy engine answers
		onPath              []string
		want                string
		wantErr, wantOthers []string
	}{
		{name: "both healthy: docker", docker: true, podman: true, onPath: []string{"docker", "podman"}, want: "docker", wantOthers: []string{"podman"}},
		{name: "only Podman installed", podman: true, onPath: []string{"podman"}, want: "podman"},
		{name: "Docker installed but down", podman: true, onPath: []string{"docker", "dockerd", "podman"}, want: "podman"},
		{name: "neither installed", wantErr: []string{"docker: Docker is not installed", "podman: Podman is not installed", "apt-get install podman"}},
		{name: "Podman installed, service down", onPath: []string{"podman"}, wantErr: []string{"docker: Docker is not installed", "podman: Podman is installed but its rootful API service does not answer", "podman.socket"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			withPath(t, tt.onPath...)
			t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
			t.Setenv("CONTAINER_HOST", "unix:///nonexistent/podman.sock")
			if tt.docker {
				t.Setenv("DOCKER_HOST", fakeService(t, []string{rootful}))
			}
			if tt.podman {
				t.Setenv("CONTAINER_HOST", fakeService(t, []string{rootful}))
			}
			r := driver.NewRegistry(docker.Entry("linux"), Entry("linux"))
			c, err := r.Choose(context.Background(), nil)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("chose %s, want an error", c.Entry.Name)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, err)
					}
				}
				return
			}
			if err != nil || c.Entry.Name != tt.want || strings.Join(c.Others, ",") != strings.Join(tt.wantOthers, ",") {
				t.Fatalf("chose %s (others %v), %v; want %s (others %v)", c.Entry.Name, c.Others, err, tt.want, tt.wantOthers)
			}
		})
	}
}
