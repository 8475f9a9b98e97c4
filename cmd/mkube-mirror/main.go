// Command mkube-mirror builds an offline mirror of the Kubernetes artifacts mkube downloads, from
// source, and serves it on a loopback address the way dl.k8s.io and registry.k8s.io serve them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"mkube/pkg/artifacts"
	"mkube/pkg/conformance"
	"mkube/pkg/driver/docker"
	"mkube/pkg/k8sversion"
	"mkube/pkg/mirror"
	"mkube/pkg/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkube-mirror: "+firstLine(err.Error()))
		if rest := restLines(err.Error()); rest != "" {
			fmt.Fprintln(os.Stderr, rest)
		}
		os.Exit(1)
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

func restLines(s string) string {
	if parts := strings.SplitN(s, "\n", 2); len(parts) == 2 {
		return parts[1]
	}
	return ""
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "mkube-mirror",
		Short:         "Build and serve an offline mirror of Kubernetes binaries and images",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBuild(), newServe(), newNodeImage(), newISO(), newRelease(), newPush(), newConformance())
	return root
}

func newBuild() *cobra.Command {
	var o artifacts.Options
	var version string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build every artifact a cluster start needs for one Kubernetes version, from source",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := k8sversion.Resolve(version)
			if err != nil {
				return err
			}
			o.Version = v
			o.Log = cmd.OutOrStdout()
			return artifacts.Build(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&version, "kubernetes-version", k8sversion.DefaultString, "Kubernetes version: vX.Y.Z, stable or latest")
	f.StringVar(&o.Mirror, "mirror", "out/mirror", "mirror directory to fill")
	f.StringVar(&o.Source, "source", ".", "the mkube source tree, for mkube's own components")
	f.BoolVar(&o.TestImages, "test-images", false, "also build the images Kubernetes' Conformance tests run (busybox, nginx, …), under their upstream names")
	buildFlags(cmd, &o.Work, &o.Debian, &o.Suite, " for base file systems")
	return cmd
}

// buildFlags are the flags every command that builds from Debian packages has: its build
// directory, and where debootstrap gets packages; forWhat ends the Debian flags' help.
func buildFlags(cmd *cobra.Command, work, mirror, suite *string, forWhat string) {
	f := cmd.Flags()
	f.StringVar(work, "work", "out/build", "build directory (kept between runs for incremental builds)")
	f.StringVar(mirror, "debian-mirror", "", "Debian package mirror"+forWhat+" (default: this host's apt source)")
	f.StringVar(suite, "debian-suite", "", "Debian suite"+forWhat+" (default: this host's)")
}

func newConformance() *cobra.Command {
	var o conformance.Options
	var build artifacts.Options
	var version string
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run Kubernetes' Conformance suite against a cluster, offline: e2e.test and its images built from source",
		Long: `Builds e2e.test and ginkgo at the cluster's version (about 20 minutes the first time), starts the
profile unless it runs (with --nodes), loads the test images the mirror built (make e2e-images),
lets the nodes pull registry.k8s.io from the mirror, and runs the Conformance specs; JUnit, the
log and summary.txt go to --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := k8sversion.Resolve(version)
			if err != nil {
				return err
			}
			build.Version, build.Log, build.Mirror = v, cmd.OutOrStdout(), o.Mirror
			e, err := artifacts.BuildE2E(cmd.Context(), build)
			if err != nil {
				return err
			}
			if o.Images, err = artifacts.ConformanceImages(cmd.Context(), build); err != nil {
				return err
			}
			o.Version, o.Log = v, cmd.OutOrStdout()
			o.E2E = conformance.E2E(e)
			return conformance.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&version, "kubernetes-version", k8sversion.DefaultString, "Kubernetes version of the cluster and the suite")
	f.StringVarP(&o.Profile, "profile", "p", "conformance", "the mkube profile to test (started when it is not running)")
	f.IntVar(&o.Nodes, "nodes", 2, "nodes of a cluster the runner starts (Conformance needs two that take workloads)")
	f.StringVar(&o.Driver, "driver", "", "driver of a cluster the runner starts (default: mkube's choice)")
	f.StringVar(&o.Focus, "focus", `\[Conformance\]`, "ginkgo --focus: the specs to run")
	f.StringVar(&o.Skip, "skip", "", "ginkgo --skip")
	f.IntVar(&o.Parallel, "parallel", 4, "ginkgo processes (Serial specs run on their own at the end)")
	f.StringVar(&o.Mkube, "mkube", "out/mkube", "the mkube binary")
	f.StringVar(&o.Mirror, "mirror", "out/mirror", "the mirror directory")
	f.StringVar(&o.Out, "out", "out/conformance", "where the JUnit report, e2e.log and summary.txt go")
	f.StringVar(&build.Work, "work", "out/build", "build directory")
	return cmd
}

func newNodeImage() *cobra.Command {
	var o artifacts.NodeOptions
	cmd := &cobra.Command{
		Use:   "node-image",
		Short: "Build the docker driver's node image into the local Docker engine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = cmd.OutOrStdout()
			return artifacts.BuildNodeImage(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Tag, "tag", docker.DefaultImage(), "image name to build")
	buildFlags(cmd, &o.Work, &o.Debian, &o.Suite, "")
	return cmd
}

func newISO() *cobra.Command {
	var o artifacts.ISOOptions
	cmd := &cobra.Command{
		Use:   "iso",
		Short: "Build the bootable VM image (kernel, initramfs, node root file system) that VM drivers boot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = cmd.OutOrStdout()
			return artifacts.BuildISO(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Out, "out", "out/"+release.ISOName(), "the ISO file to write")
	cmd.Flags().StringVar(&o.Flavor, "flavor", artifacts.FlavorNode, "node (what VM drivers boot) or host (a cgroup v2 workstation with Docker and Podman, for make test-cgroupv2)")
	buildFlags(cmd, &o.Work, &o.Debian, &o.Suite, "")
	return cmd
}

func newRelease() *cobra.Command {
	var o artifacts.ReleaseOptions
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Build mkube's own artifacts (node image, addon images, ISO), push them to a registry, and cross-build mkube stamped with them",
		Long: `Build a release of mkube from a committed source tree: the node image, the storage-provisioner
and dashboard images and the ISO are pushed to REGISTRY/{node,storage-provisioner,dashboard,iso}:VERSION
(no Docker engine needed), then mkube is built for every platform into --out, stamped with the
version, commit, registry and the artifacts' digests, with SHA256SUMS and release.json beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = cmd.OutOrStdout()
			return artifacts.Release(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Version, "version", "", "the release's version, which tags its artifacts (e.g. v0.2.0)")
	f.StringVar(&o.Registry, "registry", "", "HOST[:PORT]/PATH to push the release's artifacts to (loopback or http://... is plain HTTP)")
	f.StringVar(&o.Out, "out", "out/release", "directory for the mkube binaries, SHA256SUMS, release.json and the ISO")
	f.StringVar(&o.Source, "source", ".", "the mkube source tree (must be committed)")
	f.BoolVar(&o.AllowDirty, "allow-dirty", false, "release a source tree with uncommitted changes (for a local try)")
	buildFlags(cmd, &o.Work, &o.Debian, &o.Suite, "")
	cmd.MarkFlagRequired("version")
	cmd.MarkFlagRequired("registry")
	return cmd
}

