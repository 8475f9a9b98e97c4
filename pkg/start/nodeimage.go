package start

import (
	"context"
	"io"

	"mkube/pkg/cache"
	"mkube/pkg/cluster"
	"mkube/pkg/driver"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// imageLoader is a driver whose machines boot from an image in a local engine (docker).
type imageLoader interface {
	HasImage(ctx context.Context, ref string) (bool, error)
	LoadImage(ctx context.Context, archive func(io.Writer) error) error
}

// nodeImageStep makes sure the engine has the image a new node boots from. One it lacks is pulled
// into the image cache — mkube's own node image from the mirror or the release registry, pinned by
// digest; another --base-image from its own registry — resumably and verified, then loaded into the
// engine. A machine that exists already needs no image.
func nodeImageStep(ctx context.Context, s *State) error {
	l, ok := s.Driver.(imageLoader)
	if !ok || s.Entry.ISO {
		return nil
	}
	p := s.Profile
	if st, err := s.Driver.State(ctx); err == nil && st != driver.Nonexistent {
		return nil
	}
	has, err := l.HasImage(ctx, p.BaseImage)
	if err != nil {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	if has {
		return nil
	}
	ref, err := cache.CanonicalRef(p.BaseImage)
	if err != nil {
		return reason.New(reason.Usage, err, "check --base-image")
	}
	if ref == release.LocalRef(release.NodeRepo) && cluster.OwnBase(p) == "" {
		return reason.Errorf(reason.GuestError, "build it with `make node-image`, pass --mirror=HOST/PATH or --base-image=IMAGE, or use a release build of mkube",
			"node image %s is not in the local Docker engine, and this development build has no registry to pull it from", p.BaseImage)
	}
	src, err := cluster.ImageSources(p)(ref)
	if err != nil {
		return reason.New(reason.Usage, err, "check --base-image and --mirror")
	}
	s.m.Out.Step(out.Pulling, "Pulling base image %s ...", src)
	imgs, err := cache.OpenImages(ctx, s.m.Home.CacheDir("images"))
	if err != nil {
		return reason.New(reason.ImageCache, err, "")
	}
	if err := imgs.PullImage(ctx, ref, src, s.m.Out.Err()); err != nil {
		return reason.New(reason.Download, err, "check --mirror and --base-image; run the start again to resume the pull")
	}
	s.m.Out.V(1, "loading %s into the Docker engine", ref)
	if err := l.LoadImage(ctx, func(w io.Writer) error { return imgs.WriteArchive(ctx, []string{ref}, w) }); err != nil {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	return nil
}
