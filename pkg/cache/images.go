package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cheggaaa/pb/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"mkube/pkg/lockfile"
	"mkube/pkg/out"
	"mkube/pkg/safepath"
)

// Images is the image cache: the container images a cluster needs, in an OCI image layout (an
// ImageStore under $MKUBE_HOME/cache/images), pulled with go-containerregistry from the image
// repository and streamed into a node's containerd as one archive, so a start makes no per-image
// pulls and a filled cache needs no network at all.
//
// Every mkube process on the machine shares it: readers (a start streaming images into its node)
// hold a shared lock, writers (a pull, `cache delete`) an exclusive one, so a delete never takes
// blobs from under a running start and two pulls never lose each other's index entries. A pull
// holds it only to move blobs it has downloaded and verified into the layout and index them: the
// downloads themselves go to .partial/ beside blobs/, resumable (see pull).
type Images struct {
	store *ImageStore
	lock  string     // flock beside the layout: <dir>.lock
	mu    sync.Mutex // pulls in this process take turns at the layout, as other processes do
}

// lockWait bounds how long a command waits for another one's hold on the cache (a large pull).
const lockWait = 30 * time.Minute

// OpenImages opens (or creates) the image cache at dir.
func OpenImages(ctx context.Context, dir string) (*Images, error) {
	c := &Images{lock: filepath.Clean(dir) + ".lock"}
	if err := os.MkdirAll(filepath.Dir(c.lock), 0o755); err != nil {
		return nil, err
	}
	var err error
	if _, serr := os.Stat(filepath.Join(dir, "index.json")); serr != nil {
		// Only creating the layout writes: that takes the lock; opening one reads nothing yet.
		unlock, err := c.hold(ctx, lockfile.Lock)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if c.store, err = OpenImageStore(dir); err != nil {
		return nil, err
	}
	return c, nil
}

// hold takes the cache's lock with how (lockfile.Lock or lockfile.RLock).
func (c *Images) hold(ctx context.Context, how func(context.Context, string) (func(), error)) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err := how(ctx, c.lock)
	if err != nil {
		return nil, fmt.Errorf("the image cache is busy: %w", err)
	}
	return unlock, nil
}

// ImageSource is where a canonical reference is pulled from: the reference itself, or, with an image
// repository set, the same path under that repository (registry.k8s.io/coredns/coredns:v1.12.1 →
// REPO/coredns/coredns:v1.12.1), which is how a mirror of registry.k8s.io is laid out.
//
// A repository on loopback, or written as http://REPO (how a profile stores one the user listed
// in --insecure-registry), is pulled over plain HTTP; https://REPO means the same as REPO (see
// RegistryRef, which applies that rule).
func ImageSource(ref, repository string) (name.Reference, error) {
	if repository == "" {
		return RegistryRef(ref)
	}
	repo, tag, err := RepoPath(ref)
	if err != nil {
		return nil, err
	}
	// The scheme prefix stays on: RegistryRef reads it.
	return RegistryRef(strings.TrimSuffix(repository, "/") + "/" + repo + ":" + tag)
}

// Hold keeps the cache's content as it is — nothing is pulled, replaced or deleted by any process —
// until the returned function is called; reads (Missing, Digests, WriteArchive) go on. A command
// that streams images some time after checking them holds the cache in between. It must not pull
// (Ensure) while it holds: a pull waits for every holder.
func (c *Images) Hold(ctx context.Context) (func(), error) {
	return c.hold(ctx, lockfile.RLock)
}

// Missing lists the refs the cache does not hold.
func (c *Images) Missing(ctx context.Context, refs []string) ([]string, error) {
	return c.MissingFrom(ctx, refs, nil)
}

