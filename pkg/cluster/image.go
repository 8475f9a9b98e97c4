package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"mkube/pkg/cache"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"

	"github.com/google/go-containerregistry/pkg/name"
)

// ImageLoad loads images into the profile's node: each argument is an image archive (docker save
// or OCI), or an image in the local engine (the profile's own for docker and podman, else Docker),
// or failing that one pulled into mkube's cache.
// Pods then run them with imagePullPolicy IfNotPresent (or Never) without any pull.
func (m *Manager) ImageLoad(ctx context.Context, profile string, args []string) error {
	return m.inMachine(ctx, profile, func(mc *Machine, r driver.Runner) error {
		// A container driver's own engine is where its user builds images (Podman's for podman);
		// a VM's user builds with Docker.
		var eng engineImages = hostDocker{}
		if e, ok := mc.Driver.(engineImages); ok {
			eng = e
		}
		for _, arg := range args {
			src, err := m.imageSource(ctx, ImageSources(mc.Profile), eng, arg)
			if err != nil {
				return err
			}
			// Every node gets it, as minikube does: a pod may land on any of them.
			err = m.eachRunningNode(ctx, mc.Profile, func(nodeName string, r driver.Runner) error {
				m.Out.Step(out.Docker, "Loading %s into %q ...", arg, nodeName)
				if err := node.ImportImages(ctx, r, src); err != nil {
					return reason.New(reason.ImageCache, err, "is it a docker save or OCI archive?")
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// engineImages is a local engine `image load` takes images from: a container driver's (the docker
// driver's Driver over Docker or Podman), else the host's Docker (hostDocker).
type engineImages interface {
	// ImageID is the image's ID, "" when the engine does not have it.
	ImageID(ctx context.Context, ref string) (string, error)
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	EngineCLI() string
}

// hostDocker is the host's Docker engine ($DOCKER_HOST or its default socket).
type hostDocker struct{}

// ImageID stands the reference in for the ID: `image load` only asks whether Docker has the image.
func (hostDocker) ImageID(ctx context.Context, ref string) (string, error) {
	err := cache.InDocker(ctx, ref)
	if errors.Is(err, cache.ErrNotInDocker) {
		return "", nil
	}
	return ref, err
}

func (hostDocker) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	return cache.FromDocker(ctx, ref)
}

func (hostDocker) EngineCLI() string { return "docker" }

// imageSource says where an `image load` argument's archive comes from.
func (m *Manager) imageSource(ctx context.Context, sources func(string) (name.Reference, error), eng engineImages, arg string) (func(io.Writer) error, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return func(w io.Writer) error {
			f, err := os.Open(arg)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		}, nil
	}
	if looksLikeFile(arg) {
		return nil, reason.Errorf(reason.Usage, "check the path; archives come from `docker save IMAGE -o FILE`", "image archive %s does not exist", arg)
	}
	canon, err := cache.CanonicalRef(arg)
	if err != nil {
		return nil, reason.Errorf(reason.Usage, "give an image reference or an image archive (docker save IMAGE -o FILE)",
			"%s is neither a file nor an image reference", arg)
	}
	id, derr := eng.ImageID(ctx, arg)
	if derr == nil && id != "" {
		return func(w io.Writer) error {
			rc, err := eng.SaveImage(ctx, arg)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			return err
		}, nil
	}
	// Not in the engine (or no engine): pull it into mkube's cache like `cache add` does.
	imgs, err := cache.OpenImages(ctx, m.Home.CacheDir("images"))
	if err != nil {
		return nil, err
	}
	if err := imgs.EnsureFrom(ctx, []string{canon}, sources, m.Out.Err()); err != nil {
		cli := eng.EngineCLI()
		why := "it is not in the local " + cli + " engine"
		if derr != nil {
			why = derr.Error()
		}
		return nil, reason.Errorf(reason.ImageCache, fmt.Sprintf("build or pull it with %s first, or pass an archive (%s save IMAGE -o FILE)", cli, cli),
			"image %s: %s, and pulling it failed: %v", arg, why, firstLine(err))
	}
	return func(w io.Writer) error { return imgs.WriteArchive(ctx, []string{canon}, w) }, nil
}

// looksLikeFile tells a path from an image reference: references never start with / or . and
// never end in .tar or .tar.gz.
func looksLikeFile(arg string) bool {
	return strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") || strings.HasSuffix(arg, ".tar") || strings.HasSuffix(arg, ".tar.gz")
}

func firstLine(err error) string {
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// ImageList lists the tagged images in the profile's node.
func (m *Manager) ImageList(ctx context.Context, profile string) (imgs []node.Image, err error) {
	err = m.inNode(ctx, profile, func(_ *config.Profile, r driver.Runner) error {
		imgs, err = node.ListImages(ctx, r)
		return err
	})
	return imgs, err
}

// ImageRemove removes images from the profile's node.
func (m *Manager) ImageRemove(ctx context.Context, profile string, refs []string) error {
	return m.inNode(ctx, profile, func(p *config.Profile, _ driver.Runner) error {
		// The primary must have them (a typo is an error); the other nodes may not.
		return m.eachRunningNode(ctx, p, func(nodeName string, r driver.Runner) error {
			return m.removeImages(ctx, profile, r, refs, nodeName == p.Name)
		})
	})
}

func (m *Manager) removeImages(ctx context.Context, profile string, r driver.Runner, refs []string, primary bool) error {
	have, err := node.ListImages(ctx, r)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		canon, err := cache.CanonicalRef(ref)
		if err != nil {
			return reason.New(reason.Usage, err, "")
		}
		if !slices.ContainsFunc(have, func(i node.Image) bool { return i.Ref == canon }) {
			if !primary {
				continue
			}
			return reason.Errorf(reason.Usage, "see `mkube image ls -p "+profile+"`", "image %s is not in %q", canon, profile)
		}
		if err := node.RemoveImage(ctx, r, canon); err != nil {
			return err
		}
		if primary {
			m.Out.Step(out.Fire, "Removed %s", canon)
		}
	}
	return nil
}
