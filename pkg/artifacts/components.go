package artifacts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"mkube/pkg/addons"
	"mkube/pkg/cache"
	"mkube/pkg/netpol"
)

// components are the binaries built outside k8s.io/kubernetes, by image name.
type components struct {
	etcd, coredns, pause, provisioner string // binary paths
	etcdRef, corednsRef, pauseRef     string // the references kubeadm asked for
	dashboard                         string
	metricsServer, registry, traefik  string // addon binaries
	kubeRouter                        string // NetworkPolicy enforcement (pkg/netpol)
}

// imageTag splits what kubeadm lists into repository and tag.
func imageTag(ref string) (repo, tag string, err error) {
	return cache.RepoPath(ref)
}

// components builds etcd, CoreDNS and pause at the versions kubeadm asked for, and mkube's own
// storage provisioner from this repository.
func (b *builder) components(ctx context.Context, wanted []string) (components, error) {
	var c components
	for _, ref := range wanted {
		repo, tag, err := imageTag(ref)
		if err != nil {
			return c, err
		}
		switch repo {
		case "etcd":
			// etcd's images are tagged 3.6.5-0: the suffix counts image rebuilds of one release.
			ver := "v" + strings.SplitN(tag, "-", 2)[0]
			if c.etcd, err = b.goModuleBinary(ctx, "etcd", "go.etcd.io/etcd/server/v3", ver, "go.etcd.io/etcd/server/v3", ""); err != nil {
				return c, err
			}
			c.etcdRef = ref
		case "coredns/coredns":
			if c.coredns, err = b.goModuleBinary(ctx, "coredns", "github.com/coredns/coredns", tag, "github.com/coredns/coredns", ""); err != nil {
				return c, err
			}
			c.corednsRef = ref
		case "pause":
			if c.pause, err = b.pauseBinary(ctx, tag); err != nil {
				return c, err
			}
			c.pauseRef = ref
		case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy":
			// built with Kubernetes itself
		default:
			return c, fmt.Errorf("kubeadm %s wants image %s, and the mirror has no recipe for it", b.opts.Version, ref)
		}
	}
	if c.etcd == "" || c.coredns == "" || c.pause == "" {
		return c, fmt.Errorf("kubeadm %s did not list etcd, coredns and pause images: %v", b.opts.Version, wanted)
	}
	var err error
	if c.provisioner, err = b.ownBinary(ctx, "storage-provisioner"); err != nil {
		return c, err
	}
	if c.dashboard, err = b.ownBinary(ctx, "dashboard"); err != nil {
		return c, err
	}
	return c, b.addonBinaries(ctx, &c)
}

// addonBinaries builds the upstream programs addons (and netpol) run, at the versions their images
// are tagged with.
func (b *builder) addonBinaries(ctx context.Context, c *components) error {
	builds := []struct {
		out            *string
		name, image    string
		module, prefix string // the module, and the tag prefix its versions lack
		pkg            string
		ldflags        func(version string) string // what upstream's release build stamps in, if anything
	}{
		{&c.metricsServer, "metrics-server", addons.MetricsServerImage, "sigs.k8s.io/metrics-server", "", "sigs.k8s.io/metrics-server/cmd/metrics-server", nil},
		{&c.registry, "registry", addons.RegistryImage, "github.com/distribution/distribution/v3", "v", "github.com/distribution/distribution/v3/cmd/registry", nil},
		{&c.traefik, "traefik", addons.TraefikImage, "github.com/traefik/traefik/v3", "", "github.com/traefik/traefik/v3/cmd/traefik", nil},
		{&c.kubeRouter, "kube-router", netpol.Image, "github.com/cloudnativelabs/kube-router/v2", "", "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router", kubeRouterLdflags},
	}
	for _, x := range builds {
		_, tag, err := imageTag(x.image)
		if err != nil {
			return err
		}
		var ldflags string
		if x.ldflags != nil {
			ldflags = x.ldflags(x.prefix + tag)
		}
		if *x.out, err = b.goModuleBinary(ctx, x.name, x.module, x.prefix+tag, x.pkg, ldflags); err != nil {
			return err
		}
	}
	return nil
}

// kubeRouterLdflags stamps the version as kube-router's Makefile does (its GIT_COMMIT is the tag on
// a release), so `kube-router --version` reports it; the build date is fixed, as for Kubernetes.
func kubeRouterLdflags(version string) string {
	const pkg = "github.com/cloudnativelabs/kube-router/v2/pkg/version"
	return "-X " + pkg + ".Version=" + version + " -X " + pkg + ".BuildDate=1970-01-01T00:00:00Z"
}

// goModuleBinary builds one main package of a module at a version, through a wrapper module, with
// ldflags added to "-s -w".
func (b *builder) goModuleBinary(ctx context.Context, name, module, version, pkg, ldflags string) (string, error) {
	dir, err := b.goModule(ctx, name, module, version, ldflags, map[string]string{name: pkg})
	return filepath.Join(dir, name), err
}

// goModule builds main packages of module@version into a bin directory it returns, with ldflags
// added to "-s -w"; bins maps each binary's name to its package.
func (b *builder) goModule(ctx context.Context, name, module, version, ldflags string, bins map[string]string) (string, error) {
	dir := filepath.Join(b.opts.Work, name+"-"+version)
	binDir := filepath.Join(dir, "bin")
	gov, err := b.goVersion(ctx)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(bins))
	for n := range bins {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := []string{name, module, version, gov}
	if ldflags != "" {
		parts = append(parts, "ldflags", ldflags) // only when set: the other recipes keep their keys
	}
	var outs []string
	for _, n := range names {
		parts = append(parts, n, bins[n])
		outs = append(outs, filepath.Join(binDir, n))
	}
	key := recipeKey(parts...)
	if fresh(dir, key, outs...) {
		return binDir, nil
	}
	b.logf("building %s %s from source", name, version)
	if _, err := b.prepareWrapper(ctx, dir, module, version, func(string) string { return version }); err != nil {
		return "", fmt.Errorf("%s %s: %w", name, version, err)
	}
	for _, n := range names {
		if err := b.run(ctx, dir, goEnv, "go", "build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w "+ldflags), "-o", filepath.Join(binDir, n), bins[n]); err != nil {
			return "", err
		}
	}
	return binDir, markFresh(dir, key)
}

// pauseBinary compiles the pause container's program from the C source shipped in k8s.io/kubernetes,
// statically, as the upstream image does.
func (b *builder) pauseBinary(ctx context.Context, tag string) (string, error) {
	mi, err := b.downloadModule(ctx, "k8s.io/kubernetes", b.opts.Version.String())
	if err != nil {
		return "", err
	}
	src := filepath.Join(mi.Dir, "build/pause/linux/pause.c")
	code, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.opts.Work, "pause-"+tag)
	out := filepath.Join(dir, "pause")
	key := recipeKey("pause", tag, string(code))
	if fresh(dir, key, out) {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b.logf("building pause %s from source", tag)
	if err := b.run(ctx, dir, nil, "gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION="+tag, "-o", out, src); err != nil {
		return "", err
	}
	return out, markFresh(dir, key)
}

// ownBinary builds one of mkube's own programs (cmd/NAME of this repository). Go's build cache
// makes an unchanged rebuild take a second or two, so it is always built and its image keyed by its
// content.
func (b *builder) ownBinary(ctx context.Context, name string) (string, error) {
	out := filepath.Join(b.opts.Work, "mkube", name)
	env := []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local"}
	err := b.run(ctx, b.opts.Source, env, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/"+name)
	return out, err
}