func newPush() *cobra.Command {
	var from, to, version string
	cmd := &cobra.Command{
		Use:   "push",
		Short: "Copy an offline mirror or an mkube cache directory into a registry",
		Long: `Copy a mirror directory (make artifacts) or an mkube cache directory ($MKUBE_HOME/cache) into a
registry under REGISTRY: every image at its path (registry.k8s.io/pause:3.10 → REGISTRY/pause:3.10, same
digest), the Kubernetes binaries as REGISTRY/kubernetes-binaries:VERSION-linux-amd64, and a cache's ISOs as
REGISTRY/iso:VERSION. What the registry already has is not sent again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return push(cmd.Context(), cmd.OutOrStdout(), from, to, version)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the mirror or cache directory to copy")
	f.StringVar(&to, "to", "", "HOST[:PORT]/PATH to push to (loopback or http://... is plain HTTP)")
	f.StringVar(&version, "kubernetes-version", "", "push only this Kubernetes version's binaries: vX.Y.Z, stable or latest (default: every version found)")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

func push(ctx context.Context, w io.Writer, from, to, version string) error {
	if version != "" {
		v, err := k8sversion.Resolve(version)
		if err != nil {
			return err
		}
		version = v.String()
	}
	src, err := mirror.InspectDir(from)
	if err != nil {
		return err
	}
	p, err := mirror.NewPusher(to, w)
	if err != nil {
		return err
	}
	return p.Dir(ctx, src, version)
}

func newServe() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a mirror: binaries over HTTP in dl.k8s.io's layout, images over the OCI distribution API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "out/mirror", "mirror directory")
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:5080", "address to listen on")
	cmd.Flags().BoolVar(&o.logRequests, "log-requests", false, "log every registry request on stderr")
	cmd.Flags().BoolVar(&o.allowPush, "allow-push", false, "accept image pushes (the mirror is read-only without it)")
	cmd.Flags().StringArrayVar(&o.allowHosts, "allow-host", nil,
		"a host name the mirror is reached by besides loopback names and the listen address (repeatable); requests naming any other host are refused")
	return cmd
}

type serveOptions struct {
	dir, addr   string
	logRequests bool
	allowPush   bool
	allowHosts  []string
}

func serve(ctx context.Context, o serveOptions) error {
	if _, err := os.Stat(o.dir); err != nil {
		return fmt.Errorf("no mirror at %s: build one with `make artifacts`", o.dir)
	}
	var logger *log.Logger
	if o.logRequests {
		logger = log.New(os.Stderr, "registry: ", log.LstdFlags)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (set MIRROR_ADDR=host:port to use another address)", o.addr, err)
	}
	host := ln.Addr().String()
	opts := []mirror.ServerOption{mirror.AllowHosts(o.allowHosts...), mirror.AllowHosts(listenHosts(o.addr, host)...)}
	if o.allowPush {
		opts = append(opts, mirror.AllowPush())
	}
	h, err := mirror.NewServer(mirror.Layout{Root: o.dir}, logger, opts...)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Printf("Serving %s\n  binaries: --binary-mirror=http://%s/release\n  images:   --image-repository=%s\nPress Ctrl-C to stop.\n", o.dir, host, host)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenHosts are the Host header values the listen address itself stands for: the configured
// one and the one bound. A wildcard (0.0.0.0, ::) is no name a client should use, and browsers
// have reached loopback services through 0.0.0.0, so it is left out.
func listenHosts(addrs ...string) []string {
	var hosts []string
	for _, a := range addrs {
		h, _, err := net.SplitHostPort(a)
		if err != nil || h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			continue
		}
		hosts = append(hosts, h)
	}
	return hosts
}