// MissingFrom lists the refs the cache does not hold, or holds as another image than the digest
// source(ref) pins: a release's own images are pinned, and an entry under the same name from a
// development build or another release is not theirs. A nil source checks names only.
func (c *Images) MissingFrom(ctx context.Context, refs []string, source func(ref string) (name.Reference, error)) ([]string, error) {
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return nil, err
	}
	defer unlock()
	es, err := c.store.Entries()
	if err != nil {
		return nil, err
	}
	held := map[string]ImageEntry{}
	for _, e := range es {
		held[e.Ref] = e
	}
	var out []string
	for _, r := range refs {
		e, ok := held[r]
		if ok && source != nil {
			src, err := source(r)
			if err != nil {
				return nil, err
			}
			ok = holds(e, src)
		}
		if !ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// holds tells whether a cache entry is the image src names: any image for a tag, the pinned one
// for a digest (the manifest's digest, or the index digest it was pulled by, kept as its recipe).
func holds(e ImageEntry, src name.Reference) bool {
	d, ok := src.(name.Digest)
	return !ok || e.Desc.Digest.String() == d.DigestStr() || e.Recipe == d.DigestStr()
}

// Ensure pulls every ref the cache lacks from ImageSource(ref, repository); see EnsureFrom.
func (c *Images) Ensure(ctx context.Context, refs []string, repository string, progress io.Writer) error {
	return c.EnsureFrom(ctx, refs, func(ref string) (name.Reference, error) { return ImageSource(ref, repository) }, progress)
}

// EnsureFrom pulls every ref the cache lacks, from source(ref), three at a time, with a bar
// counting images on progress. A pull that fails or is cancelled keeps the blobs it finished and
// the part of the one it was downloading: the next one resumes there (see pull).
func (c *Images) EnsureFrom(ctx context.Context, refs []string, source func(ref string) (name.Reference, error), progress io.Writer) error {
	missing, err := c.MissingFrom(ctx, refs, source)
	if err != nil || len(missing) == 0 {
		return err
	}
	var bar *pb.ProgressBar
	if progress != nil {
		bar = out.Bar(progress, "images", int64(len(missing)), false)
		defer bar.Finish()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, ref := range missing {
		g.Go(func() error {
			src, err := source(ref)
			if err != nil {
				return err
			}
			if err := c.pull(gctx, ref, src, pinned(src), nil, ""); err != nil {
				return err
			}
			if bar != nil {
				bar.Increment()
			}
			return nil
		})
	}
	return g.Wait()
}

// PullImage brings one image into the cache under its canonical reference ref, from src (a tag or
// a digest reference), with one byte bar over all its blobs on progress (the docker driver's node
// image, a hundred megabytes). It does nothing when the cache holds ref already: for a digest src,
// only when it holds that digest (the manifest's, or the index's it was pulled by).
func (c *Images) PullImage(ctx context.Context, ref string, src name.Reference, progress io.Writer) error {
	want := pinned(src)
	have, ok, err := c.entry(ctx, ref)
	if err != nil {
		return err
	}
	if ok && holds(have, src) {
		return nil
	}
	label := RepoName(ref)
	if label == "" {
		label = ref
	}
	return c.pull(ctx, ref, src, want, progress, label)
}

// Identity is how an engine may know the cached image ref: its manifest digest (the containerd
// image store's ID) and its config digest (Docker's own image ID); "" and "" when it is not held.
func (c *Images) Identity(ctx context.Context, ref string) (manifest, config string, err error) {
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if have, err := c.store.Recipe(ref); err != nil || have == "" {
		return "", "", err
	}
	img, err := c.store.Image(ref)
	if err != nil {
		return "", "", err
	}
	m, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return "", "", err
	}
	return m.String(), cfg.String(), nil
}

// pinned is the digest src pins, "" for a tag.
func pinned(src name.Reference) string {
	if d, ok := src.(name.Digest); ok {
		return d.DigestStr()
	}
	return ""
}

// entry is the cache's entry for ref, if it has one.
func (c *Images) entry(ctx context.Context, ref string) (ImageEntry, bool, error) {
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return ImageEntry{}, false, err
	}
	defer unlock()
	es, err := c.store.Entries()
	if err != nil {
		return ImageEntry{}, false, err
	}
	for _, e := range es {
		if e.Ref == ref {
			return e, true, nil
		}
	}
	return ImageEntry{}, false, nil
}

// linuxAMD64 is the platform of every node.
var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// errBlobGone says a blob the layout held when a pull began was collected (a `cache delete` of
// another image that had it) before the pull took the lock to index its image.
var errBlobGone = errors.New("a blob left the image cache during the pull")

