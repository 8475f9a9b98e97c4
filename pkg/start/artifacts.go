package start

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"mkube/pkg/atomicfile"
	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/cache"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/netpol"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// Images are what a start streams from the image cache into the node.
type Images struct {
	cache  *cache.Images
	refs   []string // what the control plane and addons run
	digest string
	// initRefs are what kubeadm init (or a control plane's join) needs before it can start: the
	// control plane's own images and pause. A control plane gets the rest of refs with extra,
	// beside its kubeadm (restRefs).
	initRefs   []string
	initDigest string
	restRefs   []string
	restDigest string
	// workerRefs are refs without the control plane's own images: what a worker runs.
	workerRefs   []string
	workerDigest string
	extra        []string // the user's cached images (mkube cache add)
	extraDigest  string
	pause        string
	// release lets other mkube processes change the image cache again (see imagesStep).
	release func()
}

// done releases what the images hold; safe on a zero value.
func (a *Images) done() {
	if a.release != nil {
		a.release()
		a.release = nil
	}
}

func (a *Images) writer(ctx context.Context, refs []string) func(io.Writer) error {
	if len(refs) == 0 {
		return nil
	}
	return func(w io.Writer) error { return a.cache.WriteArchive(ctx, refs, w) }
}

// binaryDir is where the cache keeps the node's Kubernetes binaries of the start's version.
func (s *State) binaryDir() string {
	return s.m.Home.CacheDir("binaries", "linux", "amd64", s.Version.String())
}

// imageListFile caches what kubeadm said the version runs: it never changes for a version.
func (s *State) imageListFile() string { return filepath.Join(s.binaryDir(), "images.txt") }

// binariesStep downloads kubeadm, kubelet and kubectl of the version (linux/amd64: the node's):
// from --binary-mirror (dl.k8s.io's layout), else from --mirror's binaries artifact, else dl.k8s.io.
func binariesStep(ctx context.Context, s *State) error {
	p := s.Profile
	s.Binaries = node.Binaries{}
	for _, n := range node.BinaryNames {
		s.Binaries[n] = filepath.Join(s.binaryDir(), n)
	}
	if ref, ok, err := cluster.BinariesRef(p, s.Version.String()); ok || err != nil {
		if err == nil {
			err = cache.PullBinaries(ctx, ref, s.binaryDir(), node.BinaryNames, s.m.Out.Err())
		}
		if err != nil {
			return reason.New(reason.Download, err, "check --mirror (make release-mirror fills one), or pass --binary-mirror")
		}
	} else {
		mirror := p.BinaryMirror
		if mirror == "" {
			mirror = cluster.DefaultBinaryMirror
		}
		dl := &cache.Downloader{Progress: s.m.Out.Err()}
		for _, n := range node.BinaryNames {
			dst := s.Binaries[n]
			// The record only: dl.File checks the content itself, and hashing the binaries twice would
			// double the cost of every start's check.
			if _, ok := cache.Recorded(dst); !ok {
				s.m.Out.V(1, "downloading %s %s", n, s.Version)
			}
			u := strings.TrimSuffix(mirror, "/") + "/" + s.Version.String() + "/bin/linux/amd64/" + n
			if err := dl.File(ctx, u, u+".sha256", dst, n); err != nil {
				return reason.New(reason.Download, err, "check --binary-mirror (an offline mirror: make mirror-serve)")
			}
		}
	}
	if raw, err := os.ReadFile(s.imageListFile()); err == nil {
		s.ImageList = strings.Fields(string(raw))
	}
	return nil
}

// isoStep brings the VM image into the cache: from --iso-url (tried in order), else from --mirror
// or the release registry (an OCI artifact pinned by digest), else in a development build from the
// ISO `make iso` wrote next to the mkube binary.
func isoStep(ctx context.Context, s *State) error {
	if !s.Entry.ISO {
		return nil
	}
	urls := s.Profile.ISOURLs
	if len(urls) == 0 {
		ref, ok, err := cluster.OwnRef(s.Profile, release.ISORepo)
		if err == nil && ok {
			s.m.Out.Step(out.Download, "Getting VM image %s from %s ...", release.ISOName(), cluster.OwnBase(s.Profile))
			s.ISO, err = cache.PullISO(ctx, ref, s.m.Home.CacheDir("iso"), s.m.Out.Err())
		}
		if err != nil {
			return reason.New(reason.Download, err, "check --mirror, or pass --iso-url=URL")
		}
		if ok {
			return nil
		}
		dev := cache.DevISO()
		if dev == "" {
			return reason.Errorf(reason.Download, "build it with `make iso` (found next to the mkube binary), pass --iso-url=URL or --mirror=HOST/PATH, or use a release build of mkube",
				"the %s driver boots mkube's ISO %s, and this development build has none", s.Profile.Driver, release.ISOName())
		}
		urls = []string{dev}
	}
	iso, err := cache.ISO(ctx, urls, s.m.Home.CacheDir("iso"), s.m.Out.Err())
	if err != nil {
		return reason.New(reason.Download, err, "check --iso-url (each URL needs URL.sha256 beside it)")
	}
	s.ISO = iso
	return nil
}

