package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"mkube/pkg/cache"
	"mkube/pkg/node"
	"mkube/pkg/release"
)

// testRegistry runs go-containerregistry's in-memory registry on loopback and returns R under it.
func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/mkube"
}

func newTestPusher(t *testing.T, reg string) (*Pusher, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	p, err := NewPusher(reg, &out)
	if err != nil {
		t.Fatal(err)
	}
	return p, &out
}

// randomFile writes size random bytes to dir/name.
func randomFile(t *testing.T, dir, name string, size int) string {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// record writes path's digest record, the way the cache and the mirror keep one beside a file.
func record(t *testing.T, path string) {
	t.Helper()
	sum, err := cache.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+cache.DigestSuffix, []byte(sum+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pulledManifest fetches ref's manifest: its raw bytes, parsed, and its digest.
func pulledManifest(t *testing.T, ref string) ([]byte, *v1.Manifest, v1.Hash) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return desc.Manifest, &m, desc.Digest
}

// blobContent fetches one blob of repo.
func blobContent(t *testing.T, repo string, d v1.Hash) []byte {
	t.Helper()
	r, err := name.NewDigest(repo+"@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	l, err := remote.Layer(r)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseRegistry(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:5080/mkube", "127.0.0.1:5080/mkube", true},
		{"registry.example.com/mkube", "registry.example.com/mkube", true},
		{"registry.example.com/team/mkube/", "registry.example.com/team/mkube", true},
		{"localhost/mkube", "localhost/mkube", true},
		{"http://mirror.lan:5000/mkube", "http://mirror.lan:5000/mkube", true},
		{"https://registry.example.com/mkube", "https://registry.example.com/mkube", true},
		{"registry.example.com", "", false}, // no path
		{"mkube/releases", "", false},       // no host: Docker Hub's namespace
		{"registry.example.com/MKube", "", false},
		{"registry.example.com/mk ube", "", false},
		{"", "", false},
	} {
		got, err := ParseRegistry(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRegistry(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseRegistry(%q): error is not one line: %q", tt.in, err)
		}
	}
}

func TestCheckTag(t *testing.T) {
	for _, tt := range []struct {
		v  string
		ok bool
	}{
		{"v0.2.0", true},
		{"v0.1.0-3-gabcdef0-dirty", true},
		{"0.2.0_rc1", true},
		{"", false},
		{"-v1", false},
		{".v1", false},
		{"v1/2", false},
		{"v1+build", false},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
	} {
		if err := CheckTag(tt.v); (err == nil) != tt.ok {
			t.Errorf("CheckTag(%q) = %v, want ok %v", tt.v, err, tt.ok)
		}
	}
}

// checkArtifact checks an artifact manifest's shape and every file's content, returning the manifest.
func checkArtifact(t *testing.T, ref, artifactType, layerType string, files []ArtifactFile) *v1.Manifest {
	t.Helper()
	raw, m, d := pulledManifest(t, ref)
	if got, _, _ := v1.SHA256(bytes.NewReader(raw)); got != d {
		t.Errorf("manifest digest %s, content hashes to %s", d, got)
	}
	if m.SchemaVersion != 2 || m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != artifactType {
		t.Errorf("manifest header: schema %d, mediaType %q, artifactType %q", m.SchemaVersion, m.MediaType, m.ArtifactType)
	}
	emptyJSON, _, _ := v1.SHA256(strings.NewReader("{}"))
	if m.Config.MediaType != types.MediaType(artifactType) || m.Config.Digest != emptyJSON || m.Config.Size != 2 {
		t.Errorf("config descriptor %+v, want %s, %s, size 2", m.Config, artifactType, emptyJSON)
	}
	repo := ref[:strings.LastIndex(ref, ":")]
	if got := string(blobContent(t, repo, m.Config.Digest)); got != "{}" {
		t.Errorf("config blob %q, want {}", got)
	}
	if len(m.Layers) != len(files) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(files))
	}
	for i, f := range files {
		l := m.Layers[i]
		want, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		wd, _, _ := v1.SHA256(bytes.NewReader(want))
		if l.MediaType != types.MediaType(layerType) || l.Digest != wd || l.Size != int64(len(want)) ||
			len(l.Annotations) != 1 || l.Annotations[release.TitleAnnotation] != f.Title {
			t.Errorf("layer %d: %+v, want %s %s size %d titled %q", i, l, layerType, wd, len(want), f.Title)
		}
		if got := blobContent(t, repo, l.Digest); !bytes.Equal(got, want) {
			t.Errorf("layer %d (%s): content differs after the round trip", i, f.Title)
		}
	}
	return m
}

