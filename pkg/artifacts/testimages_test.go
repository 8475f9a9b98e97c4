package artifacts

import (
	"reflect"
	"testing"
)

const manifestSnippet = `
func initReg() RegistryList {
	registry := RegistryList{
		PromoterE2eRegistry:      "registry.k8s.io/e2e-test-images",
		GcEtcdRegistry:           "registry.k8s.io",
		PrivateRegistry:          "gcr.io/k8s-authenticated-test",
	}
	return registry
}

func initImageConfigs(list RegistryList) (map[ImageID]Config, map[ImageID]Config) {
	configs := map[ImageID]Config{}
	configs[AgnhostPrev] = Config{list.PromoterE2eRegistry, "agnhost", "2.55"}
	configs[BusyBox] = Config{list.PromoterE2eRegistry, "busybox", "1.37.0-2"}
	configs[Etcd] = Config{list.GcEtcdRegistry, "etcd", "3.7.0-0"}
	configs[AgnhostPrivate] = Config{list.PrivateRegistry, "agnhost", "2.6"}
}
`

func TestE2EManifest(t *testing.T) {
	got, err := e2eManifest([]byte(manifestSnippet))
	if err != nil {
		t.Fatal(err)
	}
	want := []e2eImage{
		{"AgnhostPrev", "registry.k8s.io/e2e-test-images/agnhost", "2.55"},
		{"BusyBox", "registry.k8s.io/e2e-test-images/busybox", "1.37.0-2"},
		{"Etcd", "registry.k8s.io/etcd", "3.7.0-0"},
		{"AgnhostPrivate", "gcr.io/k8s-authenticated-test/agnhost", "2.6"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"", `configs[X] = Config{list.NoSuchRegistry, "x", "1"}` + "\n\tPromoterE2eRegistry: \"r\",\n"} {
		if _, err := e2eManifest([]byte(bad)); err == nil {
			t.Errorf("e2eManifest(%q) took it", bad)
		}
	}
}

// The e2e wrapper module is the cluster's plus ginkgo at Kubernetes' own version, and pins the
// staging modules the way the caller says (sample-apiserver falls back to an older patch).
func TestE2EGoMod(t *testing.T) {
	k8s := []byte(`module k8s.io/kubernetes

go 1.26.0

require (
	github.com/onsi/ginkgo/v2 v2.32.0
	k8s.io/api v0.0.0
	k8s.io/sample-apiserver v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/sample-apiserver => ./staging/src/k8s.io/sample-apiserver
)
`)
	got, err := e2eGoMod(k8s, "v1.33.13", func(p string) string {
		if p == "k8s.io/sample-apiserver" {
			return "v0.33.5"
		}
		return "v0.33.13"
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `module mkube.local/build

go 1.26.0

require (
	k8s.io/kubernetes v1.33.13
	github.com/onsi/ginkgo/v2 v2.32.0
)

replace (
	k8s.io/api => k8s.io/api v0.33.13
	k8s.io/sample-apiserver => k8s.io/sample-apiserver v0.33.5
)
`
	if got != want {
		t.Errorf("go.mod:\n%s\nwant:\n%s", got, want)
	}
	if _, err := e2eGoMod([]byte("module k8s.io/kubernetes\n"), "v1.33.13", nil); err == nil {
		t.Error("a go.mod without ginkgo was taken")
	}
}
