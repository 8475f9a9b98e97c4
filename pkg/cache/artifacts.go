package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"mkube/pkg/release"
	"mkube/pkg/safepath"
)

// PullISO makes sure dir holds the ISO of the artifact at ref (see pkg/release: an OCI artifact of
// type release.ISOArtifactType with one layer, titled with the ISO's file name) and returns its
// path, dir/TITLE, a cache entry like ISO's. A cached copy with the layer's digest is used as is;
// a half download is resumed. When the registry cannot be reached at all, a verified
// dir/release.ISOName() is used instead (a start that is offline), as ISO does for URLs; an answer
// from the registry (not found, unauthorized, not an ISO) is an error.
func PullISO(ctx context.Context, ref name.Reference, dir string, progress io.Writer) (string, error) {
	src, m, err := fetchArtifact(ctx, ref, release.ISOArtifactType)
	if Unreachable(ctx, err) {
		if p, perr := safepath.Join(dir, release.ISOName()); perr == nil {
			if _, ok := Verified(p); ok {
				return p, nil // offline: the verified copy will do
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("pulling the ISO %s: %w", ref, err)
	}
	layer, dst, err := isoLayer(m, dir)
	if err != nil {
		return "", fmt.Errorf("the ISO artifact %s: %w", ref, err)
	}
	if err := checkDigest(layer); err != nil {
		return "", fmt.Errorf("the ISO artifact %s: %w", ref, err)
	}
	if d, ok := Verified(dst); ok && d == layer.Digest.Hex {
		return dst, nil
	}
	if err := src.toFile(ctx, layer, dst, 0o644, progress, layer.Annotations[release.TitleAnnotation]); err != nil {
		return "", fmt.Errorf("pulling the ISO %s: %w", ref, err)
	}
	return dst, nil
}

// isoLayer is the ISO artifact's one layer and where it goes under dir: its title must be a plain
// file name ending in .iso, since it becomes a name in the cache.
func isoLayer(m *v1.Manifest, dir string) (v1.Descriptor, string, error) {
	layers := layersOf(m, release.ISOLayerType)
	if len(layers) != 1 {
		return v1.Descriptor{}, "", fmt.Errorf("it has %d layers of type %s, not one", len(layers), release.ISOLayerType)
	}
	title := layers[0].Annotations[release.TitleAnnotation]
	if !strings.HasSuffix(title, ".iso") {
		return v1.Descriptor{}, "", fmt.Errorf("its layer's title %q is not the name of an .iso file", title)
	}
	dst, err := safepath.Join(dir, title)
	if err != nil {
		return v1.Descriptor{}, "", fmt.Errorf("its layer's title %q is not a usable file name: %w", title, err)
	}
	return layers[0], dst, nil
}

// PullBinaries makes sure dir holds each of names (kubeadm, kubelet, kubectl) from the binaries
// artifact at ref (type release.BinariesArtifactType, one layer titled NAME per binary), as
// executable cache entries dir/NAME. An artifact that lacks one of names is refused before
// anything is downloaded; a name already cached with its layer's digest is not downloaded again.
//
// When every name is already a verified entry, it returns at once without asking the registry:
// the digests to compare with are only in the manifest, and a start must work offline with a
// filled cache. A binary is thus not replaced by another build published under the same tag
// (Kubernetes releases are not republished; a mirror's copy is the same build).
func PullBinaries(ctx context.Context, ref name.Reference, dir string, names []string, progress io.Writer) error {
	if allVerified(dir, names) {
		return nil
	}
	src, m, err := fetchArtifact(ctx, ref, release.BinariesArtifactType)
	if err != nil {
		return fmt.Errorf("pulling the Kubernetes binaries %s: %w", ref, err)
	}
	titled := map[string]v1.Descriptor{}
	for _, l := range layersOf(m, release.BinaryLayerType) {
		titled[l.Annotations[release.TitleAnnotation]] = l
	}
	dsts := map[string]string{}
	for _, n := range names {
		l, ok := titled[n]
		if !ok {
			return fmt.Errorf("the binaries artifact %s has no %s", ref, n)
		}
		if err := checkDigest(l); err != nil {
			return fmt.Errorf("the binaries artifact %s: %s: %w", ref, n, err)
		}
		if dsts[n], err = safepath.Join(dir, n); err != nil {
			return err
		}
	}
	for _, n := range names {
		l, dst := titled[n], dsts[n]
		if d, ok := Verified(dst); ok && d == l.Digest.Hex {
			continue
		}
		if err := src.toFile(ctx, l, dst, 0o755, progress, n); err != nil {
			return fmt.Errorf("pulling %s of %s: %w", n, ref, err)
		}
	}
	return nil
}

// allVerified reports whether dir/NAME is an entry for each of names. The record only: hashing
// 210 MB of binaries on every start would cost seconds, and the record is written only after the
// content was verified (Commit).
func allVerified(dir string, names []string) bool {
	for _, n := range names {
		p, err := safepath.Join(dir, n)
		if err != nil {
			return false
		}
		if _, ok := Recorded(p); !ok {
			return false
		}
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// fetchArtifact gets the manifest at ref (a digest reference is checked against it by
// go-containerregistry) and checks that it is an artifact of type artifactType: its artifactType,
// or its config's media type for registries and tools older than OCI 1.1's artifactType field.
func fetchArtifact(ctx context.Context, ref name.Reference, artifactType string) (*blobSource, *v1.Manifest, error) {
	src, err := newBlobSource(ctx, ref.Context())
	if err != nil {
		return nil, nil, err
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(src.rt))
	if err != nil {
		return nil, nil, err
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		return nil, nil, fmt.Errorf("it is a %s, not an OCI artifact of type %s", desc.MediaType, artifactType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, nil, err
	}
	if m.ArtifactType != artifactType && string(m.Config.MediaType) != artifactType {
		got := m.ArtifactType
		if got == "" {
			got = string(m.Config.MediaType)
		}
		return nil, nil, fmt.Errorf("it is an artifact of type %s, not %s", got, artifactType)
	}
	return src, m, nil
}

// layersOf is m's layers of media type mt.
func layersOf(m *v1.Manifest, mt string) []v1.Descriptor {
	var out []v1.Descriptor
	for _, l := range m.Layers {
		if string(l.MediaType) == mt {
			out = append(out, l)
		}
	}
	return out
}
