//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mkube/pkg/k8sversion"
)

// spreadManifest: an echo server on every node (required anti-affinity over 3 replicas), its
// NodePort service, and a DaemonSet.
const spreadManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: echo}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: echo
        image: %[1]s
        args: [netexec, --http-port=8080]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      containers:
      - name: pause
        image: %[1]s
        args: [pause]
`

// TestMultiNode: a 3-node cluster on the docker driver — a start killed while its workers are
// created resumes; three Ready nodes; pods spread over them reach each other by pod IP, through
// a Service and CoreDNS from every node; a NodePort answers on every node; a DaemonSet runs on
// each; status, node list, ip/ssh/logs per node; stop/start keeps it all; delete leaves nothing.
func TestMultiNode(t *testing.T) {
	c := newCluster(t, serveMirror(t))
	const p = "itest-mn"
	v := k8sversion.Default().String()
	nodes := []string{p, p + "-m02", p + "-m03"}
	t.Cleanup(func() { c.run("delete", "-p", p) })
	defer c.dumpOnFailure(p)

	start := append([]string{"start", "-p", p, "--nodes=3"}, c.mirrorFlags()...)
	t.Run("a start killed while its workers are created resumes", func(t *testing.T) {
		c.startUntil(`Starting "`+p+`-m03" worker node`, start...)
		begin := time.Now()
		out := c.must(start...)
		t.Logf("3-node start after the kill: %s", time.Since(begin).Round(time.Second))
		for _, want := range []string{`Starting "` + p + `-m02" worker node`, "Joining", "Done!"} {
			if !strings.Contains(out, want) {
				t.Errorf("start output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("three Ready nodes at the version", func(t *testing.T) {
		got := c.kubectl(p, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		var want []string
		for _, n := range nodes {
			want = append(want, n+" "+v+" True")
		}
		if strings.TrimSpace(got) != strings.Join(want, "\n") {
			t.Errorf("nodes:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
		}
		if out, code := c.run("start", "-p", p, "--nodes=2"); code != 14 || !strings.Contains(out, "does not change the number of nodes") {
			t.Errorf("start --nodes=2 on a 3-node profile: exit %d\n%s", code, out)
		}
	})

	t.Run("status, node list, ip, ssh and logs per node", func(t *testing.T) {
		out, code := c.run("status", "-p", p, "-o", "json")
		var st []struct {
			Name, Host, Kubelet, APIServer string
			Worker                         bool
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || len(st) != 3 {
			t.Fatalf("status -o json: exit %d, %v\n%s", code, err, out)
		}
		for i, s := range st {
			if s.Name != nodes[i] || s.Host != "Running" || s.Kubelet != "Running" || s.Worker != (i > 0) {
				t.Errorf("status of node %d: %+v", i, s)
			}
		}
		if text := c.must("status", "-p", p); strings.Count(text, "type: Worker") != 2 || strings.Count(text, "type: Control Plane") != 1 {
			t.Errorf("status:\n%s", text)
		}
		list := c.must("node", "list", "-p", p)
		for i, n := range nodes {
			ip := strings.TrimSpace(c.must("ip", "-p", p, "-n", n))
			if want := fmt.Sprintf("192.168.49.%d", i+2); !strings.HasSuffix(ip, fmt.Sprintf(".%d", i+2)) {
				t.Errorf("ip -n %s = %s, want the network's .%d (%s on the first network)", n, ip, i+2, want)
			}
			if !strings.Contains(list, n+"\t"+ip) {
				t.Errorf("node list lacks %s\t%s:\n%s", n, ip, list)
			}
			if got := strings.TrimSpace(c.must("ssh", "-p", p, "-n", n, "--", "hostname")); got != n {
				t.Errorf("ssh -n %s hostname = %q", n, got)
			}
		}
		if logs := c.must("logs", "-p", p, "--node", nodes[2], "--length=5"); !strings.Contains(logs, "kubelet") {
			t.Errorf("logs --node %s:\n%s", nodes[2], logs)
		}
		if out, code := c.run("ip", "-p", p, "-n", p+"-m09"); code != 85 || !strings.Contains(out, "no node") {
			t.Errorf("ip of a node that does not exist: exit %d\n%s", code, out)
		}
		rows := c.must("profile", "list")
		if !strings.Contains(rows, p) || !regexp.MustCompile(`\|3 +\|`).MatchString(rows) {
			t.Errorf("profile list does not say 3 nodes:\n%s", rows)
		}
	})

	agnhost := "registry.k8s.io/e2e-test-images/agnhost:" + agnhostVersion(t)
	c.must("-p", p, "cache", "add", agnhost) // into every node
	manifest := filepath.Join(t.TempDir(), "spread.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(spreadManifest, agnhost)), 0o644)
	c.kubectl(p, "apply", "-f", manifest)

	t.Run("pods spread over the nodes reach each other, the Service and CoreDNS", func(t *testing.T) {
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=180s")
		pods := strings.Fields(c.kubectl(p, "get", "pods", "-l", "app=echo", "-o", `jsonpath={range .items[*]}{.metadata.name},{.spec.nodeName},{.status.podIP} {end}`))
		var on []string
		for _, pod := range pods {
			on = append(on, strings.Split(pod, ",")[1])
		}
		slices.Sort(on)
		if !slices.Equal(on, nodes) {
			t.Fatalf("echo pods on %v, want one on each of %v", on, nodes)
		}
		for _, from := range pods {
			name := strings.Split(from, ",")[0]
			for _, to := range append(pods, ",,echo.default.svc.cluster.local") {
				target := strings.Split(to, ",")[2] + ":8080"
				eventually(t, time.Minute, func() string {
					out, code := c.run("-p", p, "kubectl", "--", "exec", name, "--", "/agnhost", "connect", "--timeout=3s", target)
					if code != 0 {
						return fmt.Sprintf("%s (on %s) cannot reach %s: %s", name, strings.Split(from, ",")[1], target, out)
					}
					return ""
				})
			}
		}
	})

	t.Run("a NodePort answers on every node and a DaemonSet runs on each", func(t *testing.T) {
		for _, n := range nodes {
			eventually(t, time.Minute, c.echoAnswers(p, strings.TrimSpace(c.must("ip", "-p", p, "-n", n))))
		}
		c.kubectl(p, "rollout", "status", "daemonset/everywhere", "--timeout=120s")
		if got := c.kubectl(p, "get", "daemonset", "everywhere", "-o", "jsonpath={.status.numberReady}"); got != "3" {
			t.Errorf("DaemonSet ready on %s nodes, want 3", got)
		}
	})

	t.Run("a NetworkPolicy that denies traffic is enforced across nodes", func(t *testing.T) {
		c.kubectl(p, "-n", "kube-system", "rollout", "status", "daemonset/kube-router", "--timeout=180s")
		pods := strings.Fields(c.kubectl(p, "get", "pods", "-l", "app=echo", "-o", `jsonpath={range .items[*]}{.metadata.name},{.spec.nodeName},{.status.podIP} {end}`))
		from, to := strings.Split(pods[0], ","), strings.Split(pods[1], ",")
		connects := func() bool {
			_, code := c.run("-p", p, "kubectl", "--", "exec", from[0], "--", "/agnhost", "connect", "--timeout=3s", to[2]+":8080")
			return code == 0
		}
		policy := func(name, ingress string) string {
			return fmt.Sprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s}\nspec:\n  podSelector: {matchLabels: {app: echo}}\n  policyTypes: [Ingress]\n%s", name, ingress)
		}
		os.WriteFile(manifest, []byte(policy("deny", "")), 0o644)
		c.kubectl(p, "apply", "-f", manifest)
		eventually(t, time.Minute, func() string {
			if connects() {
				return fmt.Sprintf("%s (on %s) still reaches %s (on %s) under a deny-all policy", from[0], from[1], to[0], to[1])
			}
			return ""
		})
		os.WriteFile(manifest, []byte(policy("allow-echo", "  ingress:\n  - from: [{podSelector: {matchLabels: {app: echo}}}]\n")), 0o644)
		c.kubectl(p, "apply", "-f", manifest)
		eventually(t, time.Minute, func() string {
			if !connects() {
				return "the allow policy does not let " + from[0] + " reach " + to[0]
			}
			return ""
		})
		c.kubectl(p, "delete", "networkpolicy", "deny", "allow-echo")
	})

	t.Run("node add, then node delete of a worker while the app keeps answering", func(t *testing.T) {
		pdb := "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: echo}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: echo}}\n"
		os.WriteFile(manifest, []byte(pdb), 0o644)
		c.kubectl(p, "apply", "-f", manifest)
		begin := time.Now()
		out := c.must("node", "add", "-p", p)
		t.Logf("node add: %s", time.Since(begin).Round(time.Second))
		if !strings.Contains(out, "Successfully added "+p+"-m04 to "+p) {
			t.Errorf("node add:\n%s", out)
		}
		if list := c.must("node", "list", "-p", p); strings.Count(list, "\n") != 4 || !strings.Contains(list, p+"-m04\t") {
			t.Errorf("node list after add:\n%s", list)
		}
		// The probe: the app must answer at the primary's NodePort throughout (a failed request is
		// tried once more, as any client would).
		primaryIP := strings.TrimSpace(c.must("ip", "-p", p))
		answers := c.echoAnswers(p, primaryIP)
		stop, failures := make(chan struct{}), make(chan []string, 1)
		go func() {
			var failed []string
			for {
				select {
				case <-stop:
					failures <- failed
					return
				case <-time.After(200 * time.Millisecond):
				}
				if why := answers(); why != "" {
					time.Sleep(200 * time.Millisecond)
					if why2 := answers(); why2 != "" {
						failed = append(failed, why2)
					}
				}
			}
		}()
		begin = time.Now()
		out = c.must("node", "delete", "-p", p, p+"-m02")
		t.Logf("node delete: %s", time.Since(begin).Round(time.Second))
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=180s")
		close(stop)
		if failed := <-failures; len(failed) > 0 {
			t.Errorf("the app did not answer %d time(s) while its node was deleted: %v", len(failed), failed)
		}
		if !strings.Contains(out, "successfully deleted") {
			t.Errorf("node delete:\n%s", out)
		}
		nodes = []string{p, p + "-m03", p + "-m04"}
		if got := strings.Fields(c.kubectl(p, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")); !slices.Equal(got, nodes) {
			t.Errorf("nodes after delete: %v, want %v", got, nodes)
		}
		var on []string
		for _, n := range strings.Fields(c.kubectl(p, "get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].spec.nodeName}")) {
			on = append(on, n)
		}
		slices.Sort(on)
		if !slices.Equal(on, nodes) {
			t.Errorf("echo pods on %v after the delete, want one on each of %v", on, nodes)
		}
		if out, _ := docker("ps", "-aq", "--filter", "name=^"+p+"-m02$"); strings.TrimSpace(out) != "" {
			t.Errorf("the deleted node's container is still there")
		}
		if out, code := c.run("node", "delete", "-p", p, p); code != 14 || !strings.Contains(out, "primary") {
			t.Errorf("node delete of the primary: exit %d\n%s", code, out)
		}
		if st := c.must("status", "-p", p, "-o", "json"); strings.Count(st, `"Name"`) != 3 || strings.Contains(st, p+"-m02") {
			t.Errorf("status after delete: %s", st)
		}
	})

	t.Run("node stop and node start", func(t *testing.T) {
		c.must("node", "stop", "-p", p, p+"-m03")
		if out, code := c.run("status", "-p", p); code != 3 || !strings.Contains(out, p+"-m03\ntype: Worker\nhost: Stopped") {
			t.Errorf("status with a stopped worker: exit %d\n%s", code, out)
		}
		c.must("node", "start", "-p", p, p+"-m03")
		if out, code := c.run("status", "-p", p); code != 0 {
			t.Errorf("status after node start: exit %d\n%s", code, out)
		}
		if got := c.kubectl(p, "get", "node", p+"-m03", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
			t.Errorf("%s Ready = %q after node start", p+"-m03", got)
		}
	})

	t.Run("stop and start keep every node and the workloads", func(t *testing.T) {
		if out := c.must("stop", "-p", p); !strings.Contains(out, "3 nodes stopped") {
			t.Errorf("stop:\n%s", out)
		}
		if out, code := c.run("status", "-p", p); code != 7 || strings.Count(out, "host: Stopped") != 3 {
			t.Errorf("status after stop: exit %d\n%s", code, out)
		}
		begin := time.Now()
		c.must(start...)
		t.Logf("3-node restart: %s", time.Since(begin).Round(time.Second))
		c.kubectl(p, "rollout", "status", "deployment/echo", "--timeout=180s")
		for _, n := range nodes {
			eventually(t, 2*time.Minute, c.echoAnswers(p, strings.TrimSpace(c.must("ip", "-p", p, "-n", n))))
		}
		pods := strings.Fields(c.kubectl(p, "get", "pods", "-l", "app=echo", "-o", `jsonpath={range .items[*]}{.metadata.name},{.status.podIP} {end}`))
		from := strings.Split(pods[0], ",")[0]
		for _, to := range pods[1:] {
			target := strings.Split(to, ",")[1] + ":8080"
			eventually(t, time.Minute, func() string {
				if out, code := c.run("-p", p, "kubectl", "--", "exec", from, "--", "/agnhost", "connect", "--timeout=3s", target); code != 0 {
					return fmt.Sprintf("after the restart %s cannot reach %s: %s", from, target, out)
				}
				return ""
			})
		}
	})

	t.Run("delete removes every node and nothing else", func(t *testing.T) {
		c.must("delete", "-p", p)
		for _, kind := range []string{"ps -a", "volume ls", "network ls"} {
			args := append(strings.Fields(kind), "-q", "--filter", "label=name.mkube="+p)
			if out, _ := docker(args...); strings.TrimSpace(out) != "" {
				t.Errorf("docker %s: left behind: %s", kind, out)
			}
		}
	})
}
