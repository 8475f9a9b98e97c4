//go:build integration

package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"mkube/pkg/k8sversion"
)

const otherContext = `apiVersion: v1
kind: Config
clusters:
- cluster: {server: "https://prod.example.invalid:6443"}
  name: prod
contexts:
- context: {cluster: prod, user: admin, namespace: team}
  name: prod
current-context: prod
users:
- name: admin
  user: {token: keep-me}
`

const pvcManifest = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: writer}
spec:
  selector: {matchLabels: {app: writer}}
  template:
    metadata: {labels: {app: writer}}
    spec:
      containers:
      - name: w
        image: %s
        command: ["sh", "-c", "[ -f /data/file ] || date > /data/file; sleep 36000"]
        volumeMounts: [{name: d, mountPath: /data}]
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`

// TestCluster is the user's day: start offline, deploy an app reached through a NodePort, resolve
// names through CoreDNS, keep data in a volume, stop and start keeping all of it, run a second
// cluster beside the first, and delete without touching anything else.
func TestCluster(t *testing.T) {
	c := newCluster(t, serveMirror(t))
	const p = "itest"
	v := k8sversion.Default().String()
	os.MkdirAll(filepath.Dir(c.kubeconfig), 0o700)
	if err := os.WriteFile(c.kubeconfig, []byte(otherContext), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.run("delete", "-p", p); c.run("delete", "-p", p+"2") })

	out := c.must(append([]string{"start", "-p", p}, c.mirrorFlags()...)...)
	for _, want := range []string{"Creating docker container", "Preparing Kubernetes " + v, "Done!"} {
		if !strings.Contains(out, want) {
			t.Errorf("start output lacks %q:\n%s", want, out)
		}
	}

	t.Run("node Ready at the requested version", func(t *testing.T) {
		got := c.kubectl(p, "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if strings.TrimSpace(got) != v+" True" {
			t.Errorf("nodes: %q, want one Ready node at %s", got, v)
		}
		eventually(t, 2*time.Minute, func() string {
			phases := c.kubectl(p, "get", "pods", "-n", "kube-system", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.phase}{" "}{end}`)
			for _, f := range strings.Fields(phases) {
				if !strings.HasSuffix(f, "=Running") {
					return "not running: " + f
				}
			}
			return ""
		})
	})

	agnhost := "registry.k8s.io/e2e-test-images/agnhost:" + agnhostVersion(t)
	t.Run("cache add loads an app image offline", func(t *testing.T) {
		c.must("-p", p, "cache", "add", agnhost)
		if !strings.Contains(c.must("cache", "list"), agnhost) {
			t.Error("cache list lacks the image")
		}
	})

	ip := strings.TrimSpace(c.must("-p", p, "ip"))
	nodePortURL := func() string { return c.nodePortURL(p, ip) }
	answers := c.echoAnswers(p, ip)
	t.Run("NodePort service answers at mkube ip", func(t *testing.T) {
		c.kubectl(p, "create", "deployment", "echo", "--image="+agnhost, "--", "/agnhost", "netexec", "--http-port=8080")
		c.kubectl(p, "expose", "deployment", "echo", "--type=NodePort", "--port=8080")
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=120s")
		eventually(t, time.Minute, answers)
	})

	t.Run("mkube service --url", func(t *testing.T) {
		out := strings.TrimSpace(c.must("-p", p, "service", "echo", "--url"))
		if out != strings.TrimSuffix(nodePortURL(), "/hostname") {
			t.Errorf("service --url = %q, want %q", out, nodePortURL())
		}
		resp, err := http.Get(out + "/hostname")
		if err != nil {
			t.Fatalf("GET the service URL: %v", err)
		}
		resp.Body.Close()
		if got := strings.TrimSpace(c.must("-p", p, "service", "echo", "--url", "--https", "--format", "{{.IP}}:{{.Port}}")); strings.Contains(got, "http") || !strings.HasPrefix(got, ip+":") {
			t.Errorf("--format = %q", got)
		}
		if out, code := c.run("-p", p, "service", "nosuch", "--url"); code != 110 || !strings.Contains(out, "not found") {
			t.Errorf("unknown service: exit %d\n%s", code, out)
		}
		if out, code := c.run("-p", p, "service", "kubernetes", "--url"); code != 110 || !strings.Contains(out, "no node port") {
			t.Errorf("ClusterIP service: exit %d\n%s", code, out)
		}
		if list := c.must("-p", p, "service", "list"); !strings.Contains(list, "echo") || !strings.Contains(list, "http://"+ip) {
			t.Errorf("service list:\n%s", list)
		}
	})

	t.Run("a pod resolves kubernetes.default through CoreDNS", func(t *testing.T) { c.checkDNS(t, p, agnhost) })

	var written string
	t.Run("a PersistentVolumeClaim is provisioned and written", func(t *testing.T) {
		written = c.checkPVC(t, p, agnhost, 120*time.Second)
	})

	t.Run("status, ssh, profile list, logs", func(t *testing.T) {
		out, code := c.run("-p", p, "status", "-o", "json")
		var st map[string]any
		if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st["Host"] != "Running" || st["APIServer"] != "Running" || st["Kubeconfig"] != "Configured" {
			t.Errorf("status: exit %d %s", code, out)
		}
		if out := c.must("-p", p, "ssh", "--", "uname", "-a"); !strings.Contains(out, "Linux "+p) {
			t.Errorf("ssh uname -a: %q", out)
		}
		if _, code := c.run("-p", p, "ssh", "--", "sh", "-c", "exit 3"); code != 3 {
			t.Errorf("ssh exit code = %d, want 3", code)
		}
		var profiles struct {
			Valid []struct{ Name, Status string }
		}
		json.Unmarshal([]byte(c.must("profile", "list", "-o", "json")), &profiles)
		if len(profiles.Valid) != 1 || profiles.Valid[0].Name != p || profiles.Valid[0].Status != "OK" {
			t.Errorf("profile list: %+v", profiles)
		}
		if logs := c.must("-p", p, "logs", "-n", "5"); !strings.Contains(logs, "==> kubelet <==") {
			t.Errorf("logs lack the kubelet section")
		}
	})

	t.Run("update-context repairs a stale endpoint", func(t *testing.T) {
		cfg, _ := clientcmd.LoadFromFile(c.kubeconfig)
		good := cfg.Clusters[p].Server
		cfg.Clusters[p].Server = "https://127.0.0.1:1"
		clientcmd.WriteToFile(*cfg, c.kubeconfig)
		// minikube's exit-code bits cover host, kubelet and API server only; the field tells.
		if out, _ := c.run("-p", p, "status", "-o", "json"); !strings.Contains(out, `"Kubeconfig":"Misconfigured"`) {
			t.Errorf("status with a wrong endpoint: %s", out)
		}
		c.must("-p", p, "update-context")
		cfg, _ = clientcmd.LoadFromFile(c.kubeconfig)
		if cfg.Clusters[p].Server != good {
			t.Errorf("server = %s, want %s", cfg.Clusters[p].Server, good)
		}
	})

	t.Run("two profiles side by side", func(t *testing.T) {
		c.must(append([]string{"start", "-p", p + "2", "--keep-context"}, c.mirrorFlags()...)...)
		if got := c.kubectl(p+"2", "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"); got != p+"2" {
			t.Errorf("second cluster's node = %q", got)
		}
		if got := c.kubectl(p, "get", "deploy", "-o", "name"); !strings.Contains(got, "deployment.apps/echo") {
			t.Errorf("first cluster lost its deployments: %q", got)
		}
		if got := c.kubectl(p+"2", "get", "deploy", "-o", "name"); got != "" {
			t.Errorf("second cluster sees deployments: %q", got)
		}
		cfg, _ := clientcmd.LoadFromFile(c.kubeconfig)
		if cfg.CurrentContext != p {
			t.Errorf("--keep-context switched the context to %s", cfg.CurrentContext)
		}
		c.must("delete", "-p", p+"2")
		if answers() != "" {
			t.Error("deleting the second cluster broke the first")
		}
	})

	t.Run("stop and start keep workloads and data", func(t *testing.T) {
		c.must("-p", p, "stop")
		if _, code := c.run("-p", p, "status"); code != 7 {
			t.Errorf("status of a stopped cluster exits %d, want 7", code)
		}
		if _, code := c.run("-p", p, "ip"); code != 83 {
			t.Errorf("ip of a stopped cluster exits %d, want 83", code)
		}
		c.must("-p", p, "start")
		eventually(t, 2*time.Minute, answers)
		c.checkVolumeKept(t, p, written)
	})

	t.Run("delete removes the cluster and nothing else", func(t *testing.T) {
		c.must("delete", "-p", p)
		for _, what := range [][]string{{"container", "inspect", p}, {"network", "inspect", p}, {"volume", "inspect", p}} {
			if _, err := docker(what...); err == nil {
				t.Errorf("docker %s still exists after delete", what[0])
			}
		}
		cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cfg.Contexts[p]; ok {
			t.Error("kubeconfig still has the context")
		}
		if cfg.Contexts["prod"] == nil || cfg.AuthInfos["admin"].Token != "keep-me" || cfg.Clusters["prod"] == nil {
			t.Error("delete touched another kubeconfig entry")
		}
		if _, err := os.Stat(filepath.Join(c.home, "cache", "images", "index.json")); err != nil {
			t.Errorf("delete removed the cache: %v", err)
		}
		if _, code := c.run("-p", p, "status"); code != 85 {
			t.Errorf("status of a deleted profile exits %d, want 85", code)
		}
	})
}

