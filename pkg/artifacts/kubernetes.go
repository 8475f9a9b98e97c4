package artifacts

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mkube/pkg/k8sversion"
)

// kubeCommands are the main packages of k8s.io/kubernetes a cluster needs, plus agnhost, the
// standard e2e test image's binary (it also gives users an app to deploy offline).
var kubeCommands = []string{
	"cmd/kubeadm", "cmd/kubelet", "cmd/kubectl",
	"cmd/kube-apiserver", "cmd/kube-controller-manager", "cmd/kube-scheduler", "cmd/kube-proxy",
	"test/images/agnhost",
}

type kubeBuild struct {
	dir            string // build directory; binaries in dir/bin
	modDir         string // the k8s.io/kubernetes module source
	agnhostVersion string
}

func (k kubeBuild) bin(name string) string { return filepath.Join(k.dir, "bin", name) }

// kubernetes builds the Kubernetes binaries of the requested version from k8s.io/kubernetes.
func (b *builder) kubernetes(ctx context.Context) (kubeBuild, error) {
	v := b.opts.Version
	dir := filepath.Join(b.opts.Work, "kubernetes-"+v.String())
	// Staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.MINOR.PATCH.
	staging := func(string) string { return fmt.Sprintf("v0.%d.%d", v.Minor, v.Patch) }
	mi, err := b.prepareWrapper(ctx, dir, "k8s.io/kubernetes", v.String(), staging)
	if err != nil {
		if isUnknownRevision(err) {
			return kubeBuild{}, fmt.Errorf("Kubernetes %s was never released (there is no k8s.io/kubernetes@%s); supported: %s",
				v, v, k8sversion.SupportedRange())
		}
		return kubeBuild{}, fmt.Errorf("fetching k8s.io/kubernetes@%s: %w", v, err)
	}
	kb := kubeBuild{dir: dir, modDir: mi.Dir}
	raw, err := os.ReadFile(filepath.Join(mi.Dir, "test/images/agnhost/VERSION"))
	if err != nil {
		return kb, fmt.Errorf("agnhost version: %w", err)
	}
	kb.agnhostVersion = strings.TrimSpace(string(raw))

	gov, err := b.goVersion(ctx)
	if err != nil {
		return kb, err
	}
	ldflags := kubeLdflags(v.String(), v.Major, v.Minor)
	key := recipeKey("kubernetes", v.String(), gov, ldflags, strings.Join(kubeCommands, ","))
	var outs []string
	for _, c := range kubeCommands {
		outs = append(outs, kb.bin(filepath.Base(c)))
	}
	if fresh(dir, key, outs...) {
		b.logf("Kubernetes %s binaries are up to date", v)
		return kb, nil
	}
	b.logf("building Kubernetes %s from source (about 7 minutes on 2 cores with a cold Go cache)", v)
	args := []string{"build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(dir, "bin") + "/"}
	for _, c := range kubeCommands {
		args = append(args, "k8s.io/kubernetes/"+c)
	}
	if err := b.run(ctx, dir, goEnv, "go", args...); err != nil {
		return kb, err
	}
	return kb, markFresh(dir, key)
}

// kubeLdflags stamps the version the way Kubernetes' own release build does (hack/lib/version.sh),
// so `kubeadm version` and the API server's /version report it.
func kubeLdflags(version string, major, minor int) string {
	var parts []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		parts = append(parts,
			"-X "+pkg+".gitVersion="+version,
			fmt.Sprintf("-X %s.gitMajor=%d", pkg, major),
			fmt.Sprintf("-X %s.gitMinor=%d", pkg, minor),
			"-X "+pkg+".gitTreeState=clean",
			"-X "+pkg+".buildDate=1970-01-01T00:00:00Z",
		)
	}
	return "-s -w " + strings.Join(parts, " ")
}

func isUnknownRevision(err error) bool {
	s := err.Error()
	for _, m := range []string{"unknown revision", "invalid version", "404 Not Found", "not found", "not available"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// kubeadmImages asks the built kubeadm which images this version's control plane runs.
func (b *builder) kubeadmImages(ctx context.Context, kubeadm string) ([]string, error) {
	out, err := b.output(ctx, b.opts.Work, nil, kubeadm, "config", "images", "list", "--kubernetes-version", b.opts.Version.String())
	if err != nil {
		return nil, err
	}
	var refs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			refs = append(refs, l)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("kubeadm %s listed no images", b.opts.Version)
	}
	return refs, nil
}