// hostImageListStep lists the version's images for --download-only, which has no node to ask:
// the downloaded kubeadm runs on the host, which only a linux/amd64 host can do.
func hostImageListStep(ctx context.Context, s *State) error {
	if s.ImageList != nil {
		return nil
	}
	if s.m.HostOS != "linux" || s.m.HostArch != "amd64" {
		return reason.Errorf(reason.ImageCache, "start the cluster once without --download-only: the node lists them",
			"--download-only needs the list of Kubernetes %s's images, which a %s/%s host cannot run kubeadm to get", s.Version, s.m.HostOS, s.m.HostArch)
	}
	raw, err := exec.CommandContext(ctx, s.Binaries["kubeadm"], "config", "images", "list", "--kubernetes-version", s.Version.String()).Output()
	if err != nil {
		return reason.New(reason.ImageCache, fmt.Errorf("kubeadm config images list: %w", err), "")
	}
	return s.setImageList(strings.Fields(string(raw)))
}

// setImageList keeps the version's image list, in the cache for the next start.
func (s *State) setImageList(refs []string) error {
	if len(refs) == 0 {
		return reason.Errorf(reason.ImageCache, "", "kubeadm %s listed no images", s.Version)
	}
	s.ImageList = refs
	return atomicfile.WriteBytes(s.imageListFile(), []byte(strings.Join(refs, "\n")+"\n"), 0o644)
}

// imagesStep pulls what the node needs into the image cache, then holds the cache as it is until
// the start is done with it, so a `cache delete` in another terminal waits instead of taking images
// from under this start. One that slipped in between the pull and the hold is noticed, and the pull
// done again.
func imagesStep(ctx context.Context, s *State) error {
	a := &s.Images
	if s.ImageList == nil || a.cache != nil {
		return nil // not known yet (see Steps), or done
	}
	for _, r := range s.ImageList {
		if cache.RepoName(r) == "pause" {
			a.pause = r
		}
	}
	a.refs = slices.Clone(s.ImageList)
	for _, ad := range s.Addons {
		a.refs = append(a.refs, ad.Images...)
	}
	if s.Profile.EffectiveCNI() == config.CNIKubeRouter {
		a.refs = append(a.refs, netpol.Images()...)
	}
	var err error
	if a.extra, err = s.m.CachedImages(); err != nil {
		return err
	}
	all := append(slices.Clone(a.refs), a.extra...)
	if a.cache, err = cache.OpenImages(ctx, s.m.Home.CacheDir("images")); err != nil {
		return reason.New(reason.ImageCache, err, "")
	}
	sources := cluster.ImageSources(s.Profile)
	for attempt := 0; ; attempt++ {
		missing, err := a.cache.MissingFrom(ctx, all, sources)
		if err != nil {
			return reason.New(reason.ImageCache, err, "")
		}
		if len(missing) > 0 {
			if attempt > 0 {
				s.m.Out.V(1, "%d images left the cache during this start: pulling them again", len(missing))
			}
			s.m.Out.Step(out.Download, "Pulling %d images for Kubernetes %s into the cache ...", len(missing), s.Version)
			if err := a.cache.EnsureFrom(ctx, all, sources, s.m.Out.Err()); err != nil {
				return reason.New(reason.ImageCache, err, "check --mirror or --image-repository (an offline mirror: make mirror-serve)")
			}
		}
		release, err := a.cache.Hold(ctx)
		if err != nil {
			return reason.New(reason.ImageCache, err, "")
		}
		if missing, err = a.cache.MissingFrom(ctx, all, sources); err == nil && len(missing) == 0 {
			a.release = release
			break
		}
		release()
		if attempt == 2 {
			return reason.Errorf(reason.ImageCache, "run the start again once other mkube commands are done", "images keep leaving the cache during this start")
		}
	}
	if a.digest, err = a.cache.Digests(ctx, a.refs); err != nil {
		return err
	}
	a.workerRefs = slices.DeleteFunc(slices.Clone(a.refs), func(r string) bool { return controlPlaneImages[cache.RepoName(r)] })
	forInit := func(r string) bool { return controlPlaneImages[cache.RepoName(r)] || r == a.pause }
	a.initRefs = slices.DeleteFunc(slices.Clone(a.refs), func(r string) bool { return !forInit(r) })
	a.restRefs = append(slices.DeleteFunc(slices.Clone(a.refs), forInit), a.extra...)
	for _, d := range []struct {
		refs []string
		to   *string
	}{{a.workerRefs, &a.workerDigest}, {a.extra, &a.extraDigest}, {a.initRefs, &a.initDigest}, {a.restRefs, &a.restDigest}} {
		if *d.to, err = a.cache.Digests(ctx, d.refs); err != nil {
			return err
		}
		*d.to = digestString(*d.to)
	}
	a.digest = digestString(a.digest)
	return nil
}

// controlPlane is what a control plane imports: what its kubeadm needs first, the rest beside it.
func (a *Images) controlPlane(ctx context.Context, c *kubeadm.Cluster) {
	c.Images, c.ImagesDigest = a.writer(ctx, a.initRefs), a.initDigest
	c.ExtraImages, c.ExtraImagesDigest = a.writer(ctx, a.restRefs), a.restDigest
}

// controlPlaneImages are the images only a control-plane node runs (its static pods): workers
// are spared importing them.
var controlPlaneImages = map[string]bool{"kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true, "etcd": true}

// digestString fingerprints a list of image digests, whatever their order.
func digestString(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return fmt.Sprintf("%x", sha256.Sum256([]byte(strings.Join(lines, "\n"))))
}
