package start

import (
	"slices"
	"strings"
	"testing"

	"mkube/pkg/config"
	"mkube/pkg/reason"
)

func TestNewProfileValidation(t *testing.T) {
	t.Parallel()
	ok := Options{Profile: "p", KubernetesVersion: "v1.37.2", CPUs: 2, Memory: "4g", DiskSize: "20g"}
	host := HostResources{CPUs: 4, MemoryMB: 8192}
	tests := []struct {
		name   string
		change func(*Options)
		kind   reason.Kind
	}{
		{"valid", func(*Options) {}, reason.Kind{}},
		{"one cpu", func(o *Options) { o.CPUs = 1 }, reason.InsufficientCores},
		{"more cpus than the host", func(o *Options) { o.CPUs = 8 }, reason.InsufficientCores},
		{"memory unparsable", func(o *Options) { o.Memory = "lots" }, reason.Usage},
		{"memory too small", func(o *Options) { o.Memory = "1g" }, reason.InsufficientMemory},
		{"memory over the host's", func(o *Options) { o.Memory = "16g" }, reason.InsufficientMemory},
		{"disk too small", func(o *Options) { o.DiskSize = "1g" }, reason.InsufficientStorage},
		{"old version", func(o *Options) { o.KubernetesVersion = "v1.20.0" }, reason.K8sUnsupported},
		{"bad extra-config", func(o *Options) { o.ExtraConfig = []string{"nonsense"} }, reason.Usage},
		{"three nodes", func(o *Options) { o.Nodes = 3 }, reason.Kind{}},
		{"too many nodes", func(o *Options) { o.Nodes = 100 }, reason.Usage},
		{"a name too long for node names", func(o *Options) { o.Nodes = 2; o.Profile = strings.Repeat("a", 60) }, reason.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := ok
			tt.change(&o)
			p, err := newProfile(o, host)
			if tt.kind == (reason.Kind{}) {
				if err != nil || p.MemoryMB != 4096 || p.DiskMB != 20480 || !p.OwnerMarks {
					t.Fatalf("%+v, %v", p, err)
				}
				if want := max(o.Nodes, 1); len(p.Nodes) != want || p.Nodes[0] != (config.Node{Name: o.Profile, ControlPlane: true, Worker: true}) ||
					p.Nodes[want-1].Name != config.NodeName(o.Profile, want) {
					t.Errorf("nodes %+v, want %d", p.Nodes, want)
				}
				return
			}
			if reason.ExitCode(err) != tt.kind.ExitCode {
				t.Errorf("err = %v, want %s", err, tt.kind.ID)
			}
		})
	}
}

func TestIgnoredSourceFlags(t *testing.T) {
	p := &config.Profile{Mirror: "http://10.0.0.5:5000/m", ImageRepository: "127.0.0.1:5080", BaseImage: "mkube.local/node:v1"}
	given := func(flags ...string) func(string) bool {
		return func(f string) bool { return slices.Contains(flags, f) }
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"none given", Options{Mirror: "other/x"}, ""},
		{"the same values", Options{Mirror: "10.0.0.5:5000/m", ImageRepository: "127.0.0.1:5080", Set: given("mirror", "image-repository")}, ""},
		{"a new mirror", Options{Mirror: "harbor.example.com/m", ImageRepository: "127.0.0.1:5080", BaseImage: "mkube.local/node:v1", Set: given("mirror")}, "mirror"},
		{"several", Options{ISOURLs: []string{"x.iso"}, BinaryMirror: "http://127.0.0.1/r", Set: given("iso-url", "binary-mirror", "cpus")}, "binary-mirror,iso-url"},
	}
	for _, tt := range tests {
		if tt.o.Set == nil {
			tt.o.Set = given()
		}
		if got := strings.Join(ignoredSourceFlags(p, tt.o), ","); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