func TestPushISO(t *testing.T) {
	reg := testRegistry(t)
	p, out := newTestPusher(t, reg)
	iso := randomFile(t, t.TempDir(), "some.iso", 3<<20)
	ctx := context.Background()
	d, err := p.ISO(ctx, "v0.3.0", iso)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg + "/iso:v0.3.0"
	checkArtifact(t, ref, release.ISOArtifactType, release.ISOLayerType,
		[]ArtifactFile{{Title: "mkube-v0.3.0-amd64.iso", Path: iso}})
	if _, _, pulled := pulledManifest(t, ref); pulled != d {
		t.Errorf("ISO returned digest %s, registry has %s", d, pulled)
	}
	if !strings.Contains(out.String(), "pushed      "+ref+"@"+d.String()) {
		t.Errorf("no progress line for %s:\n%s", ref, out)
	}
	// Pushed again: the same digest, nothing sent.
	out.Reset()
	if d2, err := p.ISO(ctx, "v0.3.0", iso); err != nil || d2 != d {
		t.Fatalf("second push: %s, %v; want %s", d2, err, d)
	}
	if !strings.HasPrefix(out.String(), "up to date  "+ref) {
		t.Errorf("second push printed %q, want up to date", out)
	}
	if _, err := p.ISO(ctx, "v0.3.0/x", iso); err == nil {
		t.Error("an ISO version that is no tag was pushed")
	}
}

func TestPushBinaries(t *testing.T) {
	reg := testRegistry(t)
	p, _ := newTestPusher(t, reg)
	dir := t.TempDir()
	var files []ArtifactFile
	for i, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		files = append(files, ArtifactFile{Title: n, Path: randomFile(t, dir, n, 100<<10*(i+1))})
	}
	d, err := p.Binaries(context.Background(), "v1.34.4", dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg + "/kubernetes-binaries:v1.34.4-linux-amd64"
	checkArtifact(t, ref, release.BinariesArtifactType, release.BinaryLayerType, files)
	if _, _, pulled := pulledManifest(t, ref); pulled != d {
		t.Errorf("returned digest %s, registry has %s", d, pulled)
	}
}

// testImages are small images under the canonical names a layout holds.
var testImages = []struct{ ref, pushed string }{
	{"registry.k8s.io/pause:3.10", "/pause:3.10"},
	{"registry.k8s.io/coredns/coredns:v1.12.1", "/coredns/coredns:v1.12.1"},
	{"docker.io/library/registry:3.0.0", "/library/registry:3.0.0"},
	{"mkube.local/storage-provisioner:v0.1.0", "/storage-provisioner:v0.1.0"},
}

