//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mkube/pkg/k8sversion"
)

// TestHA: `start --ha` on the docker driver — three control planes behind the load balancer the
// kubeconfig points at; with any one control plane stopped (the primary here) kubectl keeps
// answering, during the stop too; the node comes back; stop/start of the whole cluster; delete
// leaves nothing, the load balancer included.
func TestHA(t *testing.T) {
	c := newCluster(t, serveMirror(t))
	const p = "itest-ha"
	v := k8sversion.Default().String()
	cps := []string{p, p + "-m02", p + "-m03"}
	t.Cleanup(func() { c.run("delete", "-p", p) })
	defer c.dumpOnFailure(p)

	start := append([]string{"start", "-p", p, "--ha"}, c.mirrorFlags()...)
	begin := time.Now()
	out := c.must(start...)
	t.Logf("--ha start: %s", time.Since(begin).Round(time.Second))
	for _, n := range cps[1:] {
		if !strings.Contains(out, `Joining "`+n+`" to the cluster as a control plane`) {
			t.Errorf("start output lacks the control-plane join of %s:\n%s", n, out)
		}
	}
	// kubectl as the user runs it: the kubeconfig's server, the load balancer.
	kubectl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		bin := filepath.Join(c.home, "cache", "binaries", "linux", "amd64", v, "kubectl")
		cmd := exec.CommandContext(ctx, bin, append([]string{"--request-timeout=10s"}, args...)...)
		cmd.Env = c.env()
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	ready := func(want []string) func() string {
		return func() string {
			got, err := kubectl("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status},{.metadata.labels.node-role\.kubernetes\.io/control-plane}{" "}{end}`)
			if err != nil {
				return got
			}
			var w []string
			for _, n := range want {
				w = append(w, n+"=True,")
			}
			if strings.TrimSpace(got) != strings.Join(w, " ") {
				return "nodes: " + got
			}
			return ""
		}
	}

	t.Run("three Ready control planes behind the load balancer", func(t *testing.T) {
		eventually(t, time.Minute, ready(cps))
		server := c.kubectl(p, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
		lbPort, _ := docker("inspect", "-f", `{{(index (index .NetworkSettings.Ports "8443/tcp") 0).HostPort}}`, p+"-lb")
		if want := "https://127.0.0.1:" + strings.TrimSpace(lbPort); server != want {
			t.Errorf("kubeconfig server %q, want the load balancer's %q", server, want)
		}
		st, code := c.run("status", "-p", p)
		if code != 0 || strings.Count(st, "type: Control Plane") != 3 || strings.Count(st, "apiserver: Running") != 3 || strings.Count(st, "kubeconfig: Configured") != 3 {
			t.Errorf("status: exit %d\n%s", code, st)
		}
		if etcd := c.kubectl(p, "-n", "kube-system", "get", "pods", "-l", "component=etcd", "-o", "name"); strings.Count(etcd, "pod/") != 3 {
			t.Errorf("etcd members: %s", etcd)
		}
		// Every control plane runs workloads, as the primary does.
		if taints := c.kubectl(p, "get", "nodes", "-o", "jsonpath={.items[*].spec.taints}"); strings.TrimSpace(taints) != "" {
			t.Errorf("control planes are tainted: %s", taints)
		}
		if out, code := c.run("node", "delete", "-p", p, p); code != 14 {
			t.Errorf("node delete of the primary: exit %d\n%s", code, out)
		}
		if out, code := c.run("node", "add", "-p", p, "--worker=false"); code != 14 || !strings.Contains(out, "--worker=false needs --control-plane") {
			t.Errorf("node add --worker=false: exit %d\n%s", code, out)
		}
	})

	// etcd's own member list, from the primary's etcd (its gRPC gateway, with the API server's
	// etcd client certificate).
	members := func() string {
		out, err := docker("exec", p, "curl", "-s", "--max-time", "5", "-X", "POST", "-d", "{}",
			"--cacert", "/etc/kubernetes/pki/etcd/ca.crt", "--cert", "/etc/kubernetes/pki/apiserver-etcd-client.crt",
			"--key", "/etc/kubernetes/pki/apiserver-etcd-client.key", "https://127.0.0.1:2379/v3/cluster/member/list")
		if err != nil {
			return err.Error() + ": " + out
		}
		var list struct{ Members []struct{ Name string } }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err.Error() + ": " + out
		}
		var names []string
		for _, m := range list.Members {
			names = append(names, m.Name)
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}

	t.Run("a control plane is added, then deleted", func(t *testing.T) {
		m04 := p + "-m04"
		begin := time.Now()
		out := c.must("node", "add", "-p", p, "--control-plane")
		t.Logf("node add --control-plane: %s", time.Since(begin).Round(time.Second))
		if !strings.Contains(out, `Joining "`+m04+`" to the cluster as a control plane`) {
			t.Errorf("node add output lacks the control-plane join:\n%s", out)
		}
		eventually(t, time.Minute, ready(append(slices.Clone(cps), m04)))
		if got, want := members(), strings.Join(append(slices.Clone(cps), m04), " "); got != want {
			t.Errorf("etcd members %q, want %q", got, want)
		}
		if taints := c.kubectl(p, "get", "node", m04, "-o", "jsonpath={.spec.taints}"); strings.TrimSpace(taints) != "" {
			t.Errorf("the added control plane is tainted: %s", taints)
		}
		if st, code := c.run("status", "-p", p); code != 0 || strings.Count(st, "type: Control Plane") != 4 || strings.Count(st, "apiserver: Running") != 4 {
			t.Errorf("status with four control planes: exit %d\n%s", code, st)
		}
		c.must("node", "delete", "-p", p, m04)
		eventually(t, time.Minute, ready(cps))
		// The next subtest stops one of the three: a member left behind (four, two down) would
		// lose etcd's quorum there.
		if got, want := members(), strings.Join(cps, " "); got != want {
			t.Errorf("etcd members after the delete %q, want %q", got, want)
		}
		if out, _ := docker("ps", "-aq", "--filter", "name=^"+m04+"$"); strings.TrimSpace(out) != "" {
			t.Errorf("the deleted control plane's container is left: %s", out)
		}
	})

	t.Run("with a control plane stopped kubectl keeps answering", func(t *testing.T) {
		stop, failures := make(chan struct{}), make(chan []string, 1)
		go func() {
			var failed []string
			for {
				select {
				case <-stop:
					failures <- failed
					return
				case <-time.After(250 * time.Millisecond):
				}
				if out, err := kubectl("get", "--raw", "/readyz"); err != nil {
					failed = append(failed, out)
				}
			}
		}()
		c.must("node", "stop", "-p", p, p)
		time.Sleep(2 * time.Second) // the probe goes on beside the stopped node
		close(stop)
		if failed := <-failures; len(failed) > 0 {
			t.Errorf("kubectl failed %d time(s) while the primary stopped: %v", len(failed), failed)
		}
		if out, err := kubectl("get", "nodes"); err != nil || !strings.Contains(out, p+"-m02") {
			t.Errorf("kubectl get nodes with the primary stopped: %v\n%s", err, out)
		}
		if st, code := c.run("status", "-p", p); code == 0 || !strings.Contains(st, p+"\ntype: Control Plane\nhost: Stopped") {
			t.Errorf("status with the primary stopped: exit %d\n%s", code, st)
		}
		c.must("node", "start", "-p", p, p)
		eventually(t, 2*time.Minute, ready(cps))
	})

	t.Run("stop and start of the whole cluster", func(t *testing.T) {
		c.must("stop", "-p", p)
		if out, _ := docker("inspect", "-f", "{{.State.Running}}", p+"-lb"); strings.TrimSpace(out) != "false" {
			t.Errorf("the load balancer still runs after stop: %s", out)
		}
		begin := time.Now()
		c.must(start...)
		t.Logf("--ha restart: %s", time.Since(begin).Round(time.Second))
		eventually(t, 2*time.Minute, ready(cps))
	})

	t.Run("delete leaves nothing, the load balancer included", func(t *testing.T) {
		c.must("delete", "-p", p)
		for _, kind := range []string{"ps -a", "volume ls", "network ls"} {
			args := append(strings.Fields(kind), "-q", "--filter", "label=name.mkube="+p)
			if out, _ := docker(args...); strings.TrimSpace(out) != "" {
				t.Errorf("docker %s: left behind: %s", kind, out)
			}
		}
	})
}
