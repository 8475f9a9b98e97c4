package cache_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"mkube/pkg/cache"
	"mkube/pkg/mirror"
)

// These tests pull from pkg/mirror's registry server and build images with its builders, so they
// are in package cache_test (pkg/mirror imports pkg/cache).

func TestEnsureAndArchive(t *testing.T) {
	// A registry on loopback: the project's own mirror server over a small layout.
	l := mirror.Layout{Root: t.TempDir()}
	store, _ := cache.OpenImageStore(l.ImagesDir())
	refs := []string{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/coredns/coredns:v1.12.1"}
	for _, r := range refs {
		layer, _ := mirror.FilesLayer([]mirror.File{{Path: "/x", Mode: 0o644, Data: []byte(r)}})
		img, _ := mirror.Assemble(mirror.ImageSpec{Ref: r, Layers: []v1.Layer{layer}, Entrypoint: []string{"/x"}})
		if err := store.Put(r, "k", img); err != nil {
			t.Fatal(err)
		}
	}
	h, err := mirror.NewServer(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://")

	c, err := cache.OpenImages(context.Background(), filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if err := c.Ensure(context.Background(), refs, repo, &progress); err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Missing(context.Background(), refs); len(m) != 0 {
		t.Errorf("still missing %v", m)
	}
	// Filled: no network needed any more.
	srv.Close()
	if err := c.Ensure(context.Background(), refs, repo, nil); err != nil {
		t.Errorf("a filled cache went to the network: %v", err)
	}
	if err := c.Ensure(context.Background(), []string{"registry.k8s.io/etcd:3.6.5-0"}, repo, nil); err == nil {
		t.Error("pulled an image from a closed registry")
	}
	arch := filepath.Join(t.TempDir(), "preload.tar")
	f, _ := os.Create(arch)
	if err := c.WriteArchive(context.Background(), refs, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, r := range refs {
		tag, _ := name.NewTag(r)
		img, err := tarball.ImageFromPath(arch, &tag)
		if err != nil {
			t.Fatalf("%s not in archive: %v", r, err)
		}
		if cf, _ := img.ConfigFile(); cf.Config.Entrypoint[0] != "/x" {
			t.Errorf("%s: config lost", r)
		}
	}
	d, _ := c.Digests(context.Background(), refs)
	if strings.Count(d, "@sha256:") != 2 {
		t.Errorf("digests = %q", d)
	}
}

// A delete waits for a start that is streaming images out of the cache, and the start's archive
// is whole: the shared cache is safe across processes (flock; here two Images values, as two
// processes would have).
func TestRemoveWaitsForReaders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	ctx := context.Background()
	reader, err := cache.OpenImages(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := "registry.k8s.io/pause:3.10.1"
	layer, _ := mirror.FilesLayer([]mirror.File{{Path: "/x", Mode: 0o644, Data: bytes.Repeat([]byte("x"), 1<<20)}})
	img, _ := mirror.Assemble(mirror.ImageSpec{Ref: ref, Layers: []v1.Layer{layer}})
	if err := cache.StoreOf(reader).Put(ref, "k", img); err != nil {
		t.Fatal(err)
	}
	deleter, err := cache.OpenImages(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- reader.WriteArchive(ctx, []string{ref}, pw); pw.Close() }()
	// The reader holds its shared lock while the archive streams: the delete must wait.
	first := make([]byte, 1)
	if _, err := io.ReadFull(pr, first); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := deleter.Remove(short, []string{ref}); err == nil {
		t.Fatal("cache delete ran while a start streamed the image")
	}
	rest, _ := io.ReadAll(pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(ref)
	arch := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(arch, append(first, rest...), 0o644)
	if _, err := tarball.ImageFromPath(arch, &tag); err != nil {
		t.Fatalf("the streamed archive is damaged: %v", err)
	}
	if err := deleter.Remove(ctx, []string{ref}); err != nil {
		t.Fatal(err)
	}
	if m, _ := reader.Missing(ctx, []string{ref}); len(m) != 1 {
		t.Error("the image is still cached after delete")
	}
}