// fillLayout stores testImages in an OCI layout at dir and returns their digests by ref.
func fillLayout(t *testing.T, dir string) map[string]v1.Hash {
	t.Helper()
	store, err := cache.OpenImageStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]v1.Hash{}
	for _, im := range testImages {
		l, err := FilesLayer([]File{{Path: "/etc", Mode: fs.ModeDir | 0o755}, {Path: "/etc/name", Mode: 0o644, Data: []byte(im.ref)}})
		if err != nil {
			t.Fatal(err)
		}
		img, err := Assemble(ImageSpec{Ref: im.ref, Layers: []v1.Layer{l}, Entrypoint: []string{"/bin/true"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(im.ref, "recipe", img); err != nil {
			t.Fatal(err)
		}
		es, _ := store.Entries()
		digests[im.ref] = es[len(es)-1].Desc.Digest
	}
	return digests
}

// checkImages: every image is in the registry under its mapped path, with the layout's manifest
// bytes and so its digest.
func checkImages(t *testing.T, reg, layoutDir string, digests map[string]v1.Hash, fromMirror bool) {
	t.Helper()
	for _, im := range testImages {
		if fromMirror && strings.HasPrefix(im.ref, release.LocalPrefix) {
			// a development build's own image stays out of a release registry
			r, _ := name.ParseReference(reg+im.pushed, name.Insecure)
			if _, err := remote.Head(r); err == nil {
				t.Errorf("%s was pushed from a mirror", im.ref)
			}
			continue
		}
		raw, _, d := pulledManifest(t, reg+im.pushed)
		if d != digests[im.ref] {
			t.Errorf("%s: pushed digest %s, layout digest %s", im.ref, d, digests[im.ref])
		}
		want, err := os.ReadFile(filepath.Join(layoutDir, "blobs", "sha256", digests[im.ref].Hex))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want) {
			t.Errorf("%s: pushed manifest bytes differ from the layout's", im.ref)
		}
	}
}

func TestPushMirrorDir(t *testing.T) {
	reg := testRegistry(t)
	p, out := newTestPusher(t, reg)
	l := Layout{Root: t.TempDir()}
	tmp := t.TempDir()
	for _, v := range []string{"v1.34.4", "v1.35.1"} {
		for _, n := range node.BinaryNames {
			if err := l.PublishBinary(randomFile(t, tmp, n+v, 4096), v, "linux", "amd64", n); err != nil {
				t.Fatal(err)
			}
		}
	}
	digests := fillLayout(t, l.ImagesDir())
	src, err := InspectDir(l.Root)
	if err != nil {
		t.Fatal(err)
	}
	if src.Kind != KindMirror || src.Images != l.ImagesDir() || len(src.Binaries) != 2 || len(src.ISOs) != 0 {
		t.Fatalf("InspectDir: %+v", src)
	}
	if err := p.Dir(context.Background(), src, "v1.35.1"); err != nil {
		t.Fatal(err)
	}
	checkImages(t, reg, l.ImagesDir(), digests, true)
	dir := filepath.Dir(l.BinaryPath("v1.35.1", "linux", "amd64", "kubeadm"))
	var files []ArtifactFile
	for _, n := range node.BinaryNames {
		files = append(files, ArtifactFile{Title: n, Path: filepath.Join(dir, n)})
	}
	checkArtifact(t, reg+"/kubernetes-binaries:v1.35.1-linux-amd64", release.BinariesArtifactType, release.BinaryLayerType, files)
	// Only the version asked for.
	r, _ := name.ParseReference(reg+"/kubernetes-binaries:v1.34.4-linux-amd64", name.Insecure)
	if _, err := remote.Head(r); err == nil {
		t.Error("v1.34.4's binaries were pushed with --kubernetes-version v1.35.1")
	}
	// every image but the development build's own one, and the binaries
	if got := strings.Count(out.String(), "pushed      "); got != len(testImages) {
		t.Errorf("%d pushed lines, want %d:\n%s", got, len(testImages), out)
	}
	// Everything again: all up to date.
	out.Reset()
	if err := p.Dir(context.Background(), src, ""); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "up to date  "); got != len(testImages) {
		t.Errorf("second push: %d up-to-date lines, want %d:\n%s", got, len(testImages), out)
	}
	if err := p.Dir(context.Background(), src, "v1.36.0"); err == nil || !strings.Contains(err.Error(), "v1.34.4, v1.35.1") {
		t.Errorf("a version the mirror lacks: %v", err)
	}
}

