package kubeadm

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"mkube/internal/golden"
	"mkube/pkg/k8sversion"
)

func params(v string) Params {
	return Params{
		Version: k8sversion.MustParse(v), ClusterName: "mkube", NodeName: "mkube", NodeIP: "192.168.49.2",
		APIServerPort: 8443, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", DNSDomain: "cluster.local",
		CgroupV1: true,
	}
}

// One golden file per supported minor release: a change to any of them is reviewed as a diff.
func TestGenerateConfigGolden(t *testing.T) {
	cases := map[string]Params{}
	for _, v := range k8sversion.Known() {
		p := params(v.String())
		p.CgroupRoot = "/docker/0123abcd/mkube"
		cases["kubeadm-"+v.MinorString()+".yaml"] = p
	}
	p := params(k8sversion.DefaultString)
	p.CgroupV1, p.CgroupDriver = false, "systemd"
	p.ExtraConfig = []string{"kubelet.max-pods=150", "apiserver.audit-log-maxage=30", "etcd.quota-backend-bytes=4294967296",
		"controller-manager.node-monitor-grace-period=20s", "scheduler.v=2"}
	p.ExtraNames, p.ExtraIPs = []string{"my.dev.host"}, []string{"10.1.2.3"}
	cases["kubeadm-extra-config.yaml"] = p
	ha := params(k8sversion.DefaultString)
	ha.HA, ha.MultiNode, ha.ControlPlaneIP = true, true, "192.168.49.254"
	ha.ExtraNames, ha.ExtraIPs = []string{"mkube-m02", "mkube-m03"}, []string{"192.168.49.3", "192.168.49.4", "192.168.49.254"}
	cases["kubeadm-ha.yaml"] = ha
	for file, p := range cases {
		t.Run(file, func(t *testing.T) {
			got, err := GenerateConfig(p)
			if err != nil {
				t.Fatal(err)
			}
			// Every document must parse as YAML.
			for _, doc := range strings.Split(string(got), "\n---\n") {
				var v map[string]any
				if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
					t.Fatalf("invalid YAML: %v\n%s", err, doc)
				}
			}
			golden.Check(t, file, got)
		})
	}
}

func TestParseExtraConfig(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{in: "kubelet.max-pods=100"},
		{in: "apiserver.enable-admission-plugins=A,B"},
		{in: "kubeadm.ignore-preflight-errors=all"},
		{in: "kubelet.max-pods", wantErr: "component.key=value"},
		{in: "maxpods=1", wantErr: "component.key=value"},
		{in: "nosuch.key=1", wantErr: "unknown component"},
		{in: "kubelet.=1", wantErr: "component.key=value"},
	}
	for _, tt := range tests {
		_, err := ParseExtraConfig([]string{tt.in})
		if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
	flags, _ := KubeadmFlags([]string{"kubeadm.ignore-preflight-errors=all", "kubelet.v=2"})
	if len(flags) != 1 || flags[0] != "--ignore-preflight-errors=all" {
		t.Errorf("kubeadm flags = %v", flags)
	}
}

func TestSANs(t *testing.T) {
	p := params("v1.34.4")
	p.ExtraIPs = []string{"127.0.0.1", "10.9.9.9"}
	dns, ips, err := SANs(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(dns, ","), "kubernetes.default.svc.cluster.local") {
		t.Errorf("dns = %v", dns)
	}
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	if strings.Join(s, ",") != "192.168.49.2,127.0.0.1,10.96.0.1,10.0.0.1,10.9.9.9" {
		t.Errorf("ips = %v (duplicates must collapse)", s)
	}
	p.ExtraIPs = []string{"not-an-ip"}
	if _, _, err := SANs(p); err == nil {
		t.Error("bad IP accepted")
	}
}

// hostile are values that would change a YAML document's structure if written as plain scalars:
// mapping and comment indicators, flow collections, quotes, aliases and tags, YAML 1.1 booleans
// and nulls, leading spaces, escapes.
var hostile = []string{
	"a: b", "#not a comment", "x #y", `"quoted"`, `it's`, "{k: v}", "[1, 2]", "- item", "*.nip.io", "&anchor",
	"!!binary", "yes", "null", "~", "0x10", "  spaced  ", `back\slash`, "tab\there", "%percent", "@at", "`tick`",
	"<html>&amp;", "\u2028line separator", "ünïcödé", "",
}

