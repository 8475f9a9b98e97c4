//go:build integration

package integration

import (
	"bufio"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
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
