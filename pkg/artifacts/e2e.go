package artifacts

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"mkube/pkg/k8sversion"
)

// E2E is Kubernetes' end-to-end suite built for one version: e2e.test, the ginkgo runner of the
// same ginkgo version, and the directory holding the version's kubectl (the kubectl specs exec it).
type E2E struct {
	Test, Ginkgo, KubectlDir string
}

// BuildE2E builds e2e.test and ginkgo from k8s.io/kubernetes at o.Version (after Build has built
// the version's binaries, whose Go cache it shares) into Work/e2e-<version>/bin. It takes about
// 20 minutes and 3 GB of memory on 2 cores, which is why it is its own step.
func BuildE2E(ctx context.Context, o Options) (E2E, error) {
	if err := k8sversion.CheckSupported(o.Version); err != nil {
		return E2E{}, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	work, err := filepath.Abs(o.Work)
	if err != nil {
		return E2E{}, err
	}
	o.Work = work
	b := &builder{opts: o}
	v := o.Version
	dir := filepath.Join(o.Work, "e2e-"+v.String())
	bin := filepath.Join(dir, "bin")
	e := E2E{Test: filepath.Join(bin, "e2e.test"), Ginkgo: filepath.Join(bin, "ginkgo"),
		KubectlDir: filepath.Join(o.Work, "kubernetes-"+v.String(), "bin")}
	if _, err := os.Stat(filepath.Join(e.KubectlDir, "kubectl")); err != nil {
		return e, fmt.Errorf("no kubectl %s in %s: build the mirror for this version first (make artifacts)", v, e.KubectlDir)
	}

	// The suite's own test dependencies are published at the staging modules' version too; the
	// proxy here lacks some patch releases of sample-apiserver (whose API types e2e imports), so
	// that one falls back to the nearest older patch of the same minor.
	sample := fmt.Sprintf("v0.%d.%d", v.Minor, v.Patch)
	for p := v.Patch; ; p-- {
		try := fmt.Sprintf("v0.%d.%d", v.Minor, p)
		if _, err := b.downloadModule(ctx, "k8s.io/sample-apiserver", try); err == nil {
			if try != sample {
				b.logf("k8s.io/sample-apiserver %s is not on the module proxy: e2e uses %s (its API types)", sample, try)
			}
			sample = try
			break
		}
		if p == 0 {
			return e, fmt.Errorf("no k8s.io/sample-apiserver v0.%d.x on the module proxy", v.Minor)
		}
	}
	staging := func(path string) string {
		if path == "k8s.io/sample-apiserver" {
			return sample
		}
		return fmt.Sprintf("v0.%d.%d", v.Minor, v.Patch)
	}
	mi, err := b.downloadModule(ctx, "k8s.io/kubernetes", v.String())
	if err != nil {
		return e, fmt.Errorf("fetching k8s.io/kubernetes@%s: %w", v, err)
	}
	raw, err := os.ReadFile(mi.GoMod)
	if err != nil {
		return e, err
	}
	gomod, err := e2eGoMod(raw, v.String(), staging)
	if err != nil {
		return e, err
	}
	gov, err := b.goVersion(ctx)
	if err != nil {
		return e, err
	}
	ldflags := kubeLdflags(v.String(), v.Major, v.Minor)
	key := recipeKey("e2e", v.String(), gov, ldflags, gomod)
	if fresh(dir, key, e.Test, e.Ginkgo) {
		b.logf("e2e.test and ginkgo %s are up to date", v)
		return e, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return e, err
	}
	if old, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || string(old) != gomod {
		os.Remove(filepath.Join(dir, "go.sum"))
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
			return e, err
		}
	}
	b.logf("building e2e.test %s from source (about 20 minutes and 3 GB of memory on 2 cores)", v)
	if err := b.run(ctx, dir, goEnv, "go", "test", "-c", "-vet=off", "-trimpath", "-ldflags", "-s -w "+ldflags, "-o", e.Test, "k8s.io/kubernetes/test/e2e"); err != nil {
		return e, err
	}
	if err := b.run(ctx, dir, goEnv, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", e.Ginkgo, "github.com/onsi/ginkgo/v2/ginkgo"); err != nil {
		return e, err
	}
	return e, markFresh(dir, key)
}

// e2eGoMod is the cluster's wrapper module (wrapperGoMod) plus the ginkgo module at the version
// k8s.io/kubernetes requires: the ginkgo runner must match the library compiled into e2e.test.
func e2eGoMod(k8sGoMod []byte, version string, staging func(string) string) (string, error) {
	gomod, err := wrapperGoMod("k8s.io/kubernetes", version, k8sGoMod, staging)
	if err != nil {
		return "", err
	}
	f, err := modfile.Parse("k8s.io/kubernetes@"+version+"/go.mod", k8sGoMod, nil)
	if err != nil {
		return "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/onsi/ginkgo/v2" {
			return strings.Replace(gomod, "\nrequire k8s.io/kubernetes "+version+"\n",
				"\nrequire (\n\tk8s.io/kubernetes "+version+"\n\tgithub.com/onsi/ginkgo/v2 "+r.Mod.Version+"\n)\n", 1), nil
		}
	}
	return "", fmt.Errorf("k8s.io/kubernetes %s does not require ginkgo v2", version)
}

// ConformanceImages are the references of the images Conformance runs at o.Version (those
// Build's TestImages adds, with agnhost, etcd and pause), as the suite names them.
func ConformanceImages(ctx context.Context, o Options) ([]string, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	b := &builder{opts: o}
	mi, err := b.downloadModule(ctx, "k8s.io/kubernetes", o.Version.String())
	if err != nil {
		return nil, err
	}
	imgs, err := conformanceManifest(mi.Dir)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, img := range imgs {
		refs = append(refs, img.Ref())
	}
	return refs, nil
}
