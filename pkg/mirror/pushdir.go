package mirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"mkube/pkg/cache"
	"mkube/pkg/k8sversion"
	"mkube/pkg/node"
	"mkube/pkg/release"
)

// Kinds of directory `mkube-mirror push` copies from.
const (
	KindMirror = "mirror" // a Layout: release/<v>/bin/linux/amd64/..., images/
	KindCache  = "cache"  // $MKUBE_HOME/cache: binaries/linux/amd64/<v>/..., images/, iso/
)

// PushSource is what a directory to push holds.
type PushSource struct {
	Dir      string
	Kind     string
	Images   string            // the OCI image layout, "" when there is none
	Binaries map[string]string // Kubernetes version → directory with kubeadm, kubelet, kubectl
	ISOs     map[string]string // mkube version → ISO file (a cache's iso/mkube-<version>-amd64.iso)
	Skipped  []string          // what was left out, and why
}

// InspectDir tells a mirror directory from an mkube cache directory by its shape and lists what
// it holds. Anything else is refused.
func InspectDir(dir string) (PushSource, error) {
	src := PushSource{Dir: dir, Binaries: map[string]string{}, ISOs: map[string]string{}}
	if !isDir(dir) {
		return src, fmt.Errorf("%s is not a directory: push a mirror (`make artifacts`) or an mkube cache directory", dir)
	}
	mirror := isDir(filepath.Join(dir, "release"))
	cached := isDir(filepath.Join(dir, "binaries")) || isDir(filepath.Join(dir, "iso"))
	switch {
	case mirror && !cached:
		src.Kind = KindMirror
	case cached && !mirror:
		src.Kind = KindCache
	default:
		return src, fmt.Errorf("%s is neither a mirror (release/, images/: `make artifacts`) nor an mkube cache directory (binaries/, iso/, images/)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "images", "index.json")); err == nil {
		src.Images = filepath.Join(dir, "images")
	}
	if src.Kind == KindMirror {
		// release/<version>/bin/linux/amd64/<name>
		src.findBinaries(filepath.Join(dir, "release"), func(v string) string {
			return filepath.Join(dir, "release", v, "bin", "linux", "amd64")
		})
		return src, nil
	}
	// binaries/linux/amd64/<version>/<name>
	base := filepath.Join(dir, "binaries", "linux", "amd64")
	src.findBinaries(base, func(v string) string { return filepath.Join(base, v) })
	src.findISOs(filepath.Join(dir, "iso"))
	return src, nil
}

// findBinaries adds every version directory under parent whose binaries (at binDir(version)) are
// all there, each with its digest record (in a cache, a file without one is incomplete).
func (s *PushSource) findBinaries(parent string, binDir func(version string) string) {
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		v, err := k8sversion.Parse(e.Name())
		if !e.IsDir() || err != nil || v.String() != e.Name() {
			continue
		}
		dir := binDir(e.Name())
		if missing := missingBinaries(dir); len(missing) > 0 {
			s.Skipped = append(s.Skipped, fmt.Sprintf("Kubernetes %s binaries: %s missing", e.Name(), strings.Join(missing, ", ")))
			continue
		}
		s.Binaries[e.Name()] = dir
	}
}

func missingBinaries(dir string) []string {
	var missing []string
	for _, n := range node.BinaryNames {
		if _, ok := cache.Recorded(filepath.Join(dir, n)); !ok {
			missing = append(missing, n)
		}
	}
	return missing
}

// findISOs adds every complete mkube-<version>-amd64.iso in dir; other ISOs (a --iso-url of some
// other name) carry no version to tag them with.
func (s *PushSource) findISOs(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".iso") {
			continue
		}
		v, ok := isoVersion(n)
		switch {
		case !ok:
			s.Skipped = append(s.Skipped, fmt.Sprintf("ISO %s: not named mkube-<version>-amd64.iso", n))
		case !hasRecord(filepath.Join(dir, n)):
			s.Skipped = append(s.Skipped, fmt.Sprintf("ISO %s: incomplete (no %s%s)", n, n, cache.DigestSuffix))
		default:
			s.ISOs[v] = filepath.Join(dir, n)
		}
	}
}

// isoVersion is the mkube version in an ISO's file name, mkube-<version>-amd64.iso.
func isoVersion(file string) (string, bool) {
	v, ok := strings.CutPrefix(file, "mkube-")
	if !ok {
		return "", false
	}
	v, ok = strings.CutSuffix(v, "-amd64.iso")
	return v, ok && CheckTag(v) == nil
}

func hasRecord(path string) bool {
	_, ok := cache.Recorded(path)
	return ok
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Dir pushes everything src holds: every image of its layout, the binaries of every Kubernetes
// version (only kubernetesVersion's when it is not empty) and a cache's ISOs.
func (p *Pusher) Dir(ctx context.Context, src PushSource, kubernetesVersion string) error {
	versions := sortedKeys(src.Binaries)
	if kubernetesVersion != "" {
		if src.Binaries[kubernetesVersion] == "" {
			return fmt.Errorf("%s has no Kubernetes %s binaries (it has %s)", src.Dir, kubernetesVersion, orNone(versions))
		}
		versions = []string{kubernetesVersion}
	}
	fmt.Fprintf(p.log, "pushing the %s %s to %s\n", src.Kind, src.Dir, p.registry)
	for _, s := range src.Skipped {
		fmt.Fprintf(p.log, "skipped     %s\n", s)
	}
	if src.Images != "" {
		if err := p.layoutImages(ctx, src); err != nil {
			return err
		}
	}
	for _, v := range versions {
		if _, err := p.Binaries(ctx, v, src.Binaries[v]); err != nil {
			return err
		}
	}
	for _, v := range sortedKeys(src.ISOs) {
		if _, err := p.ISO(ctx, v, src.ISOs[v]); err != nil {
			return err
		}
	}
	return nil
}

// layoutImages pushes every tagged image of src's OCI layout. A cache's layout is held (a shared
// lock) so that no start or `cache delete` changes it meanwhile.
func (p *Pusher) layoutImages(ctx context.Context, src PushSource) error {
	if src.Kind == KindCache {
		imgs, err := cache.OpenImages(ctx, src.Images)
		if err != nil {
			return err
		}
		unlock, err := imgs.Hold(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	store, err := cache.OpenImageStore(src.Images)
	if err != nil {
		return err
	}
	entries, err := store.Entries()
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Ref < entries[j].Ref })
	for _, e := range entries {
		// A mirror's own images are a development build's (make artifacts): a release publishes its
		// own, and a cache's are the release's it was pulled for.
		if src.Kind == KindMirror && strings.HasPrefix(e.Ref, release.LocalPrefix) {
			fmt.Fprintf(p.log, "skipped     %s (a development build's: make release publishes a release's own images)\n", e.Ref)
			continue
		}
		img, err := store.Image(e.Ref)
		if err != nil {
			return err
		}
		if _, err := p.Image(ctx, e.Ref, img); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
