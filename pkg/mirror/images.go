package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one entry of a layer built from scratch.
type File struct {
	Path     string      // path inside the image, absolute
	Mode     fs.FileMode // permission bits plus fs.ModeDir / fs.ModeSymlink
	Data     []byte      // content of a regular file, unless Src is set
	Src      string      // host file to copy, for large binaries
	Linkname string      // target of a symlink
	UID, GID int
}

// FilesLayer builds a reproducible layer (fixed timestamps, sorted entries) from files.
func FilesLayer(files []File) (v1.Layer, error) {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		if !strings.HasPrefix(f.Path, "/") {
			return nil, fmt.Errorf("layer path %q is not absolute", f.Path)
		}
		if f.Src != "" {
			if _, err := os.Stat(f.Src); err != nil {
				return nil, err
			}
		}
	}
	return layerFrom(func(tw *tar.Writer) error {
		for _, f := range sorted {
			if err := writeFileEntry(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeFileEntry(tw *tar.Writer, f File) error {
	mode := int64(f.Mode.Perm())
	// tar's own bits for what Go keeps outside Perm: nonewprivs needs setuid, /tmp the sticky bit.
	for bit, t := range map[fs.FileMode]int64{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if f.Mode&bit != 0 {
			mode |= t
		}
	}
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(f.Path, "/"),
		Mode:    mode,
		Uid:     f.UID,
		Gid:     f.GID,
		ModTime: time.Unix(0, 0),
		Format:  tar.FormatPAX,
	}
	switch {
	case f.Mode&fs.ModeDir != 0:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	case f.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.Linkname
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	var r io.Reader = bytes.NewReader(f.Data)
	hdr.Size = int64(len(f.Data))
	if f.Src != "" {
		src, err := os.Open(f.Src)
		if err != nil {
			return err
		}
		defer src.Close()
		st, err := src.Stat()
		if err != nil {
			return err
		}
		hdr.Size, r = st.Size(), src
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// DirLayer builds a reproducible layer from a root file system on disk (see WriteDirTar).
func DirLayer(root string) (v1.Layer, error) {
	if _, err := os.Stat(root); err != nil {
		return nil, err
	}
	return layerFrom(func(tw *tar.Writer) error { return WriteDirTar(tw, root) })
}

// WriteDirTar writes a root file system as reproducible tar entries: fixed timestamps, owners kept,
// hard links as links. Device nodes, sockets and fifos are left out: a container runtime provides /dev.
func WriteDirTar(tw *tar.Writer, root string) error {
	links := map[uint64]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := info.Mode()
		if m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeNamedPipe) != 0 {
			return nil
		}
		link := ""
		if m&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if m.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if o, ok := ownerOf(info); ok {
			hdr.Uid, hdr.Gid = o.uid, o.gid
			if m.IsRegular() && o.nlink > 1 {
				if first, seen := links[o.ino]; seen {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
					return tw.WriteHeader(hdr)
				}
				links[o.ino] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !m.IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}

// layerFrom makes a gzip layer whose uncompressed tar stream is produced by fill. The stream is
// regenerated on each open, so nothing large is held in memory.
func layerFrom(fill func(*tar.Writer) error) (v1.Layer, error) {
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := fill(tw)
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	// BestSpeed: layers are built once and unpacked on every node start; both favour fast gzip.
	return tarball.LayerFromOpener(opener, tarball.WithCompressionLevel(gzip.BestSpeed),
		tarball.WithMediaType(types.OCILayer))
}

// ImageSpec says how to assemble one image.
type ImageSpec struct {
	Ref        string // canonical reference, e.g. registry.k8s.io/kube-apiserver:v1.34.4
	Layers     []v1.Layer
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Ports      []string // "8080/tcp"
	Labels     map[string]string
}

// Assemble builds a linux/amd64 OCI image from the spec.
func Assemble(spec ImageSpec) (v1.Image, error) {
	if _, err := name.ParseReference(spec.Ref, name.StrictValidation); err != nil {
		return nil, fmt.Errorf("image reference %q: %w", spec.Ref, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, spec.Layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.Env = spec.Env
	cf.Config.User = spec.User
	cf.Config.WorkingDir = spec.WorkingDir
	cf.Config.Labels = spec.Labels
	if len(spec.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

// AppendFiles adds a layer of files on top of img and, when cmd is set, makes it the Cmd: an image
// built FROM another with a few files copied in.
func AppendFiles(img v1.Image, files []File, cmd []string) (v1.Image, error) {
	layer, err := FilesLayer(files)
	if err != nil {
		return nil, err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	if cmd != nil {
		cf.Config.Cmd = cmd
	}
	return mutate.ConfigFile(img, cf)
}
