// Package artifacts builds, from source, everything a cluster start downloads for one Kubernetes
// version, and lays it out as a mirror (see package mirror): Kubernetes is built from the
// k8s.io/kubernetes module, the other components from their own modules, base file systems from
// Debian's packages, and images are assembled with go-containerregistry — no Docker needed.
package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"mkube/pkg/cache"
	"mkube/pkg/k8sversion"
	"mkube/pkg/mirror"
)

// recipeVersion is part of every recipe key: bump it when a recipe changes in a way its inputs don't show.
const recipeVersion = "1"

// Options say what to build and where.
type Options struct {
	Version k8sversion.Version
	Mirror  string // the mirror directory to fill (out/mirror)
	Work    string // build directory: wrapper modules, binaries, root file systems (out/build)
	Source  string // this repository, for mkube's own components
	// Debian is where debootstrap gets packages; empty means the first Debian mirror in this host's apt sources.
	Debian string
	Suite  string // Debian suite for base file systems; empty means this host's
	// TestImages adds the images Kubernetes' Conformance tests run (busybox, nginx, …; see
	// testImages), under their upstream names and tags.
	TestImages bool
	Log        io.Writer
}

type builder struct {
	opts   Options
	layout mirror.Layout
}

// Build fills the mirror for one Kubernetes version. It is incremental: each piece carries a recipe
// key, and a piece whose key is unchanged is not rebuilt. Bad input fails before the mirror is touched.
func Build(ctx context.Context, o Options) error {
	if err := k8sversion.CheckSupported(o.Version); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, d := range []*string{&o.Mirror, &o.Work, &o.Source} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return err
		}
		*d = abs
	}
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return err
	}
	b := &builder{opts: o, layout: mirror.Layout{Root: o.Mirror}}
	start := time.Now()

	k8s, err := b.kubernetes(ctx)
	if err != nil {
		return err
	}
	wanted, err := b.kubeadmImages(ctx, k8s.bin("kubeadm"))
	if err != nil {
		return err
	}

	// Debian base file systems download and unpack while Go builds use the CPUs.
	var bases map[string]string
	var comps components
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		bases, err = b.rootfsAll(gctx)
		return err
	})
	g.Go(func() error {
		var err error
		comps, err = b.components(gctx, wanted)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}

	for _, name := range []string{"kubeadm", "kubelet", "kubectl"} {
		if err := b.publishBinary(k8s.bin(name), name); err != nil {
			return err
		}
	}
	var extra []imageRecipe
	if o.TestImages {
		if extra, err = b.testImages(ctx, k8s, comps); err != nil {
			return fmt.Errorf("test images: %w", err)
		}
	}
	if err := b.images(ctx, k8s, wanted, comps, bases, extra); err != nil {
		return err
	}
	b.logf("mirror for Kubernetes %s is ready in %s (%s)", o.Version, o.Mirror, time.Since(start).Round(time.Second))
	return nil
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.opts.Log, "==> "+format+"\n", args...)
}

// publishBinary copies a built binary into the release layout unless an identical one is there.
func (b *builder) publishBinary(src, name string) error {
	v := b.opts.Version.String()
	if b.layout.VerifyBinary(v, "linux", "amd64", name) == nil {
		want, err1 := cache.FileSHA256(src)
		have, err2 := cache.FileSHA256(b.layout.BinaryPath(v, "linux", "amd64", name))
		if err1 == nil && err2 == nil && want == have {
			return nil
		}
	}
	return b.layout.PublishBinary(src, v, "linux", "amd64", name)
}

// run runs a command, keeping its output for the error message if it fails.
func (b *builder) run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	_, err := b.output(ctx, dir, env, name, args...)
	return err
}

// runOutput runs a host program and returns its stdout.
func runOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

func (b *builder) output(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return stdout.Bytes(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// recipeKey digests the inputs of one build step.
func recipeKey(parts ...string) string {
	h := sha256.New()
	h.Write([]byte(recipeVersion))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// fresh reports whether dir was last built with key and still has all its outputs.
func fresh(dir, key string, outputs ...string) bool {
	have, err := os.ReadFile(filepath.Join(dir, ".recipe"))
	if err != nil || strings.TrimSpace(string(have)) != key {
		return false
	}
	for _, o := range outputs {
		if _, err := os.Stat(o); err != nil {
			return false
		}
	}
	return true
}

func markFresh(dir, key string) error {
	return os.WriteFile(filepath.Join(dir, ".recipe"), []byte(key+"\n"), 0o644)
}

// goVersion names the Go toolchain, part of every Go build's recipe key.
func (b *builder) goVersion(ctx context.Context) (string, error) {
	out, err := b.output(ctx, b.opts.Work, nil, "go", "env", "GOVERSION")
	return strings.TrimSpace(string(out)), err
}

// goEnv is the environment for builds of upstream components: static binaries, the local toolchain.
var goEnv = []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod"}
