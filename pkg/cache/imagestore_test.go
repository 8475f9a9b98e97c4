package cache_test

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"mkube/pkg/cache"
	"mkube/pkg/mirror"
)

// The store's tests build their images with pkg/mirror's layer and image builders, which is why
// they are in package cache_test (pkg/mirror imports pkg/cache).

func TestRepoPath(t *testing.T) {
	tests := []struct{ ref, repo, tag string }{
		{"registry.k8s.io/kube-apiserver:v1.34.4", "kube-apiserver", "v1.34.4"},
		{"registry.k8s.io/coredns/coredns:v1.12.1", "coredns/coredns", "v1.12.1"},
		{"registry.k8s.io/e2e-test-images/agnhost:2.56", "e2e-test-images/agnhost", "2.56"},
		{"mkube.local/storage-provisioner:v0.1.0", "storage-provisioner", "v0.1.0"},
	}
	for _, tt := range tests {
		repo, tag, err := cache.RepoPath(tt.ref)
		if err != nil || repo != tt.repo || tag != tt.tag {
			t.Errorf("RepoPath(%q) = %q, %q, %v; want %q, %q", tt.ref, repo, tag, err, tt.repo, tt.tag)
		}
	}
	if _, _, err := cache.RepoPath("registry.k8s.io/pause"); err == nil {
		t.Error("a reference without a tag was accepted")
	}
}

func TestImageStorePutReplaceGC(t *testing.T) {
	s, err := cache.OpenImageStore(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(content string) v1.Image {
		l, err := mirror.FilesLayer([]mirror.File{{Path: "/f", Mode: 0o644, Data: []byte(content)}})
		if err != nil {
			t.Fatal(err)
		}
		img, err := mirror.Assemble(mirror.ImageSpec{Ref: "registry.k8s.io/x:1", Layers: []v1.Layer{l}})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	if err := s.Put("registry.k8s.io/x:1", "k1", mk("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("registry.k8s.io/y:1", "k2", mk("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("registry.k8s.io/x:1", "k3", mk("three")); err != nil {
		t.Fatal(err)
	}
	es, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("entries = %d, want 2 (a Put of the same ref replaces it)", len(es))
	}
	if r, _ := s.Recipe("registry.k8s.io/x:1"); r != "k3" {
		t.Errorf("recipe = %q, want k3", r)
	}
	if r, _ := s.Recipe("registry.k8s.io/none:1"); r != "" {
		t.Errorf("recipe of a missing image = %q", r)
	}
	removed, err := s.GC()
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 { // the replaced image's manifest, config and layer
		t.Errorf("GC removed %d blobs, want 3", removed)
	}
	img, err := s.Image("registry.k8s.io/x:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("image after GC: %v", err)
	}
	img, _ = s.Image("registry.k8s.io/y:1")
	if err := validate.Image(img); err != nil {
		t.Errorf("other image after GC: %v", err)
	}
}

// A damaged config blob (a crash while it was written) is replaced on the next Put rather than
// kept because a file of that name exists; index.json is written whole.
func TestPutRepairsDamagedSmallBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	s, err := cache.OpenImageStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := mirror.FilesLayer([]mirror.File{{Path: "/x", Mode: 0o644, Data: []byte("x")}})
	img, _ := mirror.Assemble(mirror.ImageSpec{Ref: "registry.k8s.io/a:1", Layers: []v1.Layer{layer}, Entrypoint: []string{"/x"}})
	cfg, _ := img.ConfigName()
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", cfg.Hex), []byte("{trunc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("registry.k8s.io/a:1", "k", img); err != nil {
		t.Fatal(err)
	}
	got, err := s.Image("registry.k8s.io/a:1")
	if err != nil {
		t.Fatal(err)
	}
	if cf, err := got.ConfigFile(); err != nil || cf.Config.Entrypoint[0] != "/x" {
		t.Fatalf("config after Put: %v, %v", cf, err)
	}
	if err := s.Put("registry.k8s.io/b:1", "k", img); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove([]string{"registry.k8s.io/a:1"}); err != nil {
		t.Fatal(err)
	}
	es, _ := s.Entries()
	if len(es) != 1 || es[0].Ref != "registry.k8s.io/b:1" {
		t.Fatalf("entries after remove: %+v", es)
	}
}
