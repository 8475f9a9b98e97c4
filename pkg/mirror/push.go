package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"mkube/pkg/cache"
	"mkube/pkg/node"
	"mkube/pkg/release"
)

// ParseRegistry checks a registry path R as a release or `push --to` takes it: HOST[:PORT]/PATH,
// optionally written http://R (plain HTTP) or https://R. It returns R without a trailing slash.
func ParseRegistry(r string) (string, error) {
	r = strings.TrimSuffix(r, "/")
	bare := strings.TrimPrefix(strings.TrimPrefix(r, "http://"), "https://")
	host, path, _ := strings.Cut(bare, "/")
	// Docker's rule for telling a registry host from a first path element: a dot, a port or localhost.
	isHost := strings.ContainsAny(host, ".:") || host == "localhost"
	repo, err := name.NewRepository(bare+"/"+release.NodeRepo, name.StrictValidation)
	if path == "" || !isHost || err != nil {
		return "", fmt.Errorf("registry %q: want HOST[:PORT]/PATH in lower case, e.g. registry.example.com/mkube or 127.0.0.1:5080/mkube", r)
	}
	// go-containerregistry speaks plain HTTP to private addresses: credentials and
	// a release's artifacts would cross the network unprotected unless the user asked for it.
	if repo.Registry.Scheme() == "http" && !strings.HasPrefix(r, "http://") && !cache.Loopback(host) {
		return "", fmt.Errorf("registry %q would be reached over plain HTTP (a private address): write http://%s if the network to it is trusted, or serve it over https under a DNS name", r, bare)
	}
	return r, nil
}

// tagPattern is the OCI distribution spec's rule for a tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// CheckTag checks that v can tag an image (a release version, e.g. v0.2.0 or v0.1.0-3-gabcdef0).
func CheckTag(v string) error {
	if !tagPattern.MatchString(v) {
		return fmt.Errorf("version %q cannot tag an image: use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-'), e.g. v0.2.0", v)
	}
	return nil
}

// Pusher publishes images and mkube's OCI artifacts under one registry path R, mapped the way
// cache.ImageSource maps them: registry.k8s.io/pause:3.10 → R/pause:3.10, mkube.local/node:V →
// R/node:V. A loopback or http:// registry is spoken to over plain HTTP.
type Pusher struct {
	// Once refuses to move a tag to another digest (a release's own artifacts).
	Once     bool
	registry string
	log      io.Writer
	opts     []remote.Option // everything but the context
	push     *remote.Pusher
}

// NewPusher makes a Pusher for registry R (see ParseRegistry) that prints one line per artifact
// on log. Credentials come from the Docker config (authn.DefaultKeychain).
func NewPusher(registry string, log io.Writer) (*Pusher, error) {
	r, err := ParseRegistry(registry)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	opts := []remote.Option{
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		// The shared transport bounds connects and headers and fails a stalled body with a message.
		remote.WithTransport(cache.Transport()),
		remote.WithUserAgent("mkube-mirror"),
	}
	p, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	return &Pusher{registry: r, log: log, opts: opts, push: p}, nil
}

// Registry is the registry path R pushed to.
func (p *Pusher) Registry() string { return p.registry }

// Ref is where a canonical image reference lands under R.
func (p *Pusher) Ref(canonical string) (name.Reference, error) {
	return cache.ImageSource(canonical, p.registry)
}

// OwnRef is where one of mkube's own artifacts lands: R/REPO:TAG (the path of mkube.local/REPO:TAG).
func (p *Pusher) OwnRef(repo, tag string) (name.Reference, error) {
	return p.Ref(release.LocalPrefix + repo + ":" + tag)
}

func (p *Pusher) remote(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, p.opts...)
}

// has reports whether ref already names the manifest with digest d, so nothing needs pushing
// (and says so on the log). A
// Once pusher refuses a tag that names another digest: a release version is published once, and
// binaries of it pinned to the old digest would break when the registry collects it.
func (p *Pusher) has(ctx context.Context, ref name.Reference, d v1.Hash) (bool, error) {
	desc, err := remote.Head(ref, p.remote(ctx)...)
	if err != nil {
		return false, nil // not there (or not answering: the push will say)
	}
	if desc.Digest != d && p.Once {
		return false, fmt.Errorf("%s is already published as %s: a release version is published once; make a new one (VERSION=…)", ref, desc.Digest)
	}
	if desc.Digest == d {
		fmt.Fprintf(p.log, "up to date  %s@%s\n", ref, d)
	}
	return desc.Digest == d, nil
}

// Image pushes img to where canonical lands under R, keeping its manifest bytes (and so its
// digest). Blobs the registry has are not sent again; an unchanged tag is left alone.
func (p *Pusher) Image(ctx context.Context, canonical string, img v1.Image) (v1.Hash, error) {
	ref, err := p.Ref(canonical)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	size, err := ImageSize(img)
	if err != nil {
		return v1.Hash{}, err
	}
	if done, err := p.has(ctx, ref, d); err != nil || done {
		return d, err
	}
	start := time.Now()
	if err := p.push.Push(ctx, ref, img); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	fmt.Fprintf(p.log, "pushed      %s@%s (%s in %s)\n", ref, d, MB(size), since(start))
	return d, nil
}

