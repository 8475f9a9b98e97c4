package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPublishBinaryReleaseLayout(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	src := filepath.Join(t.TempDir(), "kubeadm")
	content := []byte("#!/bin/sh\necho kubeadm\n")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishBinary(src, "v1.34.4", "linux", "amd64", "kubeadm"); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(l.Root, "release/v1.34.4/bin/linux/amd64/kubeadm")
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("binary mode = %v, want 0755", st.Mode().Perm())
	}
	sum, err := os.ReadFile(dst + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(content)
	// dl.k8s.io's .sha256 files hold the bare hex digest and nothing else.
	if string(sum) != hex.EncodeToString(want[:]) {
		t.Errorf(".sha256 = %q, want %x", sum, want)
	}
	if err := l.VerifyBinary("v1.34.4", "linux", "amd64", "kubeadm"); err != nil {
		t.Errorf("VerifyBinary: %v", err)
	}
	if err := os.WriteFile(dst, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyBinary("v1.34.4", "linux", "amd64", "kubeadm"); err == nil {
		t.Error("VerifyBinary accepted a binary that does not match its checksum")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// A damaged config blob (a crash while it was written) is replaced on the next Put rather than
// kept because a file of that name exists; index.json is written whole.
func TestPutRepairsDamagedSmallBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	s, err := OpenImageStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := FilesLayer([]File{{Path: "/x", Mode: 0o644, Data: []byte("x")}})
	img, _ := Assemble(ImageSpec{Ref: "registry.k8s.io/a:1", Layers: []v1.Layer{layer}, Entrypoint: []string{"/x"}})
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
