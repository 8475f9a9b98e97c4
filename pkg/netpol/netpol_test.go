package netpol

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"mkube/internal/golden"
)

// The manifest is reviewed as a diff: go test ./pkg/netpol -update rewrites it.
func TestRenderGolden(t *testing.T) {
	got, err := Render(Values{ServiceCIDR: "10.96.0.0/12"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, doc := range strings.Split(string(got), "\n---\n") {
		var v struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("invalid YAML: %v\n%s", err, doc)
		}
		kinds = append(kinds, v.Kind)
	}
	if want := "ServiceAccount ClusterRole ClusterRoleBinding DaemonSet"; strings.Join(kinds, " ") != want {
		t.Errorf("kinds %v, want %s", kinds, want)
	}
	golden.Check(t, "kube-router.yaml", got)
}

func TestRenderImages(t *testing.T) {
	got, err := Render(Values{ServiceCIDR: "10.96.0.0/12"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range Images() {
		if !strings.Contains(string(got), "image: "+ref+"\n") {
			t.Errorf("the manifest does not run %s", ref)
		}
	}
}

func TestRenderBadCIDR(t *testing.T) {
	for _, cidr := range []string{"", "10.96.0.0", "10.96.0.0/12\n- --evil"} {
		if _, err := Render(Values{ServiceCIDR: cidr}); err == nil {
			t.Errorf("Render(%q) did not fail", cidr)
		}
	}
}
