//go:build integration

package integration

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cluster drives the built mkube binary with its own MKUBE_HOME and KUBECONFIG, against the
// offline mirror, the way a user on an air-gapped machine would.
type cluster struct {
	t          *testing.T
	home       string
	kubeconfig string
	mirror     string // registry host:port of the loopback mirror
	bin        string // the mkube binary: out/mkube unless set (a release binary, run from its own directory)
	extraEnv   []string
	timeout    time.Duration // how long one mkube command may take (default 10 minutes)
}

// command is mkube with args, run as the cluster's user.
func (c *cluster) command(ctx context.Context, args ...string) *exec.Cmd {
	bin := c.bin
	if bin == "" {
		bin = outPath(c.t, "mkube")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	if c.bin != "" {
		cmd.Dir = filepath.Dir(c.bin)
	}
	cmd.Env = c.env()
	return cmd
}

func newCluster(t *testing.T, mirror string) *cluster {
	dir := t.TempDir()
	return &cluster{t: t, home: filepath.Join(dir, "mkube"), kubeconfig: filepath.Join(dir, "kube", "config"), mirror: mirror}
}

func (c *cluster) env() []string {
	return append(append(os.Environ(), "MKUBE_HOME="+c.home, "KUBECONFIG="+c.kubeconfig, "MKUBE_IN_STYLE=false"), c.extraEnv...)
}

// mirrorFlags point a start at the loopback mirror.
func (c *cluster) mirrorFlags() []string {
	return []string{"--binary-mirror=http://" + c.mirror + "/release", "--image-repository=" + c.mirror}
}

// run runs mkube and returns its combined output and exit code.
func (c *cluster) run(args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(c.timeout, 10*time.Minute))
	defer cancel()
	cmd := c.command(ctx, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("mkube %v: %v", args, err)
	}
	return string(out), code
}

// must runs mkube and fails the test unless it exits 0.
func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("mkube %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// kubectl runs the cluster's kubectl through mkube.
func (c *cluster) kubectl(profile string, args ...string) string {
	c.t.Helper()
	return c.must(append([]string{"-p", profile, "kubectl", "--"}, args...)...)
}

// eventually retries fn until it returns "" or the timeout passes; it reports the last reason.
func eventually(t *testing.T, timeout time.Duration, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	why := ""
	for time.Now().Before(deadline) {
		if why = fn(); why == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("gave up after %s: %s", timeout, why)
}

// startUntil starts mkube and kills it with SIGKILL once a line containing marker appears.
func (c *cluster) startUntil(marker string, args ...string) {
	c.t.Helper()
	cmd := c.command(context.Background(), args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), marker) {
			cmd.Process.Kill()
			break
		}
	}
	go io.Copy(io.Discard, pr)
	<-done
}

func docker(args ...string) (string, error) { return runErr("docker", args...) }

func execMkube(t *testing.T, c *cluster, env []string, args ...string) *exec.Cmd {
	cmd := c.command(context.Background(), args...)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// checkDNS runs a pod that resolves kubernetes.default through CoreDNS, retrying as any client
// would while CoreDNS and kube-proxy's rules for it are still coming up.
func (c *cluster) checkDNS(t *testing.T, p, agnhost string) {
	t.Helper()
	c.kubectl(p, "run", "dns", "--image="+agnhost, "--restart=Never", "--command", "--", "sh", "-c",
		"for i in $(seq 1 60); do nslookup kubernetes.default && exit 0; sleep 1; done; exit 1")
	eventually(t, 2*time.Minute, func() string {
		if phase := c.kubectl(p, "get", "pod", "dns", "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
			return "dns pod " + phase
		}
		return ""
	})
	if logs := c.kubectl(p, "logs", "dns"); !strings.Contains(logs, "10.96.0.1") {
		t.Errorf("nslookup kubernetes.default:\n%s", logs)
	}
}

// checkPVC deploys a writer on a PersistentVolumeClaim of the default storage class and returns
// what it wrote, for a later check that the data survived.
func (c *cluster) checkPVC(t *testing.T, p, agnhost string, rollout time.Duration) string {
	t.Helper()
	manifest := filepath.Join(t.TempDir(), "pvc.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(pvcManifest, agnhost)), 0o644)
	c.kubectl(p, "apply", "-f", manifest)
	c.kubectl(p, "rollout", "status", "deployment/writer", fmt.Sprintf("--timeout=%ds", int(rollout.Seconds())))
	var written string
	eventually(t, time.Minute, func() string {
		out, code := c.run("-p", p, "kubectl", "--", "exec", "deploy/writer", "--", "cat", "/data/file")
		if code != 0 {
			return out
		}
		written = out
		return ""
	})
	return written
}

// nodePortURL is the echo service's NodePort URL at the node's address ip.
func (c *cluster) nodePortURL(p, ip string) string {
	port := c.kubectl(p, "get", "svc", "echo", "-o", "jsonpath={.spec.ports[0].nodePort}")
	return fmt.Sprintf("http://%s:%s/hostname", ip, strings.TrimSpace(port))
}

// echoAnswers says why the echo service does not answer at its NodePort on ip ("" when it does),
// for eventually.
func (c *cluster) echoAnswers(p, ip string) func() string {
	return func() string {
		resp, err := http.Get(c.nodePortURL(p, ip))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(b), "echo-") {
			return "unexpected answer " + string(b)
		}
		return ""
	}
}

// checkVolumeKept waits until the PVC writer (checkPVC) answers again and checks it still reads
// what it wrote before.
func (c *cluster) checkVolumeKept(t *testing.T, p, written string) {
	t.Helper()
	eventually(t, 2*time.Minute, func() string {
		out, code := c.run("-p", p, "kubectl", "--", "exec", "deploy/writer", "--", "cat", "/data/file")
		if code != 0 {
			return out
		}
		if out != written {
			t.Errorf("volume data %q, want %q", out, written)
		}
		return ""
	})
}
