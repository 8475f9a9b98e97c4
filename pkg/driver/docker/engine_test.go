package docker

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/moby/client"
)

func TestRootless(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []string
		want bool
	}{
		{"rootful Docker", []string{"name=apparmor", "name=seccomp,profile=builtin", "name=cgroupns"}, false},
		{"rootless Docker", []string{"name=seccomp,profile=builtin", "name=rootless", "name=cgroupns"}, true},
		{"rootful Podman", []string{"name=seccomp,profile=default"}, false},
		{"rootless Podman", []string{"name=seccomp,profile=default", "name=rootless"}, true},
		{"rootless inside an entry", []string{"name=seccomp,profile=default,name=rootless"}, true},
		{"a field that only mentions it", []string{"name=seccomp,profile=/etc/name=rootless.json"}, false},
		{"none", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rootless(tt.opts); got != tt.want {
				t.Errorf("Rootless(%q) = %v, want %v", tt.opts, got, tt.want)
			}
		})
	}
}

// fakeInfoEngine is an engine that answers ping and info, listing securityOptions.
func fakeInfoEngine(t *testing.T, securityOptions []string) Engine {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			json.NewEncoder(w).Encode(map[string]any{"SecurityOptions": securityOptions})
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	eng := Docker()
	eng.Connect = func() (*client.Client, error) {
		return client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersionNegotiation())
	}
	return eng
}

// failingEngine is an engine whose every connection fails as connect(2) does with errno.
func failingEngine(errno syscall.Errno) Engine {
	eng := Docker()
	eng.Connect = func() (*client.Client, error) {
		return client.New(client.WithHost("unix:///fake/docker.sock"), client.WithAPIVersionNegotiation(),
			client.WithDialContext(func(context.Context, string, string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
			}))
	}
	return eng
}

func TestHealth(t *testing.T) {
	installed := func(...string) (string, error) { return "/usr/bin/docker", nil }
	missing := func(...string) (string, error) { return "", errors.New("not found") }
	for _, tt := range []struct {
		name      string
		eng       Engine
		lookPath  func(...string) (string, error)
		healthy   bool
		installed bool
		running   bool
		problem   string
		fix       string
	}{
		{name: "rootful Docker answers", eng: fakeInfoEngine(t, []string{"name=seccomp,profile=builtin"}), lookPath: installed,
			healthy: true, installed: true, running: true},
		{name: "rootless Docker is refused", eng: fakeInfoEngine(t, []string{"name=seccomp,profile=builtin", "name=rootless"}), lookPath: installed,
			installed: true, running: true, problem: "mkube does not support rootless Docker yet", fix: "docker context use default"},
		{name: "the socket is root's", eng: failingEngine(syscall.EACCES), lookPath: installed,
			installed: true, running: true, problem: "you may not use it", fix: "usermod -aG docker"},
		{name: "not installed", eng: failingEngine(syscall.ENOENT), lookPath: missing,
			problem: "Docker is not installed", fix: "apt-get install docker.io"},
		{name: "the daemon is down", eng: failingEngine(syscall.ECONNREFUSED), lookPath: installed,
			installed: true, problem: "the daemon is not running", fix: "systemctl start docker"},
		{name: "a malformed DOCKER_HOST", eng: Engine{Connect: func() (*client.Client, error) { return nil, errors.New("unable to parse docker host `nonsense`") }},
			lookPath: installed, problem: "unable to parse docker host", fix: "check DOCKER_HOST"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := health(context.Background(), tt.eng, tt.lookPath)
			if h.Healthy != tt.healthy || h.Installed != tt.installed || h.Running != tt.running {
				t.Errorf("health = %+v, want healthy %v installed %v running %v", h, tt.healthy, tt.installed, tt.running)
			}
			if !strings.Contains(h.Problem, tt.problem) || !strings.Contains(h.Fix, tt.fix) || (tt.problem == "") != (h.Problem == "") {
				t.Errorf("problem %q, fix %q; want them to contain %q and %q", h.Problem, h.Fix, tt.problem, tt.fix)
			}
		})
	}
}

// What each engine answers when a name or a subnet is taken.
func TestTakenErrors(t *testing.T) {
	for _, tt := range []struct {
		msg       string
		name, sub bool
	}{
		{msg: `Conflict. The container name "/demo" is already in use by container "4f2a". You have to remove (or rename) that container to be able to reuse that name.`, name: true},
		{msg: `creating container storage: the container name "demo" is already in use by 4f2a. You have to remove that container to be able to reuse that name: that name is already in use`, name: true},
		{msg: `Pool overlaps with other one on this address space`, sub: true},
		{msg: `subnet 192.168.49.0/24 is already used on the host or by another config`, sub: true},
		{msg: `no such image`},
	} {
		err := errors.New(tt.msg)
		if nameTaken(err) != tt.name || subnetTaken(err) != tt.sub {
			t.Errorf("%q: nameTaken %v subnetTaken %v, want %v %v", tt.msg, nameTaken(err), subnetTaken(err), tt.name, tt.sub)
		}
	}
}
