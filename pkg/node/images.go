package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"mkube/pkg/driver"
	"mkube/pkg/k8sversion"
)

// Image is an image in the node's containerd.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	Size   string `json:"size"`
}

// ctr is containerd's client in the namespace the kubelet uses.
var ctr = []string{"ctr", "-n", "k8s.io"}

// ImportImages streams an image archive (docker save or OCI), as write produces it, into the
// node's containerd.
func ImportImages(ctx context.Context, r driver.Runner, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		werr <- err
	}()
	err := r.Run(ctx, driver.Cmd{Args: append(slices.Clone(ctr), "images", "import", "-"), Stdin: pr})
	pr.CloseWithError(io.ErrClosedPipe)
	// A broken archive ends ctr with a bare exit status: the writer's error says why.
	if w := <-werr; w != nil && !errors.Is(w, io.ErrClosedPipe) {
		return fmt.Errorf("loading images into containerd: %w", w)
	}
	if err != nil {
		return fmt.Errorf("loading images into containerd: %w", err)
	}
	return nil
}

// ImportOnce imports an archive unless the node already holds exactly it: its digest is
// recorded in the marker called name.
func ImportOnce(ctx context.Context, r driver.Runner, name, digest string, write func(io.Writer) error) error {
	if Marker(ctx, r, name) == digest {
		return nil
	}
	if err := ImportImages(ctx, r, write); err != nil {
		return err
	}
	return SetMarker(ctx, r, name, digest)
}

// ListImages lists the tagged images in the node's containerd, sorted.
func ListImages(ctx context.Context, r driver.Runner) ([]Image, error) {
	out, err := Output(ctx, r, append(slices.Clone(ctr), "images", "ls")...)
	if err != nil {
		return nil, err
	}
	return parseCtrImages(out), nil
}

// parseCtrImages reads `ctr images ls`: REF TYPE DIGEST SIZE(two words) PLATFORMS LABELS, keeping
// tagged references (containerd also lists each image by digest and by ID).
func parseCtrImages(s string) []Image {
	var out []Image
	for i, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 5 || strings.HasPrefix(f[0], "sha256:") || strings.Contains(f[0], "@") {
			continue
		}
		out = append(out, Image{Ref: f[0], Digest: f[2], Size: f[3] + " " + f[4]})
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// RemoveImage removes a tagged image from the node's containerd.
func RemoveImage(ctx context.Context, r driver.Runner, ref string) error {
	return r.Run(ctx, driver.Cmd{Args: append(slices.Clone(ctr), "images", "rm", "--sync", ref)})
}

// KubeadmImages asks the node's own kubeadm (installed in BinDir) which images Kubernetes v runs.
// It runs in the node, so a macOS or Windows host needs no Linux binary of its own.
func KubeadmImages(ctx context.Context, r driver.Runner, v k8sversion.Version) ([]string, error) {
	out, err := Output(ctx, r, BinDir+"/kubeadm", "config", "images", "list", "--kubernetes-version", v.String())
	if err != nil {
		return nil, fmt.Errorf("kubeadm config images list: %w", err)
	}
	return strings.Fields(out), nil // an empty list is refused where it is kept (start)
}
