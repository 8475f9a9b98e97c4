package artifacts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mkube/pkg/atomicfile"
	"mkube/pkg/cache"
	"mkube/pkg/mirror"
	"mkube/pkg/release"
	"mkube/pkg/safepath"
)

// ReleaseOptions say which release of mkube to build and where to publish it.
type ReleaseOptions struct {
	Version    string // the release's version, which tags its artifacts: v0.2.0
	Registry   string // R, HOST[:PORT]/PATH: where the artifacts go, stamped into the binaries
	Out        string // binaries, SHA256SUMS, release.json and the ISO (out/release)
	Source     string // the mkube source tree, whose commit is released
	Work       string // build directory (out/build)
	AllowDirty bool   // release a tree with uncommitted changes (a local try)
	Debian     string
	Suite      string
	Log        io.Writer
}

// ReleaseInfo is what out/release/release.json records.
type ReleaseInfo struct {
	Version  string            `json:"version"`
	Commit   string            `json:"commit"`
	Registry string            `json:"registry"`
	Digests  map[string]string `json:"digests"` // release.OwnRepos → sha256:…
}

// Platform is one GOOS/GOARCH mkube is released for.
type Platform struct {
	OS, Arch string
	// CC is the C compiler of a platform built with cgo: Linux, whose kvm2 driver reaches libvirt
	// through cgo (libvirt itself is loaded at run time, so only the C library is linked).
	CC string
}

// ReleasePlatforms are the platforms a release builds mkube for.
var ReleasePlatforms = []Platform{
	{"linux", "amd64", "x86_64-linux-gnu-gcc"}, {"linux", "arm64", "aarch64-linux-gnu-gcc"},
	{"darwin", "amd64", ""}, {"darwin", "arm64", ""}, {"windows", "amd64", ""},
}

// BinaryName is the released mkube's file name for a platform: mkube-<os>-<arch>[.exe].
func (p Platform) BinaryName() string {
	n := "mkube-" + p.OS + "-" + p.Arch
	if p.OS == "windows" {
		n += ".exe"
	}
	return n
}

// Release builds mkube's own artifacts for a version (the node image, the storage-provisioner and
// dashboard images, the ISO), pushes them under the registry R, and cross-builds mkube stamped with
// R and the artifacts' digests (see package release). The artifacts are all built before anything
// is pushed, so a failed build publishes nothing; the binaries, which carry the pushed digests,
// are built after the push into a scratch directory and moved into out only once all are built.
// No Docker engine is needed.
func Release(ctx context.Context, o ReleaseOptions) error {
	o, err := checkRelease(o)
	if err != nil {
		return err
	}
	commit, err := sourceCommit(ctx, o.Source, o.AllowDirty)
	if err != nil {
		return err
	}
	pusher, err := mirror.NewPusher(o.Registry, o.Log)
	if pusher != nil {
		pusher.Once = true
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	b := &builder{opts: Options{Work: o.Work, Source: o.Source, Debian: o.Debian, Suite: o.Suite, Log: o.Log}}
	b.logf("releasing mkube %s (commit %s) to %s", o.Version, commit, o.Registry)
	var t phases
	start := time.Now()

	// The ISO first: its tools are checked before anything long runs.
	iso := filepath.Join(o.Out, release.ISOFileName(o.Version))
	err = t.run("ISO", func() error {
		if err := BuildISO(ctx, ISOOptions{Work: o.Work, Version: o.Version, Out: iso, Debian: o.Debian, Suite: o.Suite, Log: o.Log}); err != nil {
			return err
		}
		return dropOtherISOs(o.Out, filepath.Base(iso))
	})
	if err != nil {
		return err
	}
	var images []ownImage
	err = t.run("node image", func() error {
		img, err := NodeImage(ctx, NodeOptions{Work: o.Work, Tag: ownRef(release.NodeRepo, o.Version), Debian: o.Debian, Suite: o.Suite, Log: o.Log})
		if err != nil {
			return err
		}
		images = append(images, ownImage{repo: release.NodeRepo, img: img})
		return nil
	})
	if err != nil {
		return err
	}
	err = t.run("addon images", func() error {
		own, err := b.ownImages(ctx, o.Version)
		if err != nil {
			return err
		}
		images = append(images, own...)
		return nil
	})
	if err != nil {
		return err
	}

	digests := map[string]string{}
	err = t.run("push", func() error {
		for _, im := range images {
			d, err := pusher.Image(ctx, ownRef(im.repo, o.Version), im.img)
			if err != nil {
				return err
			}
			digests[im.repo] = d.String()
		}
		d, err := pusher.ISO(ctx, o.Version, iso)
		digests[release.ISORepo] = d.String()
		return err
	})
	if err != nil {
		return err
	}

	var bins []string
	err = t.run("mkube binaries", func() error {
		var err error
		scratch, err := os.MkdirTemp(o.Out, ".building-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
		if bins, err = b.crossBuild(ctx, scratch, release.Stamp(o.Version, commit, o.Registry, digests)); err != nil {
			return err
		}
		for _, n := range bins {
			if err := os.Rename(filepath.Join(scratch, n), filepath.Join(o.Out, n)); err != nil {
				return err
			}
		}
		if err := writeSums(o.Out, bins); err != nil {
			return err
		}
		return writeReleaseInfo(o.Out, ReleaseInfo{Version: o.Version, Commit: commit, Registry: o.Registry, Digests: digests})
	})
	if err != nil {
		return err
	}
	return summary(o, images, digests, iso, bins, t, time.Since(start))
}

// checkRelease validates the version and the registry and fills in defaults.
func checkRelease(o ReleaseOptions) (ReleaseOptions, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := mirror.CheckTag(o.Version); err != nil {
		return o, err
	}
	r, err := mirror.ParseRegistry(o.Registry)
	if err != nil {
		return o, err
	}
	o.Registry = r
	for _, d := range []*string{&o.Out, &o.Work, &o.Source} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return o, err
		}
		*d = abs
	}
	return o, nil
}

