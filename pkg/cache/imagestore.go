package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"mkube/pkg/atomicfile"
)

// Annotations on the OCI layout's index entries.
const (
	// AnnotationRefName carries the image's full canonical reference, as crane writes it.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationRecipe is a digest of everything the image was built from: equal means up to date.
	AnnotationRecipe = "dev.mkube.recipe"
)

// ImageStore is an OCI image layout on disk: the image cache's (under Images' lock) and a mirror's
// (pkg/mirror builds and serves one). It has no locking of its own.
type ImageStore struct{ path layout.Path }

// OpenImageStore opens the layout at dir, creating an empty one if there is none.
func OpenImageStore(dir string) (*ImageStore, error) {
	if p, err := layout.FromPath(dir); err == nil {
		return &ImageStore{path: p}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	return &ImageStore{path: p}, nil
}

// ImageEntry is one tagged image in the store.
type ImageEntry struct {
	Ref    string
	Recipe string
	Desc   v1.Descriptor
}

// Entries lists the tagged images in the store.
func (s *ImageStore) Entries() ([]ImageEntry, error) {
	idx, err := s.path.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []ImageEntry
	for _, d := range im.Manifests {
		if ref := d.Annotations[AnnotationRefName]; ref != "" {
			out = append(out, ImageEntry{Ref: ref, Recipe: d.Annotations[AnnotationRecipe], Desc: d})
		}
	}
	return out, nil
}

// Recipe returns the recipe digest the store holds for ref, or "" when it has no such image.
func (s *ImageStore) Recipe(ref string) (string, error) {
	es, err := s.Entries()
	if err != nil {
		return "", err
	}
	for _, e := range es {
		if e.Ref == ref {
			return e.Recipe, nil
		}
	}
	return "", nil
}

// Put stores img under ref, replacing whatever the ref pointed at before. The blobs land first and
// index.json last, replaced atomically: a crash at any point leaves the previous index, whose
// images are all complete (at worst some unreferenced blobs wait for the next GC).
func (s *ImageStore) Put(ref, recipe string, img v1.Image) error {
	// go-containerregistry keeps a config or manifest blob of any size that is already there; one
	// cut short by a crash would be kept forever. They are small: check them, drop damaged ones.
	cfg, err := img.ConfigName()
	if err != nil {
		return err
	}
	man, err := img.Digest()
	if err != nil {
		return err
	}
	for _, h := range []v1.Hash{cfg, man} {
		if err := s.dropDamagedBlob(h); err != nil {
			return err
		}
	}
	if err := s.path.WriteImage(img); err != nil {
		return err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return err
	}
	return s.index(ref, recipe, *desc)
}

// putManifest stores the image whose manifest is raw under ref, like Put, for an image whose
// config and layers are in the layout already (the image cache moves them there itself, verified:
// see Images.pull). The manifest blob lands first, index.json last.
func (s *ImageStore) putManifest(ref, recipe string, raw []byte, mt types.MediaType) error {
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := s.dropDamagedBlob(d); err != nil {
		return err
	}
	if err := s.path.WriteBlob(d, io.NopCloser(bytes.NewReader(raw))); err != nil {
		return err
	}
	return s.index(ref, recipe, v1.Descriptor{MediaType: mt, Size: size, Digest: d})
}

// index points ref at desc in index.json, replacing what ref pointed at before.
func (s *ImageStore) index(ref, recipe string, desc v1.Descriptor) error {
	desc.Annotations = map[string]string{AnnotationRefName: ref, AnnotationRecipe: recipe}
	return s.updateIndex(func(ms []v1.Descriptor) []v1.Descriptor {
		return append(withoutRef(ms, ref), desc)
	})
}

// blobPath is where the layout keeps the blob h.
func (s *ImageStore) blobPath(h v1.Hash) string {
	return filepath.Join(string(s.path), "blobs", h.Algorithm, h.Hex)
}

// hasBlob reports whether the layout holds desc's blob, as go-containerregistry decides it when
// it writes one (a file of the right size): blobs enter the layout only whole and verified, by a
// rename.
func (s *ImageStore) hasBlob(desc v1.Descriptor) bool {
	st, err := os.Stat(s.blobPath(desc.Digest))
	return err == nil && st.Mode().IsRegular() && st.Size() == desc.Size
}

func withoutRef(ms []v1.Descriptor, ref string) []v1.Descriptor {
	var out []v1.Descriptor
	for _, d := range ms {
		if d.Annotations[AnnotationRefName] != ref {
			out = append(out, d)
		}
	}
	return out
}

// dropDamagedBlob removes a blob whose content does not match its digest.
func (s *ImageStore) dropDamagedBlob(h v1.Hash) error {
	p := s.blobPath(h)
	got, err := FileSHA256(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil || got != h.Hex {
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return rerr
		}
	}
	return nil
}

// updateIndex rewrites index.json with change applied to its manifests, atomically: readers see
// the old index or the new one, never a part (go-containerregistry rewrites it in place).
func (s *ImageStore) updateIndex(change func([]v1.Descriptor) []v1.Descriptor) error {
	p := filepath.Join(string(s.path), "index.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	im.Manifests = change(im.Manifests)
	out, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(p, out, 0o644)
}

// Image returns the image stored under ref.
func (s *ImageStore) Image(ref string) (v1.Image, error) {
	es, err := s.Entries()
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if e.Ref == ref {
			return s.path.Image(e.Desc.Digest)
		}
	}
	return nil, fmt.Errorf("no image %s in %s", ref, s.path)
}

// GC deletes blobs that no tagged image references any more (left behind when an image is rebuilt).
func (s *ImageStore) GC() (removed int, err error) {
	es, err := s.Entries()
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, e := range es {
		img, err := s.path.Image(e.Desc.Digest)
		if err != nil {
			return 0, err
		}
		keep[e.Desc.Digest.Hex] = true
		cn, err := img.ConfigName()
		if err != nil {
			return 0, err
		}
		keep[cn.Hex] = true
		m, err := img.Manifest()
		if err != nil {
			return 0, err
		}
		for _, l := range m.Layers {
			keep[l.Digest.Hex] = true
		}
	}
	dir := filepath.Join(string(s.path), "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil // nothing was ever stored
	}
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// Remove drops the named images from the index and deletes blobs nothing references any more.
func (s *ImageStore) Remove(refs []string) error {
	err := s.updateIndex(func(ms []v1.Descriptor) []v1.Descriptor {
		for _, ref := range refs {
			ms = withoutRef(ms, ref)
		}
		return ms
	})
	if err != nil {
		return err
	}
	_, err = s.GC()
	return err
}

// RepoPath is where a mirror's registry serves a canonical reference: its repository path without
// the registry host, so registry.k8s.io/coredns/coredns:v1.12.1 is <mirror>/coredns/coredns:v1.12.1,
// which is what pointing --image-repository at the mirror expects.
func RepoPath(ref string) (repo, tag string, err error) {
	r, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	return r.RepositoryStr(), r.TagStr(), nil
}
