package cluster

import (
	"testing"

	"mkube/pkg/addons"
	"mkube/pkg/config"
	"mkube/pkg/release"
)

// TestImageSources covers where each image comes from. In a release build (make test runs this
// package once more stamped as a release) mkube's own images come from the release registry,
// pinned by digest, unless a mirror is given.
func TestImageSources(t *testing.T) {
	v := release.Version()
	own := release.LocalRef(release.ProvisionerRepo)
	pinned := func(base, repo string) string { return release.Ref(base, repo) }
	devOrRelease := func(dev, rel string) string {
		if release.Registry() == "" {
			return dev
		}
		return rel
	}
	reg := release.Registry()
	tests := []struct {
		name    string
		p       *config.Profile
		ref     string
		want    string // "" when there is no source
		wantErr bool
	}{
		{"kubernetes image, no profile", nil, "registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2", false},
		{"kubernetes image from the image repository", &config.Profile{ImageRepository: "127.0.0.1:5080", Mirror: "m.example/x"}, "registry.k8s.io/coredns/coredns:v1.12.1", "127.0.0.1:5080/coredns/coredns:v1.12.1", false},
		{"kubernetes image from the mirror", &config.Profile{Mirror: "m.example/x"}, "registry.k8s.io/kube-apiserver:v1.37.2", "m.example/x/kube-apiserver:v1.37.2", false},
		{"a user's image from the mirror", &config.Profile{Mirror: "m.example/x"}, "docker.io/library/nginx:1.27", "m.example/x/library/nginx:1.27", false},
		{"own image from the mirror, pinned", &config.Profile{Mirror: "m.example/x", ImageRepository: "127.0.0.1:5080"}, own, pinned("m.example/x", release.ProvisionerRepo), false},
		{"own image without a mirror", &config.Profile{ImageRepository: "127.0.0.1:5080"}, own,
			devOrRelease("127.0.0.1:5080/storage-provisioner:"+v, pinned(reg, release.ProvisionerRepo)), false},
		{"another version's own image is any image", &config.Profile{Mirror: "m.example/x"}, "mkube.local/dashboard:v0.0.1", "m.example/x/dashboard:v0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ImageSources(tt.p)(tt.ref)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("source of %s = %s, want %s", tt.ref, got, tt.want)
			}
		})
	}
}

func TestOwnSourcesAndAddonImages(t *testing.T) {
	dashboard, err := addons.Find("dashboard")
	if err != nil {
		t.Fatal(err)
	}
	ref, ok, err := OwnRef(&config.Profile{}, release.ISORepo)
	if release.Registry() == "" {
		if ok || err != nil || ref != nil {
			t.Errorf("a development build has an ISO source: %v %v", ref, err)
		}
		if AddonImagesAvailable(&config.Profile{}, dashboard) {
			t.Error("a development build without a mirror claims the dashboard's image")
		}
	} else {
		want := release.Ref(release.Registry(), release.ISORepo)
		if !ok || err != nil || ref.String() != want {
			t.Errorf("ISO source = %v, %v, want %s", ref, err, want)
		}
		if !AddonImagesAvailable(&config.Profile{}, dashboard) {
			t.Error("a release build does not find the dashboard's image")
		}
	}
	if !AddonImagesAvailable(&config.Profile{Mirror: "m.example/x"}, dashboard) {
		t.Error("a mirror does not serve the dashboard's image")
	}
	if ref, ok, _ := OwnRef(&config.Profile{Mirror: "127.0.0.1:5000/x"}, release.NodeRepo); !ok || ref.Context().Registry.Scheme() != "http" {
		t.Errorf("a loopback mirror is not plain HTTP: %v", ref)
	}
}
