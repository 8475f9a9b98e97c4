package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"mkube/pkg/cache"
	"mkube/pkg/lockfile"
)

// pushImage pushes a random image of layers layers of about size bytes each to path on reg.
func pushImage(t *testing.T, reg *faultyRegistry, path string, seed int64, layers int, size int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, int64(layers), random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(reg.ref(path), img); err != nil {
		t.Fatal(err)
	}
	return img
}

// checkLayout fails the test if the layout's blobs directory holds anything but blobs (a digest
// record or a partial would be collected by GC, or worse, served) or if a partial is left.
func checkLayout(t *testing.T, dir string) {
	t.Helper()
	blob := regexp.MustCompile(`^[0-9a-f]{64}$`)
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !blob.MatchString(e.Name()) {
			t.Errorf("blobs/sha256/%s is not a blob", e.Name())
		}
	}
	partials, _ := os.ReadDir(filepath.Join(dir, ".partial"))
	for _, e := range partials {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf(".partial/%s is left after a pull", e.Name())
		}
	}
}

// archive writes refs with WriteArchive and reads each back.
func archive(t *testing.T, c *cache.Images, refs ...string) {
	t.Helper()
	arch := filepath.Join(t.TempDir(), "preload.tar")
	f, err := os.Create(arch)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteArchive(bg, refs, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, r := range refs {
		tag, _ := name.NewTag(r)
		img, err := tarball.ImageFromPath(arch, &tag)
		if err != nil {
			t.Fatalf("%s not in the archive: %v", r, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s in the archive: %v", r, err)
		}
	}
}

func TestEnsureFrom(t *testing.T) {
	reg := newFaultyRegistry(t)
	refs := []string{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/coredns/coredns:v1.12.1", "mkube.local/dashboard:v0.1.0"}
	for i, r := range refs {
		repo, tag, _ := cache.RepoPath(r)
		pushImage(t, reg, "mirror/"+repo+":"+tag, int64(i), 2, 8<<10)
	}
	var mu sync.Mutex
	var asked []string // EnsureFrom asks from three goroutines
	source := func(ref string) (name.Reference, error) {
		repo, tag, err := cache.RepoPath(ref)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		asked = append(asked, ref)
		mu.Unlock()
		return cache.RegistryRef(reg.host + "/mirror/" + repo + ":" + tag)
	}
	dir := filepath.Join(t.TempDir(), "images")
	c, err := cache.OpenImages(bg, dir)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	if err := c.EnsureFrom(bg, refs, source, &progress); err != nil {
		t.Fatal(err)
	}
	if len(asked) != len(refs) || !strings.Contains(progress.String(), "3 / 3") {
		t.Errorf("sources asked for %v; progress %q", asked, progress.String())
	}
	if m, _ := c.Missing(bg, refs); len(m) != 0 {
		t.Errorf("still missing %v", m)
	}
	checkLayout(t, dir)
	archive(t, c, refs...)

	// Filled: the registry is not asked again (sources are, for the digests they may pin).
	reg.srv.Close()
	if err := c.EnsureFrom(bg, refs, source, nil); err != nil {
		t.Errorf("a filled cache went to the network: %v", err)
	}
	refused := errors.New("no source")
	err = c.EnsureFrom(bg, []string{"registry.k8s.io/etcd:3.6.5-0"}, func(string) (name.Reference, error) { return nil, refused }, nil)
	if !errors.Is(err, refused) {
		t.Errorf("a source's error: %v", err)
	}
	if err := c.EnsureFrom(bg, []string{"registry.k8s.io/etcd:3.6.5-0"}, source, nil); err == nil {
		t.Error("pulled an image from a closed registry")
	}
}

// An interrupted pull of a multi-layer image keeps the blobs it finished and resumes the one it
// was in the middle of; the image then streams out of the cache whole.
func TestPullImageResumes(t *testing.T) {
	reg := newFaultyRegistry(t)
	img := pushImage(t, reg, "mkube/node:v0.1.0", 42, 4, 64<<10)
	d, _ := img.Digest()
	m, _ := img.Manifest()
	src := reg.ref("mkube/node:v0.1.0@" + d.String())
	const ref = "mkube.local/node:v0.1.0"
	dir := filepath.Join(t.TempDir(), "images")
	c, err := cache.OpenImages(bg, dir)
	if err != nil {
		t.Fatal(err)
	}

	cut := m.Layers[2]
	reg.set(func(f *faultyRegistry) { f.cut[cut.Digest.String()] = cut.Size / 2 })
	if err := c.PullImage(bg, ref, src, nil); err == nil {
		t.Fatal("a cut pull succeeded")
	}
	if mi, _ := c.Missing(bg, []string{ref}); len(mi) != 1 {
		t.Fatal("a cut pull indexed the image")
	}
	if g := reg.blobGets(); len(g) != 4 { // config, two layers, the cut one
		t.Fatalf("first try: %+v", g)
	}

	var progress bytes.Buffer
	if err := c.PullImage(bg, ref, src, &progress); err != nil {
		t.Fatal(err)
	}
	want := []blobGet{
		{digest: cut.Digest.String(), rng: fmt.Sprintf("bytes=%d-%d", cut.Size/2, cut.Size-1), status: 206, served: cut.Size - cut.Size/2},
		{digest: m.Layers[3].Digest.String(), status: 200, served: m.Layers[3].Size},
	}
	if got := reg.blobGets(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second try:\n got %+v\nwant %+v", got, want)
	}
	var total int64 = m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	if counters := fmt.Sprintf("%.2f KiB / %.2f KiB", float64(total)/1024, float64(total)/1024); !strings.Contains(progress.String(), counters) || !strings.Contains(progress.String(), "node") {
		t.Errorf("progress = %q, want %q", progress.String(), counters)
	}
	checkLayout(t, dir)
	archive(t, c, ref)
	es, _ := cache.StoreOf(c).Entries()
	if len(es) != 1 || es[0].Desc.Digest != d {
		t.Errorf("entries: %+v", es)
	}

	// Held with this digest: nothing to do, no registry needed. Another digest is pulled.
	reg.srv.Close()
	if err := c.PullImage(bg, ref, src, nil); err != nil {
		t.Errorf("a cached image went to the registry: %v", err)
	}
	if err := c.PullImage(bg, ref, reg.ref("mkube/node:v0.1.0"), nil); err != nil {
		t.Errorf("a cached image pulled by tag went to the registry: %v", err)
	}
	other := reg.ref("mkube/node@sha256:" + strings.Repeat("1", 64))
	if err := c.PullImage(bg, ref, other, nil); err == nil {
		t.Error("an image of another digest was taken for the cached one")
	}
}

// A multi-platform image pulled by its index's digest is cached as its linux/amd64 image, and the
// index's digest still says it is there.
func TestPullImageByIndexDigest(t *testing.T) {
	reg := newFaultyRegistry(t)
	amd, _ := random.Image(4<<10, 2, random.WithSource(rand.NewSource(1)))
	arm, _ := random.Image(4<<10, 2, random.WithSource(rand.NewSource(2)))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	if err := remote.WriteIndex(reg.ref("mkube/node:v1"), idx); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()
	src := reg.ref("mkube/node:v1@" + id.String())
	c, err := cache.OpenImages(bg, filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	const ref = "mkube.local/node:v1"
	if err := c.PullImage(bg, ref, src, nil); err != nil {
		t.Fatal(err)
	}
	es, _ := cache.StoreOf(c).Entries()
	if ad, _ := amd.Digest(); len(es) != 1 || es[0].Desc.Digest != ad {
		t.Fatalf("entries %+v, want the amd64 image %s", es, ad)
	}
	reg.srv.Close()
	if err := c.PullImage(bg, ref, src, nil); err != nil {
		t.Errorf("pulled again by the same index digest: %v", err)
	}
}

// Pulls of images that share a layer, at once, fetch it once and both succeed; a delete of one
// keeps the other whole.
func TestPullsShareBlobs(t *testing.T) {
	reg := newFaultyRegistry(t)
	base, _ := random.Image(32<<10, 1, random.WithSource(rand.NewSource(5)))
	refs := []string{"registry.k8s.io/a:1", "registry.k8s.io/b:1"}
	for i, r := range refs {
		extra, _ := random.Layer(8<<10, "application/vnd.docker.image.rootfs.diff.tar.gzip", random.WithSource(rand.NewSource(int64(10+i))))
		img, _ := mutate.AppendLayers(base, extra)
		repo, tag, _ := cache.RepoPath(r)
		if err := remote.Write(reg.ref("mirror/"+repo+":"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "images")
	// Two caches over one directory: two processes.
	c1, _ := cache.OpenImages(bg, dir)
	c2, _ := cache.OpenImages(bg, dir)
	errs := make(chan error, 2)
	for i, c := range []*cache.Images{c1, c2} {
		go func() { errs <- c.Ensure(bg, refs[i:i+1], "http://"+reg.host+"/mirror", nil) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	bl, _ := base.Layers()
	shared, _ := bl[0].Digest()
	n := 0
	for _, g := range reg.blobGets() {
		if g.digest == shared.String() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the shared layer was fetched %d times", n)
	}
	checkLayout(t, dir)
	if err := c1.Remove(bg, refs[:1]); err != nil {
		t.Fatal(err)
	}
	archive(t, c2, refs[1])
}

// TestMissingFromPinned: an entry under a name is not the image a digest source pins unless it has
// that digest (a development build's image under a release's name, say).
func TestMissingFromPinned(t *testing.T) {
	reg := newFaultyRegistry(t)
	bg := context.Background()
	ref := "mkube.local/dashboard:v0.1.0"
	c, err := cache.OpenImages(bg, filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	img := pushImage(t, reg, "mirror/dashboard:v0.1.0", 1, 1, 1024)
	d, _ := img.Digest()
	tagSrc := func(string) (name.Reference, error) { return cache.RegistryRef(reg.host + "/mirror/dashboard:v0.1.0") }
	if err := c.EnsureFrom(bg, []string{ref}, tagSrc, nil); err != nil {
		t.Fatal(err)
	}
	other := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		pin  string
		want int
	}{{"", 0}, {d.String(), 0}, {other, 1}} {
		src := tagSrc
		if tt.pin != "" {
			src = func(string) (name.Reference, error) {
				return cache.RegistryRef(reg.host + "/mirror/dashboard:v0.1.0@" + tt.pin)
			}
		}
		if m, err := c.MissingFrom(bg, []string{ref}, src); err != nil || len(m) != tt.want {
			t.Errorf("pinned %q: missing %v, %v; want %d", tt.pin, m, err, tt.want)
		}
	}
}

// TestRemoveSweepsStalePartials: a cache delete removes the partial blobs of pulls interrupted long
// ago, but not recent ones, not one being written, and not the lock files.
func TestRemoveSweepsStalePartials(t *testing.T) {
	bg := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b", "images")
	c, err := cache.OpenImages(bg, dir)
	if err != nil {
		t.Fatal(err)
	}
	partials := filepath.Join(dir, ".partial")
	os.MkdirAll(partials, 0o755)
	old := time.Now().Add(-30 * 24 * time.Hour)
	for name, age := range map[string]time.Time{"stale": old, "recent": time.Now(), "writing": old, "stale.lock": old} {
		p := filepath.Join(partials, strings.Repeat("a", 10)+name)
		os.WriteFile(p, []byte("part"), 0o644)
		os.Chtimes(p, age, age)
	}
	unlock, err := lockfile.Lock(bg, filepath.Join(partials, strings.Repeat("a", 10)+"writing.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := c.Remove(bg, nil); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(partials)
	for _, e := range entries {
		left = append(left, strings.TrimPrefix(e.Name(), strings.Repeat("a", 10)))
	}
	if got := strings.Join(left, ","); got != "recent,stale.lock,writing,writing.lock" {
		t.Errorf("left %s", got)
	}
}