// TestStartResumesAfterKill kills `mkube start` with SIGKILL half way, then starts again.
func TestStartResumesAfterKill(t *testing.T) {
	c := newCluster(t, serveMirror(t))
	const p = "itest-kill"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	c.startUntil("Preparing Kubernetes", append([]string{"start", "-p", p}, c.mirrorFlags()...)...)
	c.must("-p", p, "start")
	got := c.kubectl(p, "get", "nodes", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}`)
	if got != "True" {
		t.Errorf("node Ready = %q after resuming", got)
	}
}

// TestDownloadOnlyThenOffline fills the cache with --download-only, then starts with every source
// unreachable: a filled cache must be all a start needs.
func TestDownloadOnlyThenOffline(t *testing.T) {
	c := newCluster(t, serveMirror(t))
	const p = "itest-offline"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	out := c.must(append([]string{"start", "-p", p, "--download-only"}, c.mirrorFlags()...)...)
	if !strings.Contains(out, "Download complete!") {
		t.Errorf("download-only output:\n%s", out)
	}
	if _, err := docker("container", "inspect", p); err == nil {
		t.Fatal("--download-only created a machine")
	}
	dead := "127.0.0.1:1" // nothing listens there
	c.must("start", "-p", p, "--binary-mirror=http://"+dead+"/release", "--image-repository="+dead)
	if got := c.kubectl(p, "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"); got != p {
		t.Errorf("node = %q", got)
	}
	ca := filepath.Join(c.home, "certs", "ca.crt")
	before, _ := os.ReadFile(ca)
	c.must("delete", "-p", p)
	after, err := os.ReadFile(ca)
	if err != nil || string(before) != string(after) {
		t.Errorf("delete replaced or removed the shared CA: %v", err)
	}
}
