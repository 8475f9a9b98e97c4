//go:build integration

package integration

// What TestSafety builds its scenarios from: the bad inputs, fingerprints of everything the user
// has, a kubectl that runs beside mkube, a start killed by a signal, a Docker API that can be cut.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type badInput struct {
	name string
	env  []string
	args []string
	code int
	want string
}

// badInputs is the table: every command, hostile and mistyped input, each answered with one line.
// running is a started profile; unmarked is a directory mkube did not create; otherHome is the
// environment of a second, separate mkube home and kubeconfig.
func badInputs(running, unmarked, home, long string, otherHome []string) []badInput {
	return []badInput{
		// A second MKUBE_HOME on the machine never adopts the first one's cluster.
		{"another home starts the same profile", otherHome, []string{"start", "-p", running}, 11, "MK_CONFLICT"},
		{"another home deletes the same profile", otherHome, []string{"delete", "-p", running}, 11, "MK_CONFLICT"},
		{"delete climbing out", nil, []string{"delete", "-p", "../.."}, 14, "MK_USAGE"},
		{"delete parent", nil, []string{"delete", "-p", ".."}, 14, "MK_USAGE"},
		{"delete dot", nil, []string{"delete", "-p", "."}, 14, "MK_USAGE"},
		{"delete empty", nil, []string{"delete", "-p", ""}, 14, "MK_USAGE"},
		{"delete separator", nil, []string{"delete", "-p", "a/b"}, 14, "MK_USAGE"},
		{"delete absolute", nil, []string{"delete", "-p", "/etc"}, 14, "MK_USAGE"},
		{"delete purge of a foreign profile dir", nil, []string{"delete", "--purge", "-p", "x/../../.."}, 14, "MK_USAGE"},
		{"status newline", nil, []string{"status", "-p", "a\nb"}, 14, "MK_USAGE"},
		{"start very long", nil, []string{"start", "-p", long}, 14, "MK_USAGE"},
		{"start non-ASCII", nil, []string{"start", "-p", "ünïcödé"}, 14, "MK_USAGE"},
		{"start upper case", nil, []string{"start", "-p", "Bad_Name"}, 14, "MK_USAGE"},
		{"ssh climbing", nil, []string{"ssh", "-p", "../x"}, 14, "MK_USAGE"},
		{"MKUBE_PROFILE hostile", []string{"MKUBE_PROFILE=../.."}, []string{"status"}, 14, "MKUBE_PROFILE"},
		{"memory overflow", nil, []string{"start", "--memory", "1e30g"}, 14, "MK_USAGE"},
		{"memory nan", nil, []string{"start", "--memory", "nan"}, 14, "MK_USAGE"},
		{"memory negative", nil, []string{"start", "--memory", "-1g"}, 14, "MK_USAGE"},
		{"memory too small", nil, []string{"start", "--memory", "100mb"}, 23, "RSRC_INSUFFICIENT_MEMORY"},
		{"disk nan", nil, []string{"start", "--disk-size", "nan"}, 14, "MK_USAGE"},
		{"disk inf", nil, []string{"start", "--disk-size", "inf"}, 14, "MK_USAGE"},
		{"disk too small", nil, []string{"start", "--disk-size", "1g"}, 26, "RSRC_INSUFFICIENT_STORAGE"},
		{"cpus zero", nil, []string{"start", "--cpus", "0"}, 29, "RSRC_INSUFFICIENT_CORES"},
		{"cpus huge", nil, []string{"start", "--cpus", "100000"}, 29, "RSRC_INSUFFICIENT_CORES"},
		{"cpus text", nil, []string{"start", "--cpus", "abc"}, 14, "MK_USAGE"},
		{"version unknown", nil, []string{"start", "--kubernetes-version", "v1.99.0"}, 106, "K8S_UNSUPPORTED_VERSION"},
		{"version path", nil, []string{"start", "--kubernetes-version", "../../etc"}, 106, "K8S_UNSUPPORTED_VERSION"},
		{"driver unknown", nil, []string{"start", "--driver", "nosuch"}, 56, "DRV_UNSUPPORTED"},
		{"docker down", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, []string{"start", "--driver", "docker"}, 63, "daemon is not running"},
		{"extra-config unknown component", nil, []string{"start", "--extra-config", "nosuch.x=1"}, 14, "unknown component"},
		{"extra-config key with YAML", nil, []string{"start", "--extra-config", "apiserver.a: b=1"}, 14, "MK_USAGE"},
		{"extra-config value with newline", nil, []string{"start", "--extra-config", "kubelet.max-pods=1\nx: y"}, 14, "MK_USAGE"},
		{"wait unknown", nil, []string{"start", "--wait", "bogus"}, 14, "MK_USAGE"},
		{"plain-HTTP remote binary mirror", nil, []string{"start", "--binary-mirror", "http://mirror.invalid/release"}, 14, "MK_USAGE"},
		{"plain-HTTP remote image repository", nil, []string{"start", "--image-repository", "http://mirror.invalid"}, 14, "MK_USAGE"},
		{"unknown flag", nil, []string{"start", "--nosuchflag"}, 14, "MK_USAGE"},
		{"kubeconfig entry of the user's", nil, []string{"start", "-p", userContext}, 11, "MK_CONFLICT"},
		{"volume of the user's", nil, []string{"start", "-p", userVolume}, 11, "MK_CONFLICT"},
		{"container of the user's", nil, []string{"start", "-p", userContainer}, 11, "MK_CONFLICT"},
		{"network of the user's", nil, []string{"start", "-p", userNetwork}, 11, "MK_CONFLICT"},
		{"delete the user's container", nil, []string{"delete", "-p", userContainer}, 11, "MK_CONFLICT"},
		{"stop unknown", nil, []string{"stop", "-p", "nosuch"}, 85, "GUEST_NOT_FOUND"},
		{"ip unknown", nil, []string{"ip", "-p", "nosuch"}, 85, "GUEST_NOT_FOUND"},
		{"ssh unknown", nil, []string{"ssh", "-p", "nosuch"}, 85, "GUEST_NOT_FOUND"},
		{"kubectl unknown", nil, []string{"kubectl", "-p", "nosuch", "--", "get", "pods"}, 85, "GUEST_NOT_FOUND"},
		{"profile unknown", nil, []string{"profile", "nosuch"}, 85, "GUEST_NOT_FOUND"},
		{"profile hostile", nil, []string{"profile", "../.."}, 14, "MK_USAGE"},
		{"config set hostile profile", nil, []string{"config", "set", "profile", "../.."}, 14, "MK_USAGE"},
		{"config set memory overflow", nil, []string{"config", "set", "memory", "1e30g"}, 14, "MK_USAGE"},
		{"config set unknown key", nil, []string{"config", "set", "nosuch", "1"}, 14, "MK_USAGE"},
		{"addon unknown", nil, []string{"-p", running, "addons", "enable", "nosuch"}, 14, "MK_USAGE"},
		{"addon with shell", nil, []string{"-p", running, "addons", "enable", "dashboard;rm -rf /"}, 14, "MK_USAGE"},
		{"addon of an unknown profile", nil, []string{"-p", "nosuch", "addons", "enable", "dashboard"}, 85, "GUEST_NOT_FOUND"},
		{"service unknown", nil, []string{"-p", running, "service", "nosuch", "--url", "--wait", "0"}, 110, "SVC_"},
		{"cache add not a reference", nil, []string{"cache", "add", "not a ref!!"}, 14, "MK_USAGE"},
		{"cache delete not cached", nil, []string{"cache", "delete", "registry.k8s.io/nosuch:1"}, 14, "MK_USAGE"},
		{"logs into a missing directory", nil, []string{"-p", running, "logs", "--file", "/nonexistent/dir/logs.txt"}, 14, "MK_USAGE"},
		{"status unknown format", nil, []string{"-p", running, "status", "-o", "yaml"}, 14, "MK_USAGE"},
		{"MKUBE_HOME not mkube's", []string{"MKUBE_HOME=" + unmarked}, []string{"delete", "--all", "--purge"}, 18, "MK_CONFIG"},
		// HOME is a throw-away directory here too: a regression must not reach the real one.
		{"MKUBE_HOME is the home directory", []string{"HOME=" + home, "MKUBE_HOME=" + home}, []string{"delete", "--all", "--purge"}, 18, "MK_CONFIG"},
	}
}

