package mirror

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"mkube/pkg/cache"
	"mkube/pkg/release"
)

// TestPushedArtifactsPull checks the two sides of pkg/release's contract against each other: what
// the release tool pushes (ISO, Kubernetes binaries) is what mkube's start pulls, byte for byte,
// by the references a start builds.
func TestPushedArtifactsPull(t *testing.T) {
	reg := testRegistry(t)
	p, _ := newTestPusher(t, reg)
	ctx := context.Background()
	src := t.TempDir()
	iso := randomFile(t, src, "built.iso", 2<<20)
	d, err := p.ISO(ctx, release.Version(), iso)
	if err != nil {
		t.Fatal(err)
	}
	bins := filepath.Join(src, "bin")
	os.MkdirAll(bins, 0o755)
	for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		randomFile(t, bins, n, 64<<10)
	}
	if _, err := p.Binaries(ctx, "v1.37.2", bins); err != nil {
		t.Fatal(err)
	}

	// The ISO by the pinned reference a release build would use (its digest), and by tag.
	for _, ref := range []string{reg + "/iso:" + release.Version() + "@" + d.String(), reg + "/iso:" + release.Version()} {
		r, err := cache.RegistryRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		got, err := cache.PullISO(ctx, r, dir, nil)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if filepath.Base(got) != release.ISOName() || !sameFile(t, got, iso) {
			t.Errorf("pulled %s from %s, not the pushed ISO", got, ref)
		}
	}
	r, err := cache.RegistryRef(reg + "/" + release.BinariesRepo + ":" + release.BinariesTag("v1.37.2"))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := cache.PullBinaries(ctx, r, dst, []string{"kubeadm", "kubelet", "kubectl"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		if !sameFile(t, filepath.Join(dst, n), filepath.Join(bins, n)) {
			t.Errorf("%s differs from the pushed one", n)
		}
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
