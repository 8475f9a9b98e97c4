package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"mkube/pkg/cache"
)

// NewServer serves a mirror: /release/... as plain files in dl.k8s.io's layout, and /v2/... as an OCI
// distribution registry whose blobs are read straight from the image layout on disk. It is
// read-only unless AllowPush is given, and answers only requests whose Host is a loopback name or
// address or one given with AllowHosts.
func NewServer(l Layout, logger *log.Logger, opts ...ServerOption) (http.Handler, error) {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	blobs := filepath.Join(l.ImagesDir(), "blobs")
	reg := registry.New(registry.WithBlobHandler(layoutBlobs{dir: blobs}), registry.Logger(logger))
	store, err := cache.OpenImageStore(l.ImagesDir())
	if err != nil {
		return nil, err
	}
	entries, err := store.Entries()
	if err != nil {
		return nil, err
	}
	// The registry keeps manifests in memory: hand it every tagged manifest of the layout once.
	for _, e := range entries {
		repo, tag, err := cache.RepoPath(e.Ref)
		if err != nil {
			return nil, err
		}
		raw, err := os.ReadFile(filepath.Join(blobs, e.Desc.Digest.Algorithm, e.Desc.Digest.Hex))
		if err != nil {
			return nil, fmt.Errorf("manifest of %s: %w", e.Ref, err)
		}
		req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, bytes.NewReader(raw))
		req.Header.Set("Content-Type", string(e.Desc.MediaType))
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			return nil, fmt.Errorf("registering %s: %d %s", e.Ref, rec.Code, rec.Body.String())
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/release/", http.FileServer(http.Dir(l.Root)))
	g := &guard{next: mux, hosts: map[string]bool{}}
	for _, o := range opts {
		o(g)
	}
	return g, nil
}

// layoutBlobs is a registry.BlobHandler over an OCI layout's blobs directory. Unlike the registry
// package's disk handler it does not re-hash a blob on every HEAD: the layout is trusted, and
// hashing a 100 MB layer per request would make pulls slow.
type layoutBlobs struct{ dir string }

func (b layoutBlobs) path(h v1.Hash) string { return filepath.Join(b.dir, h.Algorithm, h.Hex) }

func (b layoutBlobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	st, err := os.Stat(b.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (b layoutBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(b.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return f, err
}

// Put accepts pushes (with AllowPush), so the mirror also works as a plain local registry; content
// is verified before it is renamed into place.
func (b layoutBlobs) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	dst := b.path(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	got, _, err := v1.SHA256(io.TeeReader(rc, tmp))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got != h {
		return fmt.Errorf("blob digest %s does not match %s", got, h)
	}
	return os.Rename(tmp.Name(), dst)
}
