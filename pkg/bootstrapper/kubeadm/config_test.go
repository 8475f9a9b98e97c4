package kubeadm

import (
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
	p.CgroupV1 = false
	p.ExtraConfig = []string{"kubelet.max-pods=150", "apiserver.audit-log-maxage=30", "etcd.quota-backend-bytes=4294967296",
		"controller-manager.node-monitor-grace-period=20s", "scheduler.v=2"}
	p.ExtraNames, p.ExtraIPs = []string{"my.dev.host"}, []string{"10.1.2.3"}
	cases["kubeadm-extra-config.yaml"] = p
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
