package cluster

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"mkube/pkg/addons"
	"mkube/pkg/cache"
	"mkube/pkg/config"
	"mkube/pkg/release"
)

// Where a profile's artifacts come from, most specific first:
//
//	Kubernetes images      --image-repository, --mirror, each image's own registry
//	Kubernetes binaries    --binary-mirror, --mirror (an OCI artifact), dl.k8s.io
//	mkube's node image,    --base-image / --iso-url, --mirror, the release registry stamped into
//	ISO and addon images   this build; a development build's own (make node-image, make iso, or
//	                       an mkube mirror as --image-repository)
//
// mkube's own artifacts are pinned by the digests this release published (release.Ref), so a
// mirror or a registry in between cannot swap them.

// OwnBase is the registry path mkube's own artifacts come from: the profile's mirror, else the
// release registry; "" in a development build without a mirror.
func OwnBase(p *config.Profile) string {
	if p != nil && p.Mirror != "" {
		return p.Mirror
	}
	return release.Registry()
}

// OwnRef is where one of mkube's own artifacts (release.NodeRepo, ISORepo, …) is pulled from, and
// false when this build has nowhere to pull it from.
func OwnRef(p *config.Profile, repo string) (name.Reference, bool, error) {
	base := OwnBase(p)
	if base == "" {
		return nil, false, nil
	}
	ref, err := cache.RegistryRef(release.Ref(base, repo))
	return ref, true, err
}

// BinariesRef is the mirror's Kubernetes binaries artifact of a version, and false when the profile
// has no mirror or a --binary-mirror (which wins).
func BinariesRef(p *config.Profile, version string) (name.Reference, bool, error) {
	if p.Mirror == "" || p.BinaryMirror != "" {
		return nil, false, nil
	}
	ref, err := cache.RegistryRef(strings.TrimSuffix(p.Mirror, "/") + "/" + release.BinariesRepo + ":" + release.BinariesTag(version))
	return ref, true, err
}

// ImageSources returns where each image of a profile (nil: none) is pulled from.
func ImageSources(p *config.Profile) func(ref string) (name.Reference, error) {
	return func(ref string) (name.Reference, error) {
		var repository, mirror string
		if p != nil {
			repository, mirror = p.ImageRepository, p.Mirror
		}
		if own := ownRepo(ref); own != "" {
			if src, ok, err := OwnRef(p, own); ok || err != nil {
				return src, err
			}
			// A development build: an mkube mirror (make mirror-serve) serves them as --image-repository.
		}
		if repository == "" {
			repository = mirror
		}
		return cache.ImageSource(ref, repository)
	}
}

// ownRepo is the repository of one of this release's own images (mkube.local/REPO:VERSION), "" for
// any other image, including mkube images of another version.
func ownRepo(ref string) string {
	rest, ok := strings.CutPrefix(ref, release.LocalPrefix)
	if !ok {
		return ""
	}
	repo, tag, ok := strings.Cut(rest, ":")
	if !ok || tag != release.Version() {
		return ""
	}
	return repo
}

// AddonImagesAvailable tells whether the addon's images can be had: a development build without a
// mirror has nowhere to pull mkube's own images from but an mkube mirror given as --image-repository.
func AddonImagesAvailable(p *config.Profile, a addons.Addon) bool {
	if p.ImageRepository != "" || OwnBase(p) != "" {
		return true
	}
	for _, img := range a.Images {
		if strings.HasPrefix(img, release.LocalPrefix) {
			return false
		}
	}
	return true
}