// sourceCommit is the commit a release is built from. A tree with uncommitted changes (anything
// `git status --porcelain` lists) is refused: the binaries would claim a commit they were not
// built from. With allowDirty the commit is marked "-dirty".
func sourceCommit(ctx context.Context, source string, allowDirty bool) (string, error) {
	b := &builder{}
	status, err := b.output(ctx, source, nil, "git", "status", "--porcelain")
	if err != nil {
		return "", fmt.Errorf("%s: cannot read its git status: %s", source, firstLine(err.Error()))
	}
	dirty := strings.TrimSpace(string(status)) != ""
	if dirty && !allowDirty {
		return "", fmt.Errorf("%s has uncommitted changes: commit or stash first; --allow-dirty for a local try", source)
	}
	head, err := b.output(ctx, source, nil, "git", "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("%s: %s", source, firstLine(err.Error()))
	}
	commit := strings.TrimSpace(string(head))
	if dirty {
		commit += "-dirty"
	}
	return commit, nil
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// ownRef is an own artifact's name in a node and the engine, for a release version.
func ownRef(repo, version string) string { return release.LocalPrefix + repo + ":" + version }

// ownImage is one of mkube's own images built for a release.
type ownImage struct {
	repo string
	img  v1.Image
}

// ownImages builds the storage-provisioner and dashboard images the way a mirror build does, named
// mkube.local/<repo>:version.
func (b *builder) ownImages(ctx context.Context, version string) ([]ownImage, error) {
	recipes := []struct {
		repo   string
		recipe func(ref, bin string) imageRecipe
	}{
		{release.ProvisionerRepo, provisionerImage},
		{release.DashboardRepo, dashboardImage},
	}
	var out []ownImage
	for _, r := range recipes {
		bin, err := b.ownBinary(ctx, r.repo)
		if err != nil {
			return nil, err
		}
		img, err := r.recipe(ownRef(r.repo, version), bin).build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.repo, err)
		}
		out = append(out, ownImage{repo: r.repo, img: img})
	}
	return out, nil
}

// crossBuild builds ./cmd/mkube of the source tree for every release platform into out (static,
// but for Linux's C library), with ldflags added to "-s -w", and returns the files' names.
func (b *builder) crossBuild(ctx context.Context, out, ldflags string) ([]string, error) {
	var names []string
	for _, p := range ReleasePlatforms {
		name := p.BinaryName()
		b.logf("building %s", name)
		env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Arch, "GOTOOLCHAIN=local"}
		if p.CC != "" {
			// Without cgo a Linux mkube has no kvm2 driver; libvirt is loaded at run time.
			env = append(env, "CGO_ENABLED=1", "CC="+p.CC)
		}
		err := b.run(ctx, b.opts.Source, env, "go", "build", "-trimpath", "-buildvcs=false", "-tags", "libvirt_dlopen",
			"-ldflags", "-s -w "+ldflags, "-o", filepath.Join(out, name), "./cmd/mkube")
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// writeSums writes dir/SHA256SUMS for the named files of dir, in `sha256sum -c` format.
func writeSums(dir string, names []string) error {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	var b strings.Builder
	for _, n := range sorted {
		sum, err := cache.FileSHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

// writeReleaseInfo writes dir/release.json.
func writeReleaseInfo(dir string, info ReleaseInfo) error {
	raw, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "release.json"), append(raw, '\n'), 0o644)
}

// phases times the steps of a release for its summary.
type phases struct {
	names []string
	took  []time.Duration
}

func (p *phases) run(name string, f func() error) error {
	start := time.Now()
	err := f()
	p.names = append(p.names, name)
	p.took = append(p.took, time.Since(start).Round(time.Second))
	return err
}

func (p *phases) String() string {
	parts := make([]string, len(p.names))
	for i := range p.names {
		parts[i] = fmt.Sprintf("%s %s", p.names[i], p.took[i])
	}
	return strings.Join(parts, ", ")
}

// summary prints what was published: digests and sizes, the binaries, the time each step took.
func summary(o ReleaseOptions, images []ownImage, digests map[string]string, iso string, bins []string, t phases, took time.Duration) error {
	w := o.Log
	fmt.Fprintf(w, "==> mkube %s published to %s in %s\n", o.Version, o.Registry, took.Round(time.Second))
	for _, im := range images {
		size, err := mirror.ImageSize(im.img)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    %-24s %s  %s compressed\n", im.repo, digests[im.repo], mirror.MB(size))
	}
	st, err := os.Stat(iso)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "    %-24s %s  %s\n", release.ISORepo, digests[release.ISORepo], mirror.MB(st.Size()))
	for _, n := range bins {
		st, err := os.Stat(filepath.Join(o.Out, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "    %-24s %s\n", n, mirror.MB(st.Size()))
	}
	fmt.Fprintf(w, "    in %s: SHA256SUMS, release.json, %s\n", o.Out, filepath.Base(iso))
	fmt.Fprintf(w, "    took: %s\n", t.String())
	return nil
}

// dropOtherISOs removes other versions' ISOs (and their records) from out, which holds the release
// being made, not an archive: every version's is 150 MB.
func dropOtherISOs(out, keep string) error {
	matches, err := filepath.Glob(filepath.Join(out, "mkube-*-amd64.iso*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		name := filepath.Base(m)
		if name == keep || strings.HasPrefix(name, keep+".") {
			continue
		}
		p, err := safepath.Join(out, name)
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