// TestHostileValuesStayValues renders the configuration with hostile --extra-config values and
// --apiserver-names, parses it as YAML, and checks that every one comes back verbatim as a value
// in its place, and that the documents keep their structure.
func TestHostileValuesStayValues(t *testing.T) {
	p := params(k8sversion.DefaultString)
	for i, v := range hostile {
		p.ExtraConfig = append(p.ExtraConfig,
			fmt.Sprintf("apiserver.a%d=%s", i, v), fmt.Sprintf("kubelet.k%d=%s", i, v), fmt.Sprintf("etcd.e%d=%s", i, v))
	}
	p.ExtraNames = slices.DeleteFunc(slices.Clone(hostile), func(s string) bool { return s == "" })
	got, err := GenerateConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(got), "\n---\n")
	if len(docs) != 4 {
		t.Fatalf("%d documents, want 4", len(docs))
	}
	parsed := make([]map[string]any, len(docs))
	for i, doc := range docs {
		if err := yaml.Unmarshal([]byte(doc), &parsed[i]); err != nil {
			t.Fatalf("invalid YAML: %v\n%s", err, doc)
		}
	}
	init, cluster := parsed[0], parsed[1]

	// The documents' top-level structure is what the template writes, nothing more.
	keys := func(m map[string]any) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return strings.Join(ks, ",")
	}
	if k := keys(cluster); k != "apiServer,apiVersion,certificatesDir,clusterName,controlPlaneEndpoint,controllerManager,etcd,imageRepository,kind,kubernetesVersion,networking,scheduler" {
		t.Errorf("ClusterConfiguration keys: %s", k)
	}
	if k := keys(init); k != "apiVersion,bootstrapTokens,kind,localAPIEndpoint,nodeRegistration,skipPhases,timeouts" {
		t.Errorf("InitConfiguration keys: %s", k)
	}

	// args checks a list of {name, value} against the hostile values, after skip fixed entries.
	args := func(where string, list any, prefix string, skip int) {
		t.Helper()
		l, ok := list.([]any)
		if !ok || len(l) != skip+len(hostile) {
			t.Fatalf("%s: %d entries, want %d: %v", where, len(l), skip+len(hostile), list)
		}
		for i, v := range hostile {
			a := l[skip+i].(map[string]any)
			if a["name"] != fmt.Sprintf("%s%d", prefix, i) || a["value"] != v {
				t.Errorf("%s[%d] = %q=%q, want %s%d=%q", where, i, a["name"], a["value"], prefix, i, v)
			}
		}
	}
	at := func(m map[string]any, path ...string) any {
		var v any = m
		for _, k := range path {
			v = v.(map[string]any)[k]
		}
		return v
	}
	args("apiServer.extraArgs", at(cluster, "apiServer", "extraArgs"), "a", 0)
	args("etcd.local.extraArgs", at(cluster, "etcd", "local", "extraArgs"), "e", 0)
	args("kubeletExtraArgs", at(init, "nodeRegistration", "kubeletExtraArgs"), "k", 2)

	sans := at(cluster, "apiServer", "certSANs").([]any)
	for _, name := range p.ExtraNames {
		if !slices.Contains(sans, any(name)) {
			t.Errorf("certSANs lack %q: %v", name, sans)
		}
	}
}

func TestParseExtraConfigRefusesStructure(t *testing.T) {
	for _, s := range []string{
		"kubelet.max pods=1", "kubelet.-v=1", "kubelet..v=1", "kubelet.a:b=1", "kubelet.a#b=1", "kubelet.a\"b=1",
		"kubelet.a\nb=1", "kubelet.v=1\nkind: Evil", "kubelet.v=1\r", "kubelet.v=a\x00b",
	} {
		_, err := ParseExtraConfig([]string{s})
		if err == nil {
			t.Errorf("%q accepted", s)
			continue
		}
		if strings.Count(err.Error(), "\n") > 0 && !strings.Contains(s, "\n") {
			t.Errorf("%q: message is not one line: %q", s, err)
		}
	}
	// What real flags look like is still fine.
	for _, s := range []string{"apiserver.feature-gates=A=true,B=false", "kubelet.eviction-hard=memory.available<5%",
		"apiserver.oidc-username-claim=email", "scheduler.v=2", "kubelet.Max_Pods.x=3", "apiserver.service-node-port-range=1-65535"} {
		if _, err := ParseExtraConfig([]string{s}); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     `"plain"`,
		`a"b\c`:     `"a\"b\\c"`,
		"<a>&":      `"<a>&"`,
		"line\nend": `"line\nend"`,
		"\u2028":    `"\u2028"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A failed kubeadm init is told in one line by the line of its output that says why.
func TestInitFailure(t *testing.T) {
	for _, tc := range []struct{ stderr, want string }{
		{stderr: "W1127 warning\n[wait-control-plane] Waiting\nerror execution phase wait-control-plane: could not initialize a Kubernetes cluster\nTo see the stack trace of this error execute with --v=5 or higher",
			want: "error execution phase wait-control-plane: could not initialize a Kubernetes cluster"},
		{stderr: "error: unknown flag: --nope\n", want: "error: unknown flag: --nope"},
		{stderr: "I1127 something went quietly wrong\n", want: ""},
		{stderr: "", want: ""},
	} {
		if got := initFailure(tc.stderr); got != tc.want {
			t.Errorf("initFailure(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}