func TestPushCacheDir(t *testing.T) {
	reg := testRegistry(t)
	p, out := newTestPusher(t, reg)
	dir := t.TempDir()
	bin := filepath.Join(dir, "binaries", "linux", "amd64")
	var files []ArtifactFile
	for _, n := range node.BinaryNames {
		f := randomFile(t, filepath.Join(bin, "v1.34.4"), n, 8192)
		record(t, f)
		files = append(files, ArtifactFile{Title: n, Path: f})
	}
	// A download cut short: kubelet has no record.
	for _, n := range node.BinaryNames {
		f := randomFile(t, filepath.Join(bin, "v1.33.2"), n, 10)
		if n != "kubelet" {
			record(t, f)
		}
	}
	iso := randomFile(t, filepath.Join(dir, "iso"), "mkube-v0.4.0-amd64.iso", 1<<20)
	record(t, iso)
	record(t, randomFile(t, filepath.Join(dir, "iso"), "custom.iso", 10))
	randomFile(t, filepath.Join(dir, "iso"), "mkube-v0.3.0-amd64.iso", 10) // no record
	digests := fillLayout(t, filepath.Join(dir, "images"))

	src, err := InspectDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Kind != KindCache || len(src.Binaries) != 1 || src.ISOs["v0.4.0"] != iso || len(src.ISOs) != 1 || len(src.Skipped) != 3 {
		t.Fatalf("InspectDir: %+v", src)
	}
	if err := p.Dir(context.Background(), src, ""); err != nil {
		t.Fatal(err)
	}
	checkImages(t, reg, filepath.Join(dir, "images"), digests, false)
	checkArtifact(t, reg+"/kubernetes-binaries:v1.34.4-linux-amd64", release.BinariesArtifactType, release.BinaryLayerType, files)
	checkArtifact(t, reg+"/iso:v0.4.0", release.ISOArtifactType, release.ISOLayerType,
		[]ArtifactFile{{Title: "mkube-v0.4.0-amd64.iso", Path: iso}})
	for _, s := range []string{"v1.33.2 binaries: kubelet missing", "custom.iso: not named", "mkube-v0.3.0-amd64.iso: incomplete"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestInspectDirRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		dirs []string // made under the directory; nil for none
		want string
	}{
		{"empty", []string{}, "is neither a mirror"},
		{"images only", []string{"images"}, "is neither a mirror"},
		{"both shapes", []string{"release", "binaries"}, "is neither a mirror"},
		{"something else", []string{"src", "docs"}, "is neither a mirror"},
		{"missing", nil, "is not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "from")
			if tt.dirs != nil {
				os.Mkdir(dir, 0o755)
			}
			for _, d := range tt.dirs {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			_, err := InspectDir(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("InspectDir: %v, want a one-line refusal saying %q", err, tt.want)
			}
		})
	}
}

// TestPushOnce: a release's pusher does not move a published tag to another digest.
func TestPushOnce(t *testing.T) {
	reg := testRegistry(t)
	p, _ := newTestPusher(t, reg)
	p.Once = true
	ctx := context.Background()
	dir := t.TempDir()
	iso := randomFile(t, dir, "a.iso", 1024)
	if _, err := p.ISO(ctx, "v0.3.0", iso); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ISO(ctx, "v0.3.0", iso); err != nil {
		t.Errorf("the same ISO again: %v", err)
	}
	other := randomFile(t, dir, "b.iso", 2048)
	if _, err := p.ISO(ctx, "v0.3.0", other); err == nil || !strings.Contains(err.Error(), "published once") {
		t.Errorf("another ISO under a published version: %v", err)
	}
}

func TestParseRegistryRefusesImplicitPlainHTTP(t *testing.T) {
	for in, ok := range map[string]bool{
		"10.1.2.3:5000/mkube":        false,
		"http://10.1.2.3:5000/mkube": true,
		"192.168.1.5/mkube":          false,
		"127.0.0.1:5000/mkube":       true,
		"localhost:5000/mkube":       true,
		"registry.example.com/mkube": true,
	} {
		if _, err := ParseRegistry(in); (err == nil) != ok {
			t.Errorf("ParseRegistry(%q): %v, want ok=%v", in, err, ok)
		}
	}
}
