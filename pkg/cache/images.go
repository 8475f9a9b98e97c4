package cache

import (
	"context"
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
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sync/errgroup"

	"mkube/pkg/lockfile"
	"mkube/pkg/out"
)

// Images is the image cache: the container images a cluster needs, in an OCI image layout (an
// ImageStore under $MKUBE_HOME/cache/images), pulled with go-containerregistry from the image
// repository and streamed into a node's containerd as one archive, so a start makes no per-image
// pulls and a filled cache needs no network at all.
//
// Every mkube process on the machine shares it: readers (a start streaming images into its node)
// hold a shared lock, writers (a pull, `cache delete`) an exclusive one, so a delete never takes
// blobs from under a running start and two pulls never lose each other's index entries.
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
	unlock, err := c.hold(ctx, lockfile.RLock)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []string
	for _, r := range refs {
		have, err := c.store.Recipe(r)
		if err != nil {
			return nil, err
		}
		if have == "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// Ensure pulls every ref the cache lacks, three at a time, with a progress bar on progress.
func (c *Images) Ensure(ctx context.Context, refs []string, repository string, progress io.Writer) error {
	missing, err := c.Missing(ctx, refs)
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
			src, err := ImageSource(ref, repository)
			if err != nil {
				return err
			}
			// The shared transport bounds connects, TLS and headers and fails a stalled layer
			// with a message, which go-containerregistry's default transport does not.
			img, err := remote.Image(src, remote.WithContext(gctx), remote.WithTransport(Transport()),
				remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
			if err != nil {
				return fmt.Errorf("pulling %s: %w", src, err)
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			// Layers download while the layout writes them, one image at a time across processes.
			c.mu.Lock()
			defer c.mu.Unlock()
			unlock, err := c.hold(gctx, lockfile.Lock)
			if err != nil {
				return err
			}
			defer unlock()
			if err := c.store.Put(ref, d.String(), img); err != nil {
				return fmt.Errorf("caching %s: %w", ref, err)
			}
			if bar != nil {
				bar.Increment()
			}
			return nil
		})
	}
	return g.Wait()
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
	return c.store.Remove(refs)
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
