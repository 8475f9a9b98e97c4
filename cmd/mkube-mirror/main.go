// Command mkube-mirror builds an offline mirror of the Kubernetes artifacts mkube downloads, from
// source, and serves it on a loopback address the way dl.k8s.io and registry.k8s.io serve them.
package main

import (
	"context"
	"errors"
	"fmt"
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
	root.AddCommand(newBuild(), newServe(), newNodeImage(), newISO())
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
	buildFlags(cmd, &o.Work, &o.Debian, &o.Suite, "")
	return cmd
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