// makeUserObjects creates the user's own container, volume and network, named like profiles.
func makeUserObjects(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"volume", "create", userVolume},
		{"network", "create", userNetwork},
		{"container", "create", "--name", userContainer, "mkube.local/node:v0.1.0-dev", "true"},
	} {
		if out, err := docker(args...); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		docker("container", "rm", "-f", userContainer)
		docker("volume", "rm", userVolume)
		docker("network", "rm", userNetwork)
	})
}

// takeSnapshot fingerprints everything a command could touch: every file under MKUBE_HOME (mkube's
// own lock files aside: empty files that exist to be locked), the kubeconfig, and the Docker,
// Podman and libvirt objects on the machine.
func takeSnapshot(t *testing.T, c *cluster) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(fingerprintDir(t, c.home, func(rel string) bool { return strings.HasPrefix(rel, "locks"+string(filepath.Separator)) }))
	b.WriteString(fingerprintDir(t, filepath.Dir(c.kubeconfig), nil))
	for _, args := range [][]string{
		{"ps", "-a", "--no-trunc", "--format", "container {{.ID}} {{.Names}} {{.Image}} {{.State}}|{{.Labels}}"},
		{"volume", "ls", "--format", "volume {{.Name}}|{{.Labels}}"},
		{"network", "ls", "--no-trunc", "--format", "network {{.ID}} {{.Name}}|{{.Labels}}"},
	} {
		out, err := docker(args...)
		if err != nil {
			t.Fatalf("docker %v: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for i, l := range lines {
			// Docker prints labels in map order: sort them so only a real change differs.
			obj, labels, _ := strings.Cut(l, "|")
			ls := strings.Split(labels, ",")
			slices.Sort(ls)
			lines[i] = obj + " " + strings.Join(ls, ",")
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	// Rootful Podman's objects too, where Podman runs (mkube reaches it for the podman driver and
	// to keep a docker network's subnet off Podman's): names, IDs and states, sorted.
	if _, err := runErr("podman", "info", "--format", "{{.Host.Arch}}"); err == nil {
		for _, args := range [][]string{
			{"ps", "-a", "--no-trunc", "--format", "podman container {{.ID}} {{.Names}} {{.State}}"},
			{"volume", "ls", "--format", "podman volume {{.Name}}"},
			{"network", "ls", "--no-trunc", "--format", "podman network {{.ID}} {{.Name}}"},
		} {
			out, err := runErr("podman", args...)
			if err != nil {
				t.Fatalf("podman %v: %v", args, err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			slices.Sort(lines)
			b.WriteString(strings.Join(lines, "\n") + "\n")
		}
	}
	for _, args := range [][]string{{"list", "--all", "--name"}, {"net-list", "--all", "--name"}, {"pool-list", "--all", "--name"}} {
		if out, err := runErr("virsh", append([]string{"-c", "qemu:///system"}, args...)...); err == nil {
			b.WriteString("virsh " + args[0] + ": " + strings.Join(strings.Fields(out), " ") + "\n")
		}
	}
	return b.String()
}

// fingerprintDir lists every file under dir with its mode and content digest (links with their
// target), sorted; skip leaves paths out by their path relative to dir.
func fingerprintDir(t *testing.T, dir string, skip func(rel string) bool) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if skip != nil && skip(rel) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%s link -> %s", p, target))
		case info.IsDir():
			lines = append(lines, fmt.Sprintf("%s dir %v", p, info.Mode().Perm()))
		default:
			raw, _ := os.ReadFile(p)
			sum := sha256.Sum256(raw)
			lines = append(lines, fmt.Sprintf("%s file %v %s", p, info.Mode().Perm(), hex.EncodeToString(sum[:8])))
		}
		return nil
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// diffLines shows the lines only one of two snapshots has.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func assertNoLock(t *testing.T, kubeconfig string) {
	t.Helper()
	if _, err := os.Lstat(kubeconfig + ".lock"); err == nil {
		t.Errorf("%s.lock was left behind", kubeconfig)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// loop runs kubectl config commands on a kubeconfig until stopped, as a user would in another
// terminal while mkube works.
type loop struct {
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	made     []string
	failures []string
	runs     int
}

func kubectlLoop(t *testing.T, kubectl, kubeconfig, tag string) *loop {
	l := &loop{done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.done:
				return
			case <-time.After(150 * time.Millisecond):
			}
			name := fmt.Sprintf("itest-kc-%s-%d", tag, i)
			args := []string{"--kubeconfig", kubeconfig, "config", "set-context", name, "--cluster=work", "--user=work"}
			if i%2 == 1 {
				args = []string{"--kubeconfig", kubeconfig, "config", "use-context", "work"}
			}
			out, err := runErr(kubectl, args...)
			l.mu.Lock()
			l.runs++
			if err != nil {
				l.failures = append(l.failures, fmt.Sprintf("kubectl %v: %v: %s", args[2:], err, strings.TrimSpace(out)))
			} else if i%2 == 0 {
				l.made = append(l.made, name)
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *loop) stop(t *testing.T) {
	t.Helper()
	close(l.done)
	l.wg.Wait()
	if l.runs == 0 {
		t.Error("kubectl never ran beside mkube")
	}
	for _, f := range l.failures {
		t.Errorf("kubectl beside mkube failed: %s", f)
	}
}

func (l *loop) contexts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.made)
}

// startSignalled runs mkube and sends sig after the delay (unless it finished before), returning
// its output and exit code.
func (c *cluster) startSignalled(sig os.Signal, after time.Duration, args ...string) (string, int) {
	c.t.Helper()
	due := time.Now().Add(after)
	return c.startSignalledWhen(sig, func() bool { return time.Now().After(due) }, args...)
}

// startSignalledWhen runs mkube and sends sig once when() holds (polled every 50ms), unless it
// finished before, returning its output and exit code.
func (c *cluster) startSignalledWhen(sig os.Signal, when func() bool, args ...string) (string, int) {
	c.t.Helper()
	cmd := c.command(context.Background(), args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done: // finished before the signal was due
		if err == nil {
			return out.String(), 0
		}
		return out.String(), exitCode(err)
	case <-waitFor(when):
		cmd.Process.Signal(sig)
	}
	select {
	case err := <-done:
		code := 0
		if err != nil {
			code = exitCode(err)
		}
		return out.String(), code
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		c.t.Errorf("mkube did not exit within 2 minutes of %v", sig)
		return out.String(), -1
	}
}

// waitFor closes its channel once cond holds.
func waitFor(cond func() bool) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for !cond() {
			time.Sleep(50 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}

// dockerProxy stands between mkube and the Docker engine on a unix socket of the test's own, so a
// test can make the Docker API vanish (every connection cut, nothing listening) and come back,
// without stopping the engine that other containers on this machine run on.
type dockerProxy struct {
	t     *testing.T
	path  string
	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newDockerProxy(t *testing.T) *dockerProxy {
	p := &dockerProxy{t: t, path: filepath.Join(t.TempDir(), "docker.sock")}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *dockerProxy) restore() {
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", "/var/run/docker.sock")
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			// Half-closes pass through as half-closes: docker exec ends stdin with CloseWrite and
			// still reads the output (and the exit) after it.
			go func() { io.Copy(up, c); closeWrite(up) }()
			go func() { io.Copy(c, up); closeWrite(c) }()
		}
	}()
}

func (p *dockerProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	os.Remove(p.path)
}

// in is the same cluster driven from a subtest: failures end the subtest, not its parent.
func (c *cluster) in(t *testing.T) *cluster {
	cc := *c
	cc.t = t
	return &cc
}

func closeWrite(c net.Conn) {
	if u, ok := c.(*net.UnixConn); ok {
		u.CloseWrite()
		return
	}
	c.Close()
}
