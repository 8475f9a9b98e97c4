package cache

import (
	"context"
	"fmt"
	"io"
	"os"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

// ErrNotInDocker says the local Docker engine does not have an image.
var ErrNotInDocker = fmt.Errorf("not in the local Docker engine")

// InDocker reports whether the local Docker engine ($DOCKER_HOST or its default socket) has an
// image: nil if it has, ErrNotInDocker if it has not, another error if Docker does not answer.
func InDocker(ctx context.Context, ref string) error {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%s: %w", ref, ErrNotInDocker)
		}
		return fmt.Errorf("asking Docker for %s: %w", ref, err)
	}
	return nil
}

// FromDocker streams an image out of the local Docker engine as a `docker save` archive, which
// containerd imports as it is. Closing it closes the client too.
func FromDocker(ctx context.Context, ref string) (io.ReadCloser, error) {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	rc, err := cli.ImageSave(ctx, []string{ref})
	if err != nil {
		cli.Close()
		return nil, err
	}
	return closeBoth{rc, cli}, nil
}

type closeBoth struct {
	io.ReadCloser
	cli *client.Client
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	c.cli.Close()
	return err
}

// DockerFiles writes the root file system of the local Docker engine's image ref as a tar stream
// (see Images.WriteFiles). The engine hands an image out only as a `docker save` archive, whose
// parts come in no fixed order: it is kept in a temporary file under tmpDir while it is read.
func DockerFiles(ctx context.Context, ref, tmpDir string, w io.Writer) error {
	rc, err := FromDocker(ctx, ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "docker-save-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("docker save %s: %w", ref, err)
	}
	img, err := tarball.ImageFromPath(f.Name(), nil)
	if err != nil {
		return fmt.Errorf("reading docker save %s: %w", ref, err)
	}
	return extract(ctx, img, w)
}
