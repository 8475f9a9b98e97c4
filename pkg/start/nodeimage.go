package start

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"

	"mkube/pkg/cache"
	"mkube/pkg/cluster"
	"mkube/pkg/driver"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// imageLoader is a driver whose machines boot from an image in a local engine (docker, podman).
type imageLoader interface {
	// ImageID is the engine's ID of the image ref, "" when it has none.
	ImageID(ctx context.Context, ref string) (string, error)
	LoadImage(ctx context.Context, archive func(io.Writer) error) error
}

// nodeImageStep makes sure the engine has the image a new node boots from. mkube's own node image
// comes from the mirror or the release registry, pinned by the release's digest: an engine copy
// under the same name that is another image (a development build's, another release's) is
// replaced. Another --base-image comes from its own registry, and an engine copy of it is used as
// `docker run` would. What is pulled goes through the image cache (resumable, verified) and is
// loaded into the engine. A machine that exists already needs no image.
func nodeImageStep(ctx context.Context, s *State) error {
	l, ok := s.Driver.(imageLoader)
	if !ok || s.Entry.ISO {
		return nil
	}
	p := s.Profile
	if st, err := s.Driver.State(ctx); err == nil && st != driver.Nonexistent {
		return nil
	}
	ref, err := cache.CanonicalRef(p.BaseImage)
	if err != nil {
		return reason.New(reason.Usage, err, "check --base-image")
	}
	id, err := l.ImageID(ctx, p.BaseImage)
	if err != nil {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	src, err := nodeImageSource(p.BaseImage, ref, id, s)
	if err != nil || src == nil {
		return err
	}
	if _, pinnedImage := src.(name.Digest); id != "" && !pinnedImage {
		return nil
	}
	imgs, err := cache.OpenImages(ctx, s.m.Home.CacheDir("images"))
	if err != nil {
		return reason.New(reason.ImageCache, err, "")
	}
	if id != "" && sameImage(ctx, imgs, ref, id) {
		return nil
	}
	s.m.Out.Step(out.Pulling, "Pulling base image %s ...", src)
	if s.m.HostArch != "" && s.m.HostArch != "amd64" {
		s.m.Out.Warn("the node image is linux/amd64: on this %s host %s can run it only under emulation (slow)", s.m.HostArch, s.Entry.Name)
	}
	if err := imgs.PullImage(ctx, ref, src, s.m.Out.Err()); err != nil {
		if id != "" && cache.Unreachable(ctx, err) { // offline, with the cache cleared
			s.m.Out.Warn("could not check the engine's %s against the release's digest (%v): using it", p.BaseImage, err)
			return nil
		}
		return reason.New(reason.Download, err, "check --mirror and --base-image; run the start again to resume the pull")
	}
	if id != "" && sameImage(ctx, imgs, ref, id) {
		return nil
	}
	s.m.Out.V(1, "loading %s into the %s engine", ref, s.Entry.Name)
	if err := l.LoadImage(ctx, func(w io.Writer) error { return imgs.WriteArchive(ctx, []string{ref}, w) }); err != nil {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	return nil
}

// nodeImageSource is where the node image ref (given as baseImage) is pulled from; nil when the
// engine's copy (ID id) is all there is: a development build's own node image.
func nodeImageSource(baseImage, ref, id string, s *State) (name.Reference, error) {
	if ref != release.LocalRef(release.NodeRepo) {
		src, err := cache.RegistryRef(ref) // the user's own image, from its own registry
		if err != nil {
			return nil, reason.New(reason.Usage, err, "check --base-image")
		}
		return src, nil
	}
	src, ok, err := cluster.OwnRef(s.Profile, release.NodeRepo)
	if err != nil {
		return nil, reason.New(reason.Usage, err, "check --mirror")
	}
	if ok {
		return src, nil
	}
	if id == "" {
		build := "build it with `make node-image`"
		if engine := s.Entry.Name; engine != "docker" {
			// make node-image builds into Docker; another engine gets a copy of it.
			build += fmt.Sprintf(" and copy it (docker save %s | %s load)", baseImage, engine)
		}
		return nil, reason.Errorf(reason.GuestError, build+", pass --mirror=HOST/PATH or --base-image=IMAGE, or use a release build of mkube",
			"node image %s is not in the local %s engine, and this development build has no registry to pull it from", baseImage, s.Entry.Name)
	}
	return nil, nil
}

// sameImage tells whether the engine's image id is the cached ref.
func sameImage(ctx context.Context, imgs *cache.Images, ref, id string) bool {
	manifest, config, err := imgs.Identity(ctx, ref)
	return err == nil && id != "" && (id == manifest || id == config)
}

// nodeFilesStep gives a driver that installs mkube's container runtime onto a machine that already
// runs Linux (Entry.NodeFiles: ssh) the node image's files, from the same place a container
// node's image comes from: mkube's own node image from the mirror or the release registry, pinned
// by the release's digest and kept in the image cache; another --base-image from its own registry;
// a development build's `make node-image` from the local Docker engine. A machine mkube has
// installed already needs nothing.
func nodeFilesStep(ctx context.Context, s *State) error {
	if !s.Entry.NodeFiles {
		return nil
	}
	p := s.Profile
	if st, err := s.Driver.State(ctx); err == nil && st != driver.Nonexistent {
		return nil
	}
	ref, err := cache.CanonicalRef(p.BaseImage)
	if err != nil {
		return reason.New(reason.Usage, err, "check --base-image")
	}
	var src name.Reference
	if ref != release.LocalRef(release.NodeRepo) {
		src, err = cache.RegistryRef(ref)
	} else if own, ok, oerr := cluster.OwnRef(p, release.NodeRepo); ok || oerr != nil {
		src, err = own, oerr
	}
	if err != nil {
		return reason.New(reason.Usage, err, "check --base-image and --mirror")
	}
	if src == nil {
		if err := cache.InDocker(ctx, p.BaseImage); err != nil {
			return reason.Errorf(reason.GuestError, "build it with `make node-image`, pass --mirror=HOST/PATH or --base-image=IMAGE, or use a release build of mkube",
				"the %s driver installs the container runtime from the node image, and this development build has nowhere to take it from: %v", p.Driver, err)
		}
		tmp := s.m.Home.CacheDir("tmp")
		s.NodeFiles = func(ctx context.Context, w io.Writer) error { return cache.DockerFiles(ctx, p.BaseImage, tmp, w) }
		return nil
	}
	imgs, err := cache.OpenImages(ctx, s.m.Home.CacheDir("images"))
	if err != nil {
		return reason.New(reason.ImageCache, err, "")
	}
	if _, _, err := imgs.Identity(ctx, ref); err != nil { // not cached yet: a download follows
		s.m.Out.Step(out.Pulling, "Pulling base image %s ...", src)
	}
	if err := imgs.PullImage(ctx, ref, src, s.m.Out.Err()); err != nil {
		return reason.New(reason.Download, err, "check --mirror and --base-image; run the start again to resume the pull")
	}
	s.NodeFiles = func(ctx context.Context, w io.Writer) error { return imgs.WriteFiles(ctx, ref, w) }
	return nil
}
