//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// helloSource is the app a user builds on the host: it logs a line and answers HTTP on :8080.
const helloSource = `package main

import (
	"fmt"
	"net/http"
)

func main() {
	fmt.Println("hello from mkube-itest")
	http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello from mkube-itest")
	}))
}
`

// buildHello builds helloSource into a local Docker image FROM scratch (nothing to pull) and
// returns its name.
func buildHello(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"main.go": helloSource, "go.mod": "module hello\n\ngo 1.22\n",
		"Dockerfile": "FROM scratch\nCOPY hello /hello\nENTRYPOINT [\"/hello\"]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-o", "hello", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img := fmt.Sprintf("mkube-itest/hello:%d", time.Now().UnixNano())
	run(t, "docker", "build", "-q", "-t", img, dir)
	t.Cleanup(func() { runErr("docker", "rmi", "-f", img) })
	return img
}

// background starts mkube and returns the first line it prints on stdout (a URL), and a stop
// function that interrupts it like Ctrl-C and returns its exit code.
func (c *cluster) background(env []string, args ...string) (string, func() int) {
	c.t.Helper()
	cmd := execMkube(c.t, c, env, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	stop := func() int {
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if err != nil {
			return exitCode(err)
		}
		return 0
	}
	select {
	case l, ok := <-line:
		if !ok {
			code := stop()
			c.t.Fatalf("mkube %v printed nothing (exit %d): %s", args, code, stderr.String())
		}
		return strings.TrimSpace(l), stop
	case <-time.After(5 * time.Minute):
		stop()
		c.t.Fatalf("mkube %v printed no URL in 5 minutes: %s", args, stderr.String())
	}
	return "", nil
}

// dumpOnFailure logs what the cluster looked like, for a failed test (runs before the delete).
func (c *cluster) dumpOnFailure(profile string) {
	if !c.t.Failed() {
		return
	}
	for _, args := range [][]string{{"get", "pods", "-A", "-o", "wide"}, {"describe", "pods"}, {"get", "events", "-A"}} {
		out, _ := c.run(append([]string{"-p", profile, "kubectl", "--"}, args...)...)
		c.t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
}

// chromium loads url in headless Chromium and returns the DOM after the page has loaded.
func chromium(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("headless Chromium is needed (apt-get install chromium; hack/install-deps.sh does it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

func get(url, host string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s", resp.Status)
	}
	return string(b), err
}

// TestAddonsAndImages is the daily workflow after start: addons on and off, kubectl top, the
// dashboard in a real browser, a locally built image loaded and run without a pull, the in-cluster
// registry, an ingress, and service URLs through a tunnel.
func TestAddonsAndImages(t *testing.T) {
	c := newCluster(t, serveMirror(t))
	const p = "itest-addons"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	t.Cleanup(func() { c.dumpOnFailure(p) })
	start := time.Now()
	out := c.must(append([]string{"start", "-p", p, "--addons", "metrics-server,dashboard"}, c.mirrorFlags()...)...)
	started := time.Now()
	t.Logf("start with metrics-server and dashboard: %s", started.Sub(start).Round(100*time.Millisecond))
	if !strings.Contains(out, "Enabled addons: default-storageclass, storage-provisioner, dashboard, metrics-server") {
		t.Errorf("start output:\n%s", out)
	}

	t.Run("addons list", func(t *testing.T) {
		var list map[string]struct{ Profile, Status string }
		if err := json.Unmarshal([]byte(c.must("-p", p, "addons", "list", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"dashboard": "enabled", "metrics-server": "enabled", "storage-provisioner": "enabled",
			"default-storageclass": "enabled", "ingress": "disabled", "registry": "disabled"} {
			if list[name].Status != want || list[name].Profile != p {
				t.Errorf("%s: %+v, want %s", name, list[name], want)
			}
		}
		if out, code := c.run("-p", p, "addons", "enable", "nosuch"); code != 14 || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("unknown addon: exit %d\n%s", code, out)
		}
	})

	t.Run("kubectl top nodes", func(t *testing.T) {
		eventually(t, 2*time.Minute, func() string {
			out, code := c.run("-p", p, "kubectl", "--", "top", "nodes")
			if code != 0 || !strings.Contains(out, p) {
				return out
			}
			return ""
		})
		t.Logf("kubectl top nodes answered %s after start", time.Since(started).Round(time.Second))
	})

	t.Run("dashboard in headless Chromium", func(t *testing.T) {
		url, stop := c.background(nil, "-p", p, "dashboard", "--url")
		if !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("dashboard --url printed %q", url)
		}
		page := chromium(t, url)
		for _, want := range []string{"mkube dashboard", `href="./nodes/` + p + `"`, `href="./ns/kube-system/pods/etcd-` + p + `"`} {
			if !strings.Contains(page, want) {
				t.Errorf("overview lacks %q:\n%s", want, page)
			}
		}
		pod := strings.TrimSpace(c.kubectl(p, "get", "pods", "-n", "kubernetes-dashboard", "-o", "jsonpath={.items[0].metadata.name}"))
		page = chromium(t, url+"ns/kubernetes-dashboard/pods/"+pod)
		if !strings.Contains(page, "Running") || !strings.Contains(page, "log?container=kubernetes-dashboard") || !strings.Contains(page, "Started") {
			t.Errorf("pod page lacks status, log link or events:\n%s", page)
		}
		page = chromium(t, url+"ns/kubernetes-dashboard/pods/"+pod+"/log?container=kubernetes-dashboard")
		if !strings.Contains(page, "dashboard: serving on :9090") {
			t.Errorf("log page lacks the pod's log:\n%s", page)
		}
		if code := stop(); code != 0 {
			t.Errorf("dashboard exited %d on Ctrl-C", code)
		}
	})

	t.Run("addons disable dashboard removes it", func(t *testing.T) {
		c.must("-p", p, "addons", "disable", "dashboard")
		if out, code := c.run("-p", p, "kubectl", "--", "get", "namespace", "kubernetes-dashboard"); code == 0 {
			t.Errorf("namespace still there:\n%s", out)
		}
		if out, code := c.run("-p", p, "kubectl", "--", "get", "clusterrole", "mkube-dashboard"); code == 0 {
			t.Errorf("cluster role still there:\n%s", out)
		}
	})

	img := buildHello(t)
	canonical := "docker.io/" + img
	archive := filepath.Join(t.TempDir(), "hello.tar")
	run(t, "docker", "save", "-o", archive, img)
	t.Run("image load from Docker runs without a pull", func(t *testing.T) {
		c.must("-p", p, "image", "load", img)
		if ls := c.must("-p", p, "image", "ls"); !strings.Contains(ls, canonical) {
			t.Fatalf("image ls lacks %s:\n%s", canonical, ls)
		}
		c.kubectl(p, "run", "hello", "--image="+img, "--image-pull-policy=IfNotPresent")
		c.kubectl(p, "wait", "pod/hello", "--for=condition=Ready", "--timeout=90s")
		if logs := c.kubectl(p, "logs", "hello"); !strings.Contains(logs, "hello from mkube-itest") {
			t.Errorf("logs: %s", logs)
		}
		if ev := c.kubectl(p, "get", "events", "--field-selector", "involvedObject.name=hello"); !strings.Contains(ev, "already present on machine") {
			t.Errorf("the image was not used as loaded:\n%s", ev)
		}
	})

	t.Run("image rm, then load from an archive", func(t *testing.T) {
		c.kubectl(p, "delete", "pod", "hello", "--now")
		c.must("-p", p, "image", "rm", img)
		if ls := c.must("-p", p, "image", "ls"); strings.Contains(ls, canonical) {
			t.Fatalf("image rm left it:\n%s", ls)
		}
		if out, code := c.run("-p", p, "image", "rm", img); code != 14 || !strings.Contains(out, "is not in") {
			t.Errorf("rm of a missing image: exit %d\n%s", code, out)
		}
		c.must("-p", p, "image", "load", archive)
		var list []struct{ Ref string }
		if err := json.Unmarshal([]byte(c.must("-p", p, "image", "ls", "--format", "json")), &list); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, i := range list {
			found = found || i.Ref == canonical
		}
		if !found {
			t.Errorf("archive not loaded: %+v", list)
		}
		if out, code := c.run("-p", p, "image", "load", "/nonexistent/app.tar"); code != 14 || !strings.Contains(out, "does not exist") {
			t.Errorf("missing archive: exit %d\n%s", code, out)
		}
	})

	ip := strings.TrimSpace(c.must("-p", p, "ip"))
	t.Run("registry addon: push from the host, run from localhost:5000", func(t *testing.T) {
		c.must("-p", p, "addons", "enable", "registry")
		c.kubectl(p, "-n", "kube-system", "rollout", "status", "deployment/registry", "--timeout=90s")
		image, err := tarball.ImageFromPath(archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Another image ID than the loaded one: the kubelet (KubeletEnsureSecretPulledImages) would
		// otherwise want to re-verify the loaded image's name once this one is pulled from a registry.
		cfg, err := image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Config.Labels = map[string]string{"mkube.itest": "registry"}
		if image, err = mutate.ConfigFile(image, cfg); err != nil {
			t.Fatal(err)
		}
		if err := crane.Push(image, ip+":5000/hello:v1", crane.Insecure); err != nil {
			t.Fatalf("push to the registry addon: %v", err)
		}
		c.kubectl(p, "run", "fromreg", "--image=localhost:5000/hello:v1")
		c.kubectl(p, "wait", "pod/fromreg", "--for=condition=Ready", "--timeout=90s")
	})

	t.Run("ingress addon routes by host name", func(t *testing.T) {
		c.must("-p", p, "addons", "enable", "ingress")
		c.kubectl(p, "create", "deployment", "hello", "--image="+img)
		c.kubectl(p, "expose", "deployment", "hello", "--port=8080", "--type=NodePort")
		c.kubectl(p, "create", "ingress", "hello", "--rule=hello.mkube.test/*=hello:8080")
		c.kubectl(p, "-n", "ingress-traefik", "rollout", "status", "deployment/traefik", "--timeout=120s")
		eventually(t, time.Minute, func() string {
			body, err := get("http://"+ip+"/", "hello.mkube.test")
			if err != nil || body != "hello from mkube-itest" {
				return fmt.Sprintf("%v %q", err, body)
			}
			return ""
		})
		if class := c.kubectl(p, "get", "ingress", "hello", "-o", "jsonpath={.spec.ingressClassName}"); class != "traefik" {
			t.Errorf("ingress class %q: the addon's class should be the default", class)
		}
		eventually(t, 30*time.Second, func() string {
			if addr := c.kubectl(p, "get", "ingress", "hello", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"); addr != ip {
				return "ingress address " + addr
			}
			return ""
		})
	})

	t.Run("service through a tunnel, and --all", func(t *testing.T) {
		url, stop := c.background([]string{"MKUBE_SERVICE_TUNNEL=true"}, "-p", p, "service", "hello", "--url")
		if !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("tunnel URL %q", url)
		}
		if body, err := get(url, ""); err != nil || body != "hello from mkube-itest" {
			t.Errorf("GET %s: %v %q", url, err, body)
		}
		if code := stop(); code != 0 {
			t.Errorf("service tunnel exited %d on Ctrl-C", code)
		}
		if _, err := get(url, ""); err == nil {
			t.Error("the tunnel still answers after Ctrl-C")
		}
		all := c.must("-p", p, "service", "--all", "--url")
		if !strings.Contains(all, "http://"+ip+":") || !strings.Contains(all, "default/kubernetes has no node port") {
			t.Errorf("service --all:\n%s", all)
		}
	})

	t.Run("addon disabled while stopped is removed at the next start", func(t *testing.T) {
		c.must("-p", p, "stop")
		if out := c.must("-p", p, "addons", "disable", "ingress"); !strings.Contains(out, "will be removed") {
			t.Errorf("disable on a stopped cluster:\n%s", out)
		}
		c.must(append([]string{"start", "-p", p}, c.mirrorFlags()...)...)
		if out, code := c.run("-p", p, "kubectl", "--", "get", "ingressclass", "traefik"); code == 0 {
			t.Errorf("ingress class still there:\n%s", out)
		}
		if c.kubectl(p, "-n", "kube-system", "get", "deployment", "metrics-server", "-o", "name") == "" {
			t.Error("metrics-server did not survive the restart")
		}
	})
}
