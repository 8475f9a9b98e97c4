package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
)

// ImageID is the local engine's ID of the image ref (the node image a container is created from),
// "" when it has none: the config's digest in Docker's own image store, the manifest's in the
// containerd image store.
func (d *Driver) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := d.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("asking %s for image %s: %w", d.eng.Title, ref, err)
	}
	return img.ID, nil
}

// LoadImage streams an image archive (what `docker load` reads) into the local engine; archive
// writes it. The engine tags the image with the names the archive carries.
func (d *Driver) LoadImage(ctx context.Context, archive func(io.Writer) error) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive(pw)) }()
	res, err := d.cli.ImageLoad(ctx, pr)
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("%s load: %w", d.eng.CLI, err)
	}
	defer res.Close()
	if err := JSONStreamError(res); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("%s load: %w", d.eng.CLI, err)
	}
	return nil
}

// JSONStreamError reads a Docker progress stream (load, import, pull) to its end and returns the
// error it reports, if any: the engine answers 200 and reports failures inside the stream.
func JSONStreamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// SaveImage streams an image of the local engine out as a `docker save` archive (which containerd
// imports as it is): `mkube image load` of an image the user built with this engine's CLI.
func (d *Driver) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := d.cli.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, fmt.Errorf("%s save %s: %w", d.eng.CLI, ref, err)
	}
	return rc, nil
}

// EngineCLI is the engine's command, for advice ("docker", "podman").
func (d *Driver) EngineCLI() string { return d.eng.CLI }
