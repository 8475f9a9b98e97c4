package cluster

import (
	"context"
	"io"
	"time"

	"mkube/pkg/addons"
	"mkube/pkg/cache"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

// AddonStatus is one row of `mkube addons list`.
type AddonStatus struct {
	Name       string   `json:"-"`
	Profile    string   `json:"Profile"`
	Status     string   `json:"Status"` // enabled or disabled
	Maintainer string   `json:"Maintainer"`
	Images     []string `json:"Images,omitempty"`
}

// AddonsList reports every addon's state in a profile.
func (m *Manager) AddonsList(profile string) ([]AddonStatus, error) {
	p, err := m.loadProfile(profile)
	if err != nil {
		return nil, err
	}
	on := map[string]bool{}
	for _, a := range addons.Enabled(p.Addons) {
		on[a.Name] = true
	}
	var rows []AddonStatus
	for _, a := range addons.All {
		st := "disabled"
		if on[a.Name] {
			st = "enabled"
		}
		rows = append(rows, AddonStatus{Name: a.Name, Profile: p.Name, Status: st, Maintainer: a.Maintainer, Images: a.Images})
	}
	return rows, nil
}

// addonTimeout bounds applying or deleting one addon's manifests on a running cluster.
const addonTimeout = 3 * time.Minute

// AddonEnable turns an addon on: on a running cluster its images are cached, loaded into the node
// and its manifests applied; a stopped cluster remembers it for the next start.
func (m *Manager) AddonEnable(ctx context.Context, profile, name string) error {
	return m.setAddon(ctx, profile, name, true)
}

// AddonDisable turns an addon off, deleting what enabling it created.
func (m *Manager) AddonDisable(ctx context.Context, profile, name string) error {
	return m.setAddon(ctx, profile, name, false)
}

func (m *Manager) setAddon(ctx context.Context, profile, name string, enable bool) error {
	a, err := addons.Find(name)
	if err != nil {
		return reason.New(reason.Usage, err, "run `mkube addons list`")
	}
	if _, err := m.loadProfile(profile); err != nil { // before its lock file is made
		return err
	}
	unlock, err := m.LockProfile(ctx, profile)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.loadProfile(profile)
	if err != nil {
		return err
	}
	if enable && !AddonImagesAvailable(p, a) {
		return reason.Errorf(reason.Usage, "create the profile with --mirror=HOST/PATH or --image-repository=<mkube mirror> (make mirror-serve), or use a release build of mkube",
			"the %s addon runs mkube's own images, which this development build has no registry for, and profile %q has no mirror", a.Name, p.Name)
	}
	mc, err := m.open(ctx, p)
	if err != nil {
		return err
	}
	defer mc.Close()
	running := mc.State == driver.Running
	manifest, err := addons.Render(a, addons.Values{NodeIP: mc.Endpoint.IP})
	if err != nil {
		return err
	}
	if running {
		r, err := mc.Runner(ctx)
		if err != nil {
			return err
		}
		applier, err := m.Applier(p.Name, mc.Endpoint)
		if err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, addonTimeout)
		defer cancel()
		if enable {
			err = m.applyAddon(actx, p, a, r, applier, manifest)
		} else {
			err = RemoveAddon(actx, applier, r, a.Name, manifest)
		}
		if err != nil {
			return reason.New(reason.K8sStart, err, "see `mkube logs -p "+p.Name+"`")
		}
	}
	if p.Addons == nil {
		p.Addons = map[string]bool{}
	}
	p.Addons[a.Name] = enable
	if err := m.Home.Save(p); err != nil {
		return err
	}
	switch {
	case enable && running:
		m.Out.Step(out.Star, "The '%s' addon is enabled", a.Name)
	case enable:
		m.Out.Step(out.Star, "The '%s' addon will be enabled when %q starts", a.Name, p.Name)
	case running:
		m.Out.Step(out.Stopped, "The '%s' addon is disabled", a.Name)
	default:
		m.Out.Step(out.Stopped, "The '%s' addon will be removed when %q starts", a.Name, p.Name)
	}
	return nil
}

// applyAddon brings an addon's images into the cache and the node, then applies its manifests.
func (m *Manager) applyAddon(ctx context.Context, p *config.Profile, a addons.Addon, r driver.Runner, applier Applier, manifest []byte) error {
	if len(a.Images) > 0 {
		imgs, err := cache.OpenImages(ctx, m.Home.CacheDir("images"))
		if err != nil {
			return err
		}
		for _, img := range a.Images {
			m.Out.Sub("Using image %s", img)
		}
		if err := imgs.EnsureFrom(ctx, a.Images, ImageSources(p), m.Out.Err()); err != nil {
			return reason.New(reason.ImageCache, err, "check the profile's --mirror or --image-repository (an offline mirror: make mirror-serve)")
		}
		if err := node.ImportImages(ctx, r, func(w io.Writer) error { return imgs.WriteArchive(ctx, a.Images, w) }); err != nil {
			return err
		}
	}
	return ApplyAddon(ctx, applier, r, a.Name, manifest)
}
