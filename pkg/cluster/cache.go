package cluster

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mkube/pkg/atomicfile"
	"mkube/pkg/cache"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/lockfile"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

// cacheListPath holds the images `mkube cache add` remembers for every cluster, one per line.
func (m *Manager) cacheListPath() string { return m.Home.CacheDir("images.list") }

// CachedImages are the images every start loads into its node besides Kubernetes' own.
func (m *Manager) CachedImages() ([]string, error) {
	raw, err := os.ReadFile(m.cacheListPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(raw)), nil
}

// updateCacheList changes the remembered list under a lock, so two `mkube cache add`s at once
// both keep their images.
func (m *Manager) updateCacheList(ctx context.Context, change func(have []string) ([]string, error)) error {
	if err := os.MkdirAll(filepath.Dir(m.cacheListPath()), 0o755); err != nil {
		return err
	}
	unlock, err := lockfile.Lock(ctx, m.cacheListPath()+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	have, err := m.CachedImages()
	if err != nil {
		return err
	}
	refs, err := change(have)
	if err != nil {
		return err
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	return atomicfile.WriteBytes(m.cacheListPath(), []byte(strings.Join(refs, "\n")+"\n"), 0o644)
}

// CacheAdd pulls images into the cache (from the profile's --image-repository when it has one),
// remembers them for every start, and loads them into the profile's running node.
func (m *Manager) CacheAdd(ctx context.Context, profile string, refs []string) error {
	var canon []string
	for _, r := range refs {
		c, err := cache.CanonicalRef(r)
		if err != nil {
			return reason.New(reason.Usage, err, "")
		}
		canon = append(canon, c)
	}
	var p *config.Profile
	if loaded, err := m.Home.Load(profile); err == nil {
		p = loaded
	}
	imgs, err := cache.OpenImages(ctx, m.Home.CacheDir("images"))
	if err != nil {
		return err
	}
	if err := imgs.EnsureFrom(ctx, canon, ImageSources(p), m.Out.Err()); err != nil {
		return reason.New(reason.ImageCache, err, "check the image name, and --mirror or --image-repository of the profile")
	}
	err = m.updateCacheList(ctx, func(have []string) ([]string, error) { return append(have, canon...), nil })
	if err != nil {
		return err
	}
	return m.loadIfRunning(ctx, profile, imgs, canon)
}

// CacheDelete forgets images and removes them from the cache.
func (m *Manager) CacheDelete(ctx context.Context, refs []string) error {
	var drop []string
	for _, r := range refs {
		c, err := cache.CanonicalRef(r)
		if err != nil {
			return reason.New(reason.Usage, err, "")
		}
		drop = append(drop, c)
	}
	notCached := func(have []string) error {
		for _, c := range drop {
			if !slices.Contains(have, c) {
				return reason.Errorf(reason.Usage, "see `mkube cache list`", "image %s is not in the cache", c)
			}
		}
		return nil
	}
	// A mistyped name is answered before any lock file is made; the check is repeated under it.
	if have, err := m.CachedImages(); err != nil {
		return err
	} else if err := notCached(have); err != nil {
		return err
	}
	err := m.updateCacheList(ctx, func(have []string) ([]string, error) {
		if err := notCached(have); err != nil {
			return nil, err
		}
		return slices.DeleteFunc(have, func(s string) bool { return slices.Contains(drop, s) }), nil
	})
	if err != nil {
		return err
	}
	imgs, err := cache.OpenImages(ctx, m.Home.CacheDir("images"))
	if err != nil {
		return err
	}
	return imgs.Remove(ctx, drop)
}

// CacheReload loads every cached image into the profile's running node again.
func (m *Manager) CacheReload(ctx context.Context, profile string) error {
	refs, err := m.CachedImages()
	if err != nil || len(refs) == 0 {
		return err
	}
	imgs, err := cache.OpenImages(ctx, m.Home.CacheDir("images"))
	if err != nil {
		return err
	}
	mc, err := m.Running(ctx, profile)
	if err != nil {
		return err
	}
	mc.Close()
	return m.loadIfRunning(ctx, profile, imgs, refs)
}

func (m *Manager) loadIfRunning(ctx context.Context, profile string, imgs *cache.Images, refs []string) error {
	p, err := m.Home.Load(profile)
	if err != nil {
		return nil // no cluster yet: the next start loads them
	}
	mc, err := m.open(ctx, p)
	if err != nil {
		return nil // the hypervisor does not answer: the image is cached, the next start loads it
	}
	mc.Close()
	if mc.State != driver.Running {
		return nil
	}
	return m.eachRunningNode(ctx, p, func(nodeName string, r driver.Runner) error {
		m.Out.Step(out.Docker, "Loading %d image(s) into %q ...", len(refs), nodeName)
		return node.ImportImages(ctx, r, func(w io.Writer) error { return imgs.WriteArchive(ctx, refs, w) })
	})
}
