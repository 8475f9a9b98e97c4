package kubeadm

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"mkube/internal/golden"
	"mkube/pkg/certs"
	"mkube/pkg/driver/drivertest"
)

func workerParams() Params {
	p := params("v1.37.2")
	p.NodeName, p.NodeIP, p.ControlPlaneIP, p.MultiNode = "mkube-m02", "192.168.49.3", "192.168.49.2", true
	p.CgroupRoot = "/docker/4567cdef/mkube"
	p.ExtraConfig = []string{"kubelet.max-pods=150", "apiserver.audit-log-maxage=30"}
	return p
}

// testCA stands for the cluster's CA certificate in the join's files.
const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// The JoinConfiguration a worker gets: file discovery (the discovery kubeconfig's path), the
// token for the TLS bootstrap, the node's own address and kubelet flags, the patch directory;
// values quoted. The discovery kubeconfig names the control plane and carries the CA, nothing else.
func TestGenerateJoinConfigGolden(t *testing.T) {
	got, err := GenerateJoinConfig(workerParams(), JoinToken{Token: "abcdef.0123456789abcdef", CA: []byte(testCA)})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(got, &v); err != nil {
		t.Fatalf("invalid YAML: %v\n%s", err, got)
	}
	golden.Check(t, "join-1.37.yaml", got)
	disc, err := DiscoveryConfig(workerParams(), JoinToken{Token: "abcdef.0123456789abcdef", CA: []byte(testCA)})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "join-discovery.conf", disc)
	if _, err := DiscoveryConfig(workerParams(), JoinToken{Token: "abcdef.0123456789abcdef"}); err == nil {
		t.Error("a discovery file without the CA was made")
	}
	cp := workerParams()
	cp.ControlPlane, cp.ControlPlaneIP = true, "192.168.49.254"
	got, err = GenerateJoinConfig(cp, JoinToken{Token: "abcdef.0123456789abcdef", CA: []byte(testCA)})
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &v); err != nil {
		t.Fatalf("invalid YAML: %v\n%s", err, got)
	}
	golden.Check(t, "join-control-plane-1.37.yaml", got)
	// A control plane that runs no workloads keeps kubeadm's taint; one that does (and a worker,
	// which kubeadm never taints) says so.
	for _, c := range []struct {
		controlPlane, noWorkloads, untainted bool
	}{{true, false, true}, {true, true, false}, {false, false, false}} {
		p := workerParams()
		p.ControlPlane, p.NoWorkloads = c.controlPlane, c.noWorkloads
		got, err := GenerateJoinConfig(p, JoinToken{Token: "abcdef.0123456789abcdef", CA: []byte(testCA)})
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(got), "taints: []"); has != c.untainted {
			t.Errorf("control plane %t, no workloads %t: untainted %t, want %t", c.controlPlane, c.noWorkloads, has, c.untainted)
		}
	}
	if _, err := GenerateJoinConfig(Params{ExtraConfig: []string{"kubelet.bad key=1"}}, JoinToken{}); err == nil {
		t.Error("a bad --extra-config key was accepted")
	}
}

// A node that shares the host's cgroup v1 hierarchy keeps its pods in its own cgroup, whatever the
// cluster's kubelet configuration says.
func TestKubeletPatch(t *testing.T) {
	if got := string(kubeletPatch(workerParams())); got != "cgroupRoot: \"/docker/4567cdef/mkube\"\n" {
		t.Errorf("patch %q", got)
	}
	if got := string(kubeletPatch(Params{})); got != "{}\n" {
		t.Errorf("patch without a cgroup root %q, want an empty one", got)
	}
}

