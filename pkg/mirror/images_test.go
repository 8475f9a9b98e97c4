package mirror

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerEntries reads a layer back: name → header.
func layerEntries(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func TestFilesLayerIsReproducible(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	os.WriteFile(bin, []byte("binary"), 0o700)
	files := []File{
		{Path: "/usr/local/bin/app", Mode: 0o755, Src: bin},
		{Path: "/etc", Mode: fs.ModeDir | 0o755},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/root:/bin/sh\n")},
		{Path: "/agnhost-2", Mode: fs.ModeSymlink | 0o777, Linkname: "agnhost"},
		{Path: "/home/nonroot", Mode: fs.ModeDir | 0o700, UID: 65532, GID: 65532},
	}
	a, err := FilesLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	// Same files in another order: the same layer digest, or every rebuild would change images.
	rev := append([]File(nil), files...)
	sort.Slice(rev, func(i, j int) bool { return rev[i].Path > rev[j].Path })
	b, err := FilesLayer(rev)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("layer digests differ: %s vs %s", da, db)
	}
	got := layerEntries(t, a)
	want := map[string]struct {
		typ  byte
		mode int64
		link string
		uid  int
		size int64
	}{
		"usr/local/bin/app": {tar.TypeReg, 0o755, "", 0, 6},
		"etc/":              {tar.TypeDir, 0o755, "", 0, 0},
		"etc/passwd":        {tar.TypeReg, 0o644, "", 0, 26},
		"agnhost-2":         {tar.TypeSymlink, 0o777, "agnhost", 0, 0},
		"home/nonroot/":     {tar.TypeDir, 0o700, "", 65532, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("layer has %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		h := got[name]
		if h == nil {
			t.Errorf("layer lacks %s", name)
			continue
		}
		if h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.link || h.Uid != w.uid || h.Size != w.size {
			t.Errorf("%s: got type %c mode %o link %q uid %d size %d, want %+v", name, h.Typeflag, h.Mode, h.Linkname, h.Uid, h.Size, w)
		}
		if h.ModTime.Unix() != 0 {
			t.Errorf("%s: mtime %v, want the epoch", name, h.ModTime)
		}
	}
	if _, err := FilesLayer([]File{{Path: "relative", Mode: 0o644}}); err == nil {
		t.Error("relative path accepted")
	}
	if _, err := FilesLayer([]File{{Path: "/x", Mode: 0o644, Src: "/nonexistent/file"}}); err == nil {
		t.Error("missing source file accepted")
	}
}

func TestDirLayerKeepsLinksAndSkipsDevices(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/iptables"), []byte("xtables"), 0o755)
	os.Link(filepath.Join(root, "usr/bin/iptables"), filepath.Join(root, "usr/bin/iptables-save"))
	os.Symlink("iptables", filepath.Join(root, "usr/bin/ip6tables"))
	if err := mkfifo(filepath.Join(root, "fifo")); err != nil {
		t.Skip("no fifos here:", err)
	}
	l, err := DirLayer(root)
	if err != nil {
		t.Fatal(err)
	}
	got := layerEntries(t, l)
	if _, ok := got["fifo"]; ok {
		t.Error("fifo copied into the layer")
	}
	if h := got["usr/bin/ip6tables"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "iptables" {
		t.Errorf("symlink: %+v", h)
	}
	reg, link := got["usr/bin/iptables"], got["usr/bin/iptables-save"]
	if reg == nil || link == nil || reg.Typeflag != tar.TypeReg || link.Typeflag != tar.TypeLink || link.Linkname != "usr/bin/iptables" {
		t.Errorf("hard link not kept: %+v %+v", reg, link)
	}
	if h := got["usr/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("directory entry: %+v", h)
	}
}

func TestAssembleConfig(t *testing.T) {
	l, err := FilesLayer([]File{{Path: "/pause", Mode: 0o755, Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Assemble(ImageSpec{
		Ref: "registry.k8s.io/pause:3.10.1", Layers: []v1.Layer{l},
		Entrypoint: []string{"/pause"}, User: "65535:65535", Env: []string{"PATH=/bin"},
		Ports: []string{"80/tcp"}, WorkingDir: "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65535:65535" ||
		!reflect.DeepEqual(cf.Config.Env, []string{"PATH=/bin"}) || cf.Config.WorkingDir != "/" {
		t.Errorf("config = %+v", cf.Config)
	}
	if _, ok := cf.Config.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("ports = %v", cf.Config.ExposedPorts)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		t.Fatalf("layers %d, diff IDs %d", len(layers), len(cf.RootFS.DiffIDs))
	}
	m, _ := img.Manifest()
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("media types %s %s", m.MediaType, m.Layers[0].MediaType)
	}
	if _, err := Assemble(ImageSpec{Ref: "Not A Ref!"}); err == nil {
		t.Error("bad reference accepted")
	}
}