// pull brings src's linux/amd64 image into the cache as ref, recorded with recipe (the manifest's
// digest when ""), with a byte bar labelled label when progress is not nil.
//
// The blobs (config and layers) download first, without the cache's lock, each with FetchBlob's
// resumable, verified fetch into the cache's partials directory (.partial/<hex> inside the layout,
// outside blobs/: no GC, reader or go-containerregistry looks there, and a record beside a blob
// would be taken for one). Each partial has its own lock (lockBlob), so two pulls of images that
// share a layer, in one process or two, take turns at it and the second finds it whole. Only then
// does the pull take the exclusive lock, briefly: it moves its verified blobs into blobs/sha256 by
// renames and writes the manifest and index.json (ImageStore.putManifest). Doing that under the
// lock is what keeps a concurrent `cache delete` from collecting a blob between its arrival and
// the index entry that references it; and a blob the layout held before the download but that a
// delete collected since is noticed under the lock, and fetched again (errBlobGone). Nothing in
// blobs/ is ever partial, so readers holding the shared lock (a start streaming images) are never
// disturbed by a download, and a download no longer makes them wait.
func (c *Images) pull(ctx context.Context, ref string, src name.Reference, recipe string, progress io.Writer, label string) error {
	bs, err := newBlobSource(ctx, src.Context())
	if err != nil {
		return fmt.Errorf("pulling %s: %w", src, err)
	}
	// The shared transport bounds connects, TLS and headers and fails a stalled blob with a
	// message, which go-containerregistry's default transport does not.
	img, err := remote.Image(src, remote.WithContext(ctx), remote.WithTransport(bs.rt), remote.WithPlatform(linuxAMD64))
	if err != nil {
		return fmt.Errorf("pulling %s: %w", src, err)
	}
	p, err := readImage(img)
	if err != nil {
		return fmt.Errorf("pulling %s: %w", src, err)
	}
	if recipe == "" {
		recipe = p.digest.String()
	}
	for attempt := 1; ; attempt++ {
		fetched, err := c.fetchBlobs(ctx, bs, p.blobs, progress, label)
		if err != nil {
			return fmt.Errorf("pulling %s: %w", src, err)
		}
		err = c.commit(ctx, ref, recipe, p, fetched)
		if errors.Is(err, errBlobGone) && attempt < 3 {
			continue
		}
		if err != nil {
			return fmt.Errorf("caching %s: %w", ref, err)
		}
		return nil
	}
}

// pulledImage is what a pull stores: the manifest as the registry serves it, and the blobs it names.
type pulledImage struct {
	raw       []byte
	mediaType types.MediaType
	digest    v1.Hash
	blobs     []v1.Descriptor // config, then layers; each digest once
}

func readImage(img v1.Image) (*pulledImage, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	p := &pulledImage{raw: raw, mediaType: mt, digest: d}
	seen := map[v1.Hash]bool{}
	// An image may name one layer twice (Docker's empty layer): it is one blob.
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := checkDigest(b); err != nil {
			return nil, err
		}
		if !seen[b.Digest] {
			seen[b.Digest] = true
			p.blobs = append(p.blobs, b)
		}
	}
	return p, nil
}

// partialBlob is where blob h downloads before it enters the layout.
func (c *Images) partialBlob(h v1.Hash) string {
	return filepath.Join(string(c.store.path), ".partial", h.Hex)
}

// fetchBlobs downloads, one after the other, those of blobs the layout lacks into their partial
// files, and returns the ones it left there verified. The bar (one for all, labelled label) starts
// at the bytes already held: blobs in the layout and what partials have.
func (c *Images) fetchBlobs(ctx context.Context, bs *blobSource, blobs []v1.Descriptor, progress io.Writer, label string) (map[v1.Hash]bool, error) {
	var bar *pb.ProgressBar
	if progress != nil {
		var total int64
		for _, b := range blobs {
			total += b.Size
		}
		bar = out.Bar(progress, label, total, true)
		defer bar.Finish()
	}
	meters := make([]*meter, len(blobs))
	for i, b := range blobs {
		meters[i] = &meter{bar: bar}
		if c.store.hasBlob(b) {
			meters[i].set(b.Size)
		} else if st, err := os.Stat(c.partialBlob(b.Digest)); err == nil {
			meters[i].set(min(st.Size(), b.Size))
		}
	}
	fetched := map[v1.Hash]bool{}
	for i, b := range blobs {
		if c.store.hasBlob(b) {
			continue
		}
		ok, err := c.fetchBlob(ctx, bs, b, meters[i])
		if err != nil {
			return nil, err
		}
		fetched[b.Digest] = ok
	}
	return fetched, nil
}

// fetchBlob downloads b into its partial file under the partial's lock; false when it found b in
// the layout once it had the lock (another pull brought it meanwhile).
func (c *Images) fetchBlob(ctx context.Context, bs *blobSource, b v1.Descriptor, m *meter) (bool, error) {
	partial := c.partialBlob(b.Digest)
	if err := os.MkdirAll(filepath.Dir(partial), 0o755); err != nil {
		return false, err
	}
	unlock, err := lockBlob(ctx, partial)
	if err != nil {
		return false, err
	}
	defer unlock()
	if c.store.hasBlob(b) {
		m.set(b.Size)
		return false, nil
	}
	return true, bs.fetch(ctx, b, partial, m)
}

