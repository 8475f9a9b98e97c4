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