// The first join writes the patch and config, joins, drops the config (it holds the token) and
// marks the node; a second run only starts the kubelet.
func TestJoinOnce(t *testing.T) {
	log := &drivertest.Log{}
	d := drivertest.NewDriver(log)
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := d.Runner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bootstrapper{}
	c := Cluster{Params: workerParams()}
	tok := JoinToken{Token: "abcdef.0123456789abcdef", CA: []byte(testCA)}
	log.Take()
	if err := b.join(ctx, r, c, tok); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"run: test -f /var/lib/mkube/kubeadm-join-done",
		"write: /var/lib/mkube/kubeadm-patches/kubeletconfiguration+merge.yaml (644)",
		"write: /var/lib/mkube/kubeadm-discovery.conf (644)",
		"write: /var/lib/mkube/kubeadm-join.yaml (600)",
		"run: kubeadm join --config /var/lib/mkube/kubeadm-join.yaml",
		"run: rm -f /var/lib/mkube/kubeadm-join.yaml /var/lib/mkube/kubeadm-discovery.conf",
		"run: touch /var/lib/mkube/kubeadm-join-done",
	}
	if got := log.Take(); !slices.Equal(got, want) {
		t.Errorf("first join:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := b.join(ctx, r, c, JoinToken{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"run: test -f /var/lib/mkube/kubeadm-join-done", "run: systemctl start kubelet"}
	if got := log.Take(); !slices.Equal(got, want) {
		t.Errorf("second run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The token is a bootstrap token Secret of kubeadm's shape that expires soon; the join carries the
// host's CA certificate, and a file that is not one is refused.
func TestNewJoinToken(t *testing.T) {
	ca, err := certs.EnsureCA(certs.In(t.TempDir(), "ca"), "mkubeCA")
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewSimpleClientset()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tok, err := NewJoinToken(context.Background(), client, ca.Cert, now)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`).MatchString(tok.Token) {
		t.Errorf("token %q is not a bootstrap token", tok.Token)
	}
	id, secret, _ := strings.Cut(tok.Token, ".")
	s, err := client.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"token-id": id, "token-secret": secret, "expiration": "2026-11-27T12:15:00Z",
		"usage-bootstrap-authentication": "true",
		"auth-extra-groups":              "system:bootstrappers:kubeadm:default-node-token"}
	if _, signs := s.StringData["usage-bootstrap-signing"]; signs {
		t.Error("the token signs cluster-info: file discovery needs no signature")
	}
	if s.Type != corev1.SecretTypeBootstrapToken {
		t.Errorf("secret type %q", s.Type)
	}
	for k, v := range want {
		if s.StringData[k] != v {
			t.Errorf("secret %s = %q, want %q", k, s.StringData[k], v)
		}
	}
	if raw, _ := os.ReadFile(ca.Cert); string(tok.CA) != string(raw) {
		t.Errorf("the join's CA is not the host's:\n%s", tok.CA)
	}
	if _, err := NewJoinToken(context.Background(), client, ca.Key, now); err == nil {
		t.Error("a key file was taken for the CA certificate")
	}
}

func TestFirstNodeCIDR(t *testing.T) {
	for in, want := range map[string]string{"10.244.0.0/16": "10.244.0.0/24", "10.1.0.0/20": "10.1.0.0/24", "10.9.8.0/24": "10.9.8.0/24",
		"10.9.8.0/25": "", "fd00::/64": "", "nonsense": ""} {
		got, err := FirstNodeCIDR(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("FirstNodeCIDR(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// Routes to the other nodes' ranges are set; a route of a node that is gone goes; the bridge's
// own range and anything outside the pod network are left alone.
func TestSetRoutes(t *testing.T) {
	log := &drivertest.Log{}
	d := drivertest.NewDriver(log)
	ctx := context.Background()
	d.Start(ctx)
	d.Node.Reply = func(args []string) (string, int) {
		if slices.Equal(args, []string{"ip", "-4", "route", "show", "root", "10.244.0.0/16"}) {
			return "10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1\n10.244.1.0/24 via 192.168.49.3 dev eth0\n10.244.7.0/24 via 192.168.49.9 dev eth0\n", 0
		}
		return "", 0
	}
	r, _ := d.Runner(ctx)
	log.Take()
	routes := []Route{{PodCIDR: "10.244.2.0/24", Via: "192.168.49.4"}, {PodCIDR: "10.244.1.0/24", Via: "192.168.49.3"}}
	if err := SetRoutes(ctx, r, "10.244.0.0/16", routes); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"run: ip -4 route show root 10.244.0.0/16",
		"run: /bin/sh -c ip route replace 10.244.1.0/24 via 192.168.49.3\nip route replace 10.244.2.0/24 via 192.168.49.4\nip route del 10.244.7.0/24\n",
	}
	if got := log.Take(); !slices.Equal(got, want) {
		t.Errorf("commands:\n%q\nwant:\n%q", got, want)
	}
	for _, bad := range []Route{{PodCIDR: "10.244.2.0/24; reboot", Via: "192.168.49.4"}, {PodCIDR: "10.244.2.0/24", Via: "x"}} {
		if err := SetRoutes(ctx, r, "10.244.0.0/16", []Route{bad}); err == nil {
			t.Errorf("route %+v accepted", bad)
		}
	}
}
