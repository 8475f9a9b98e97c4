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
	"mkube/pkg/isoimage"
	"mkube/pkg/k8sversion"
	"mkube/pkg/mirror"
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
	f.StringVar(&o.Work, "work", "out/build", "build directory (kept between runs for incremental builds)")
	f.StringVar(&o.Source, "source", ".", "the mkube source tree, for mkube's own components")
	f.StringVar(&o.Debian, "debian-mirror", "", "Debian package mirror for base file systems (default: this host's apt source)")
	f.StringVar(&o.Suite, "debian-suite", "", "Debian suite for base file systems (default: this host's)")
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
	f := cmd.Flags()
	f.StringVar(&o.Tag, "tag", artifacts.NodeImage, "image name to build")
	f.StringVar(&o.Work, "work", "out/build", "build directory (kept between runs for incremental builds)")
	f.StringVar(&o.Debian, "debian-mirror", "", "Debian package mirror (default: this host's apt source)")
	f.StringVar(&o.Suite, "debian-suite", "", "Debian suite (default: this host's)")
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
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "out/"+isoimage.Name(), "the ISO file to write")
	f.StringVar(&o.Work, "work", "out/build", "build directory (kept between runs for incremental builds)")
	f.StringVar(&o.Debian, "debian-mirror", "", "Debian package mirror (default: this host's apt source)")
	f.StringVar(&o.Suite, "debian-suite", "", "Debian suite (default: this host's)")
	return cmd
}

func newServe() *cobra.Command {
	var dir, addr string
	var logRequests bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a mirror: binaries over HTTP in dl.k8s.io's layout, images over the OCI distribution API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), dir, addr, logRequests)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "out/mirror", "mirror directory")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:5080", "address to listen on")
	cmd.Flags().BoolVar(&logRequests, "log-requests", false, "log every registry request on stderr")
	return cmd
}

func serve(ctx context.Context, dir, addr string, logRequests bool) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no mirror at %s: build one with `make artifacts`", dir)
	}
	var logger *log.Logger
	if logRequests {
		logger = log.New(os.Stderr, "registry: ", log.LstdFlags)
	}
	h, err := mirror.NewServer(mirror.Layout{Root: dir}, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (set MIRROR_ADDR=host:port to use another address)", addr, err)
	}
	host := ln.Addr().String()
	fmt.Printf("Serving %s\n  binaries: --binary-mirror=http://%s/release\n  images:   --image-repository=%s\nPress Ctrl-C to stop.\n", dir, host, host)
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
