package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"mkube/pkg/cache"
)

// faultyRegistry is go-containerregistry's in-memory registry on loopback behind a handler the
// test controls: it records every blob GET and can cut a blob's response short, ignore or refuse
// Range requests, redirect blob requests, and corrupt a blob on its way out.
type faultyRegistry struct {
	t    *testing.T
	srv  *httptest.Server
	host string // 127.0.0.1:PORT

	mu          sync.Mutex
	cut         map[string]int64 // digest → the next response of it ends after this many bytes
	corrupt     map[string]bool  // digest → its first byte served is flipped
	ignoreRange bool             // answer 200 with the whole blob
	refuseRange bool             // answer 416 to every Range
	redirect    bool             // send blob GETs to /cdn/… first
	gets        []blobGet
}

// blobGet is one blob GET as the registry saw it.
type blobGet struct {
	digest string
	rng    string // the Range header
	status int
	served int64 // body bytes sent
}

func newFaultyRegistry(t *testing.T) *faultyRegistry {
	f := &faultyRegistry{t: t, cut: map[string]int64{}, corrupt: map[string]bool{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(reg, w, r) }))
	t.Cleanup(f.srv.Close)
	f.host = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

func (f *faultyRegistry) serve(reg http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
		reg.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	if f.redirect && !strings.HasPrefix(r.URL.Path, "/cdn/") {
		f.mu.Unlock()
		http.Redirect(w, r, "/cdn"+r.URL.Path, http.StatusTemporaryRedirect)
		return
	}
	r.URL.Path = strings.TrimPrefix(r.URL.Path, "/cdn")
	g := blobGet{digest: r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], rng: r.Header.Get("Range")}
	fw := &faultWriter{ResponseWriter: w, limit: -1, status: http.StatusOK, corrupt: f.corrupt[g.digest]}
	if n, ok := f.cut[g.digest]; ok {
		fw.limit = n
		delete(f.cut, g.digest)
	}
	refuse := f.refuseRange && g.rng != ""
	if f.ignoreRange {
		r.Header.Del("Range")
	}
	f.mu.Unlock()
	defer func() {
		g.status, g.served = fw.status, fw.served
		f.mu.Lock()
		f.gets = append(f.gets, g)
		f.mu.Unlock()
	}()
	if refuse {
		fw.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	reg.ServeHTTP(fw, r)
}

// blobGets returns the blob GETs so far and forgets them.
func (f *faultyRegistry) blobGets() []blobGet {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gets
	f.gets = nil
	return g
}

// set changes the faults under the lock.
func (f *faultyRegistry) set(change func(f *faultyRegistry)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// faultWriter passes a response on, flipping its first byte (corrupt) or aborting the connection
// after limit body bytes (limit ≥ 0), as a network that drops mid-download would.
type faultWriter struct {
	http.ResponseWriter
	limit   int64
	corrupt bool
	status  int
	served  int64
}

func (w *faultWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if w.corrupt && w.served == 0 && len(p) > 0 {
		p = append([]byte{p[0] ^ 0xff}, p[1:]...)
	}
	if w.limit >= 0 && w.served+int64(len(p)) > w.limit {
		n, _ := w.ResponseWriter.Write(p[:w.limit-w.served])
		w.served += int64(n)
		http.NewResponseController(w.ResponseWriter).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}
	n, err := w.ResponseWriter.Write(p)
	w.served += int64(n)
	return n, err
}

// ref parses a reference on this registry.
func (f *faultyRegistry) ref(path string) name.Reference {
	f.t.Helper()
	r, err := cache.RegistryRef(f.host + "/" + path)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// pushBlob uploads content to repo and returns its descriptor.
func (f *faultyRegistry) pushBlob(repo string, content []byte, mt types.MediaType) v1.Descriptor {
	f.t.Helper()
	l := static.NewLayer(content, mt)
	if err := remote.WriteLayer(f.ref(repo+":x").Context(), l); err != nil {
		f.t.Fatal(err)
	}
	d, _ := l.Digest()
	return v1.Descriptor{MediaType: mt, Size: int64(len(content)), Digest: d}
}

// artifactFile is one layer of an artifact: its title annotation and content.
type artifactFile struct {
	title   string
	content []byte
}

// pushArtifact pushes an OCI artifact as mkube's release tool does: artifactType and config media
// type artifactType, config blob {}, one layer of layerType per file, titled.
func (f *faultyRegistry) pushArtifact(ref, artifactType, layerType string, files ...artifactFile) v1.Hash {
	f.t.Helper()
	return f.putManifest(ref, f.artifact(ref, artifactType, layerType, files...))
}

// artifact uploads the blobs of pushArtifact's artifact and returns its manifest.
func (f *faultyRegistry) artifact(ref, artifactType, layerType string, files ...artifactFile) v1.Manifest {
	f.t.Helper()
	repo := f.ref(ref).Context().RepositoryStr()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        f.pushBlob(repo, []byte("{}"), types.MediaType(artifactType)),
	}
	for _, file := range files {
		d := f.pushBlob(repo, file.content, types.MediaType(layerType))
		d.Annotations = map[string]string{"org.opencontainers.image.title": file.title}
		m.Layers = append(m.Layers, d)
	}
	return m
}

// putManifest pushes m as ref and returns its digest.
func (f *faultyRegistry) putManifest(ref string, m v1.Manifest) v1.Hash {
	f.t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := remote.Put(f.ref(ref), rawManifest(raw)); err != nil {
		f.t.Fatal(err)
	}
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	return h
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// randomBytes is n bytes that do not compress, the same for a seed.
func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

var bg = context.Background()

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