// ImageSize is what pulling img transfers: its config and compressed layers.
func ImageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// ArtifactFile is one file of an OCI artifact: a layer titled with its name.
type ArtifactFile struct {
	Title string // the file's name (org.opencontainers.image.title)
	Path  string // on disk
}

// ISO pushes an ISO as R/iso:VERSION (see release.ISOArtifactType).
func (p *Pusher) ISO(ctx context.Context, version, path string) (v1.Hash, error) {
	if err := CheckTag(version); err != nil {
		return v1.Hash{}, err
	}
	ref, err := p.OwnRef(release.ISORepo, version)
	if err != nil {
		return v1.Hash{}, err
	}
	file := ArtifactFile{Title: release.ISOFileName(version), Path: path}
	return p.Artifact(ctx, ref, release.ISOArtifactType, release.ISOLayerType, []ArtifactFile{file})
}

// Binaries pushes a Kubernetes version's linux/amd64 binaries found in dir as
// R/kubernetes-binaries:VERSION-linux-amd64 (see release.BinariesArtifactType).
func (p *Pusher) Binaries(ctx context.Context, kubernetesVersion, dir string) (v1.Hash, error) {
	ref, err := p.OwnRef(release.BinariesRepo, release.BinariesTag(kubernetesVersion))
	if err != nil {
		return v1.Hash{}, err
	}
	var files []ArtifactFile
	for _, n := range node.BinaryNames {
		files = append(files, ArtifactFile{Title: n, Path: filepath.Join(dir, n)})
	}
	return p.Artifact(ctx, ref, release.BinariesArtifactType, release.BinaryLayerType, files)
}

// Artifact pushes files as an OCI 1.1 artifact: an image manifest whose artifactType and config
// media type are artifactType, whose config is the empty JSON object, and whose layers are the
// files (media type layerType, titled). Files are streamed from disk, never held in memory: each
// is hashed in one pass and read again to upload.
func (p *Pusher) Artifact(ctx context.Context, ref name.Reference, artifactType, layerType string, files []ArtifactFile) (v1.Hash, error) {
	config := static.NewLayer([]byte("{}"), types.MediaType(artifactType))
	blobs := []v1.Layer{config}
	var total int64
	for _, f := range files {
		b, err := newFileBlob(f.Path, types.MediaType(layerType))
		if err != nil {
			return v1.Hash{}, err
		}
		blobs = append(blobs, b)
		total += b.size
	}
	raw, err := artifactManifest(artifactType, blobs, files)
	if err != nil {
		return v1.Hash{}, err
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	if done, err := p.has(ctx, ref, d); err != nil || done {
		return d, err
	}
	start := time.Now()
	for _, b := range blobs {
		if err := p.push.Upload(ctx, ref.Context(), b); err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	if err := p.push.Put(ctx, ref, rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	fmt.Fprintf(p.log, "pushed      %s@%s (%s in %s)\n", ref, d, MB(total), since(start))
	return d, nil
}

// artifactManifest is the manifest of an artifact whose first blob is its config and the rest
// are files, in order.
func artifactManifest(artifactType string, blobs []v1.Layer, files []ArtifactFile) ([]byte, error) {
	descs := make([]v1.Descriptor, len(blobs))
	for i, b := range blobs {
		d, err := b.Digest()
		if err != nil {
			return nil, err
		}
		size, err := b.Size()
		if err != nil {
			return nil, err
		}
		mt, err := b.MediaType()
		if err != nil {
			return nil, err
		}
		descs[i] = v1.Descriptor{MediaType: mt, Digest: d, Size: size}
		if i > 0 {
			descs[i].Annotations = map[string]string{release.TitleAnnotation: files[i-1].Title}
		}
	}
	return json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        descs[0],
		Layers:        descs[1:],
	})
}

// rawManifest is a manifest pushed as the exact bytes given.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// fileBlob is a file on disk as a blob to upload (a v1.Layer stored as is): its digest is computed
// once when it is made, and its content is read from the file again on every upload attempt.
type fileBlob struct {
	path      string
	mediaType types.MediaType
	digest    v1.Hash
	size      int64
}

func newFileBlob(path string, mt types.MediaType) (*fileBlob, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, size, err := v1.SHA256(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &fileBlob{path: path, mediaType: mt, digest: d, size: size}, nil
}

func (b *fileBlob) Digest() (v1.Hash, error)             { return b.digest, nil }
func (b *fileBlob) DiffID() (v1.Hash, error)             { return b.digest, nil }
func (b *fileBlob) Compressed() (io.ReadCloser, error)   { return os.Open(b.path) }
func (b *fileBlob) Uncompressed() (io.ReadCloser, error) { return os.Open(b.path) }
func (b *fileBlob) Size() (int64, error)                 { return b.size, nil }
func (b *fileBlob) MediaType() (types.MediaType, error)  { return b.mediaType, nil }

// MB formats a byte count for progress lines.
func MB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
