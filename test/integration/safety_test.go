//go:build integration

package integration

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mkube/pkg/k8sversion"
)

// The user's own things, named like the profiles the suite then asks mkube for.
const (
	userVolume    = "itest-user-vol"
	userContainer = "itest-user-ctr"
	userNetwork   = "itest-user-net"
	userContext   = "itest-user-prod"
)

// userKubeconfig is a kubeconfig written by hand (its formatting is part of what must stay), with
// an entry named like a profile.
const userKubeconfig = `# my kubeconfig: keep my comments and layout
apiVersion: v1
kind: Config
clusters:
- name: itest-user-prod
  cluster: {server: "https://prod.example.invalid:6443"}
- name: work
  cluster: {server: "https://work.example.invalid:6443"}
users:
- name: itest-user-prod
  user: {token: prod-token}
- name: work
  user: {token: work-token}
contexts:
- name: itest-user-prod
  context: {cluster: itest-user-prod, user: itest-user-prod}
- name: work
  context: {cluster: work, user: work, namespace: team}
current-context: work
`

// TestSafety is the fault and bad-input suite: mkube beside a user's own containers, volumes,
// networks and kubeconfig entries of the same names, kubectl working on the same kubeconfig at the
// same time, hostile and mistyped input to every command, SIGKILL and Ctrl-C at random points,
// concurrent starts, the Docker API vanishing mid-start and a full disk. Afterwards every one of
// the user's objects and files is as it was.
func TestSafety(t *testing.T) {
	mirror := serveMirror(t)
	c0 := newCluster(t, mirror)
	c := c0
	const p = "itest-safe"
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("random points from seed %d", seed)
	t.Cleanup(func() { c.run("delete", "--all") })

	// The user's kubeconfig is a symlink into their dotfiles, as many keep it.
	dotfiles := filepath.Join(filepath.Dir(c.kubeconfig), "dotfiles")
	os.MkdirAll(dotfiles, 0o700)
	realKubeconfig := filepath.Join(dotfiles, "kubeconfig")
	if err := os.WriteFile(realKubeconfig, []byte(userKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(realKubeconfig, c.kubeconfig); err != nil {
		t.Fatal(err)
	}
	makeUserObjects(t)

	kubectl := outPath(t, "mirror", "release", k8sversion.DefaultString, "bin", "linux", "amd64", "kubectl")

	t.Run("start and delete beside kubectl on the same kubeconfig", func(t *testing.T) {
		c := c0.in(t)
		loop := kubectlLoop(t, kubectl, c.kubeconfig, "start")
		c.must(append([]string{"start", "-p", p}, c.mirrorFlags()...)...)
		loop.stop(t)
		if st, err := os.Lstat(c.kubeconfig); err != nil || st.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("the kubeconfig symlink was replaced: %v", err)
		}
		assertNoLock(t, c.kubeconfig)
		names := run(t, kubectl, "--kubeconfig", c.kubeconfig, "config", "get-contexts", "-o", "name")
		for _, want := range append(loop.contexts(), p, userContext, "work") {
			if !slices.Contains(strings.Fields(names), want) {
				t.Errorf("context %q lost; contexts now: %s", want, names)
			}
		}
		// The user's own entry is untouched: same token, same server.
		view := run(t, kubectl, "--kubeconfig", c.kubeconfig, "config", "view", "--raw", "-o", "jsonpath={.users[?(@.name==\"itest-user-prod\")].user.token}")
		if view != "prod-token" {
			t.Errorf("the user's itest-user-prod credentials changed: %q", view)
		}
		run(t, kubectl, "--kubeconfig", c.kubeconfig, "config", "use-context", "work")
		c.kubectl(p, "get", "nodes")
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		c := c0.in(t)
		before := takeSnapshot(t, c)
		unmarked := filepath.Join(t.TempDir(), "a", "b", "notmkube")
		os.MkdirAll(filepath.Join(unmarked, "profiles"), 0o755)
		os.WriteFile(filepath.Join(unmarked, "notes.txt"), []byte("mine"), 0o644)
		home := filepath.Join(t.TempDir(), "a", "b", "user")
		os.MkdirAll(home, 0o755)
		os.WriteFile(filepath.Join(home, ".bashrc"), []byte("# mine"), 0o644)
		long := strings.Repeat("a", 300)
		otherHome := []string{"MKUBE_HOME=" + filepath.Join(t.TempDir(), "a", "b", "second-home"), "KUBECONFIG=" + filepath.Join(t.TempDir(), "second-kubeconfig")}
		for _, tt := range badInputs(p, unmarked, home, long, otherHome) {
			t.Run(tt.name, func(t *testing.T) {
				cmd := execMkube(t, c, tt.env, tt.args...)
				out, err := cmd.CombinedOutput()
				code := 0
				if err != nil {
					code = exitCode(err)
				}
				if code != tt.code {
					t.Errorf("mkube %q: exit %d, want %d\n%s", tt.args, code, tt.code, out)
				}
				var errLines []string
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					if strings.Contains(l, "Exiting due to") {
						errLines = append(errLines, l)
					}
				}
				if len(errLines) != 1 || !strings.Contains(errLines[0], tt.want) {
					t.Errorf("mkube %q: want one error line containing %q, got:\n%s", tt.args, tt.want, out)
				}
			})
		}
		if after := takeSnapshot(t, c); after != before {
			t.Errorf("bad input changed the user's or mkube's state:\n%s", diffLines(before, after))
		}
		for _, f := range []string{filepath.Join(unmarked, "notes.txt"), filepath.Join(home, ".bashrc")} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("a directory mkube did not create lost a file: %v", err)
			}
		}
	})

	t.Run("SIGKILL and Ctrl-C at random points, then start resumes", func(t *testing.T) {
		c := c0.in(t)
		const p2 = "itest-safe-kill"
		args := append([]string{"start", "-p", p2}, c.mirrorFlags()...)
		for i := 0; i < 3; i++ {
			after := time.Duration(500+rng.IntN(15000)) * time.Millisecond
			t.Logf("SIGKILL after %s", after)
			c.startSignalled(syscall.SIGKILL, after, args...)
		}
		after := time.Duration(2000+rng.IntN(12000)) * time.Millisecond
		t.Logf("Ctrl-C after %s", after)
		if out, code := c.startSignalled(os.Interrupt, after, args...); code != 0 && code != 2 {
			t.Errorf("Ctrl-C: exit %d, want 2 (interrupted) or 0 (done first)\n%s", code, out)
		}
		// Nothing an interrupted start ran in the node goes on racing the next one.
		if out, err := docker("exec", p2, "sh", "-c", `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = kubeadm ] && echo $p; done; true`); err == nil && strings.TrimSpace(out) != "" {
			t.Errorf("kubeadm still runs in the node after Ctrl-C: %s", out)
		}
		c.must(args...)
		got := c.kubectl(p2, "get", "nodes", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`)
		if got != "True" {
			t.Errorf("node Ready = %q after the resumed start", got)
		}
		c.must("delete", "-p", p2)
	})

	t.Run("two profiles start at once while the cache is changed", func(t *testing.T) {
		c := c0.in(t)
		agnhost := "registry.k8s.io/e2e-test-images/agnhost:" + agnhostVersion(t)
		c.must("-p", p, "cache", "add", agnhost)
		var wg sync.WaitGroup
		outs := make([]string, 3)
		codes := make([]int, 3)
		for i, prof := range []string{"itest-safe-a", "itest-safe-b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], codes[i] = c.run(append([]string{"start", "-p", prof}, c.mirrorFlags()...)...)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
			outs[2], codes[2] = c.run("cache", "delete", agnhost)
		}()
		wg.Wait()
		for i := range outs {
			if codes[i] != 0 {
				t.Errorf("concurrent command %d: exit %d\n%s", i, codes[i], outs[i])
			}
		}
		// The cache is whole: listing it works and the image can be added again.
		c.must("cache", "list")
		c.must("-p", p, "cache", "add", agnhost)
		c.must("cache", "delete", agnhost)
		for _, prof := range []string{"itest-safe-a", "itest-safe-b"} {
			c.kubectl(prof, "get", "nodes")
			c.must("delete", "-p", prof)
		}
	})

	t.Run("the Docker API vanishes mid-start", func(t *testing.T) {
		c := c0.in(t)
		const p5 = "itest-safe-docker"
		proxy := newDockerProxy(t)
		env := []string{"DOCKER_HOST=unix://" + proxy.path}
		args := append([]string{"start", "-p", p5}, c.mirrorFlags()...)
		cmd := execMkube(t, c, env, args...)
		var out strings.Builder
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); pw.Close() }()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Creating docker container") {
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
				proxy.cut()
			}
		}
		err := <-done
		if err == nil {
			t.Logf("the start finished before the cut:\n%s", out.String())
		} else if n := strings.Count(out.String(), "Exiting due to"); n != 1 {
			t.Errorf("want one error line after the Docker API went away, got %d:\n%s", n, out.String())
		}
		proxy.restore()
		if o, err := execMkube(t, c, env, args...).CombinedOutput(); err != nil {
			t.Fatalf("start after the Docker API came back: %v\n%s", err, o)
		}
		c.kubectl(p5, "get", "nodes")
		c.must("delete", "-p", p5)
	})

	t.Run("a full disk under MKUBE_HOME", func(t *testing.T) {
		c := c0.in(t)
		dir := filepath.Join(t.TempDir(), "a", "b", "small")
		os.MkdirAll(dir, 0o755)
		if out, err := runErr("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir); err != nil {
			t.Fatalf("mounting a small file system (the suite runs as root): %v\n%s", err, out)
		}
		t.Cleanup(func() { runErr("umount", "-l", dir) })
		small := &cluster{t: t, home: filepath.Join(dir, "mkube"), kubeconfig: c.kubeconfig, mirror: mirror}
		const p6 = "itest-safe-full"
		args := append([]string{"start", "-p", p6}, small.mirrorFlags()...)
		out, code := small.run(args...)
		if code == 0 {
			t.Fatalf("a start on a 64 MB home succeeded?\n%s", out)
		}
		if n := strings.Count(out, "Exiting due to"); n != 1 || !strings.Contains(out, "no space left on device") {
			t.Errorf("want one error line naming the full disk, got:\n%s", out)
		}
		// What was written is whole: the profile reads back, the image cache's index parses,
		// and no cached binary is a partial file under its final name.
		small.must("profile", "list")
		if idx := filepath.Join(small.home, "cache", "images", "index.json"); fileExists(idx) {
			if raw, err := os.ReadFile(idx); err != nil || !strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
				t.Errorf("image cache index damaged: %v %q", err, raw)
			}
		}
		// With room again, the same start resumes.
		if out, err := runErr("mount", "-o", "remount,size=1500m", dir); err != nil {
			t.Fatalf("remount: %v\n%s", err, out)
		}
		small.must(args...)
		small.kubectl(p6, "get", "nodes")
		small.must("delete", "-p", p6)
	})

	t.Run("delete leaves the user's things alone", func(t *testing.T) {
		c := c0.in(t)
		loop := kubectlLoop(t, kubectl, c.kubeconfig, "delete")
		c.must("delete", "-p", p)
		loop.stop(t)
		assertNoLock(t, c.kubeconfig)
		names := run(t, kubectl, "--kubeconfig", c.kubeconfig, "config", "get-contexts", "-o", "name")
		if slices.Contains(strings.Fields(names), p) {
			t.Errorf("the profile's context survived delete: %s", names)
		}
		for _, want := range append(loop.contexts(), userContext, "work") {
			if !slices.Contains(strings.Fields(names), want) {
				t.Errorf("context %q lost by delete; contexts now: %s", want, names)
			}
		}
		for _, obj := range [][]string{{"volume", "inspect", userVolume}, {"container", "inspect", userContainer}, {"network", "inspect", userNetwork}} {
			if _, err := docker(obj...); err != nil {
				t.Errorf("the user's %s %s is gone", obj[0], obj[2])
			}
		}
		// kubectl's own entries and mkube's removal: the user's original stanzas are intact.
		raw, _ := os.ReadFile(realKubeconfig)
		if !strings.Contains(string(raw), "prod-token") || !strings.Contains(string(raw), "work-token") {
			t.Errorf("the user's credentials are gone from the kubeconfig:\n%s", raw)
		}
	})
}

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
		{"container", "create", "--name", userContainer, "mkube.local/node:v0.1.0", "true"},
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
// own lock files aside: empty files that exist to be locked), the kubeconfig, and the Docker and
// libvirt objects on the machine.
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
	cmd := exec.Command(outPath(c.t, "mkube"), args...)
	cmd.Env = c.env()
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
	case <-time.After(after):
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
