package addons

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestRenderEveryAddon(t *testing.T) {
	for _, a := range All {
		out, err := Render(a, Values{NodeIP: "192.168.49.2"})
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		for _, doc := range strings.Split(string(out), "\n---\n") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Errorf("%s: invalid YAML: %v", a.Name, err)
			}
			if m["kind"] == nil || m["apiVersion"] == nil {
				t.Errorf("%s: document without kind/apiVersion: %s", a.Name, doc)
			}
		}
		for _, img := range a.Images {
			if !strings.Contains(string(out), "image: "+img) {
				t.Errorf("%s does not run its image %s", a.Name, img)
			}
		}
	}
}

func TestEnabled(t *testing.T) {
	names := func(as []Addon) string {
		var s []string
		for _, a := range as {
			s = append(s, a.Name)
		}
		return strings.Join(s, ",")
	}
	if got := names(Enabled(nil)); got != "default-storageclass,storage-provisioner" {
		t.Errorf("defaults = %s", got)
	}
	if got := names(Enabled(map[string]bool{"storage-provisioner": false})); got != "default-storageclass" {
		t.Errorf("disabled default = %s", got)
	}
	if _, err := Find("nosuch"); err == nil {
		t.Error("unknown addon found")
	}
}