// commit moves the blobs fetched verified into the layout and stores ref, under the exclusive
// lock (see pull). Each partial is moved under its own lock too, and only at its verified size:
// another pull of the same digest whose manifest claims another size (a lying registry) could
// otherwise be writing to the file as it becomes a blob.
func (c *Images) commit(ctx context.Context, ref, recipe string, p *pulledImage, fetched map[v1.Hash]bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.hold(ctx, lockfile.Lock)
	if err != nil {
		return err
	}
	defer unlock()
	for _, b := range p.blobs {
		if c.store.hasBlob(b) {
			if fetched[b.Digest] {
				// Another pull moved the same blob in between this one's check and its download:
				// the partial is a spare.
				os.Remove(c.partialBlob(b.Digest))
			}
			continue
		}
		if !fetched[b.Digest] {
			return errBlobGone
		}
		if err := c.moveBlob(ctx, b); err != nil {
			return err
		}
	}
	return c.store.putManifest(ref, recipe, p.raw, p.mediaType)
}

// moveBlob renames b's verified partial into the layout, under the partial's lock.
func (c *Images) moveBlob(ctx context.Context, b v1.Descriptor) error {
	partial := c.partialBlob(b.Digest)
	unlock, err := lockBlob(ctx, partial)
	if err != nil {
		return err
	}
	defer unlock()
	if st, err := os.Stat(partial); err != nil || st.Size() != b.Size {
		return errBlobGone // changed since it was verified: fetched again
	}
	dst := c.store.blobPath(b.Digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Rename(partial, dst)
}

// WriteArchive writes the given cached images as one docker-archive tarball (what
// `ctr images import` and `docker load` read), tagged with their canonical references.
func (c *Images) WriteArchive(ctx context.Context, refs []string, w io.Writer) error {
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return err
	}
	defer unlock()
	m := map[name.Reference]v1.Image{}
	for _, r := range refs {
		img, err := c.store.Image(r)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(r)
		if err != nil {
			return err
		}
		m[tag] = img
	}
	return tarball.MultiRefWrite(m, w)
}

// Digests returns "ref@digest" lines for refs: a fingerprint of exactly what a preload holds.
func (c *Images) Digests(ctx context.Context, refs []string) (string, error) {
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return "", err
	}
	defer unlock()
	var b strings.Builder
	for _, r := range refs {
		d, err := c.store.Recipe(r)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s@%s\n", r, d)
	}
	return b.String(), nil
}

// CanonicalRef is the name containerd and the kubelet use for an image reference: fully qualified,
// Docker Hub as docker.io/library/..., ":latest" when no tag is given.
func CanonicalRef(ref string) (string, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	reg := t.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + t.RepositoryStr() + ":" + t.TagStr(), nil
}

// Remove drops refs from the cache (their blobs go at the next garbage collection).
func (c *Images) Remove(ctx context.Context, refs []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.hold(ctx, lockfile.Lock)
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.store.Remove(refs); err != nil {
		return err
	}
	return c.sweepPartials(ctx, staleAfter)
}

// staleAfter is how long a partial blob of an interrupted pull is kept for the pull to resume.
const staleAfter = 7 * 24 * time.Hour

// sweepPartials removes the partial blobs of pulls interrupted more than maxAge ago, along with a
// cache delete: nothing else ever would. One that a pull is writing (its lock is held) stays; so
// do the lock files, which a waiting process may hold open (see lockBlob).
func (c *Images) sweepPartials(ctx context.Context, maxAge time.Duration) error {
	dir := filepath.Join(string(c.store.path), ".partial")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || strings.HasSuffix(e.Name(), ".lock") || time.Since(info.ModTime()) < maxAge {
			continue
		}
		p, err := safepath.Join(dir, e.Name())
		if err != nil {
			continue
		}
		try, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		unlock, err := lockfile.Lock(try, p+".lock")
		cancel()
		if err != nil {
			continue // being written
		}
		err = os.Remove(p)
		unlock()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// RepoName is a reference's repository path without its registry (registry.k8s.io/pause:3.10 →
// pause); "" for what is not a tagged reference.
func RepoName(ref string) string {
	t, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return ""
	}
	return t.RepositoryStr()
}

// WriteFiles writes the root file system of the cached image ref (its layers flattened, as a
// container would see it) as a tar stream: where the ssh driver takes mkube's runtime from.
func (c *Images) WriteFiles(ctx context.Context, ref string, w io.Writer) error {
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := c.store.Image(ref)
	if err != nil {
		return err
	}
	return extract(ctx, img, w)
}

// extract writes img's flattened root file system to w, until ctx ends.
func extract(ctx context.Context, img v1.Image, w io.Writer) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	if _, err := io.Copy(w, rc); err != nil {
		return errors.Join(ctx.Err(), err)
	}
	return nil
}
