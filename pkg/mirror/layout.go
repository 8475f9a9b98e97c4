// Package mirror lays out and serves an offline copy of what a cluster start downloads:
// Kubernetes binaries in dl.k8s.io's release layout and container images as an OCI image layout,
// served over the OCI distribution API.
package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"mkube/pkg/atomicfile"
	"mkube/pkg/cache"
)

// Layout is a mirror directory on disk.
//
//	<root>/release/<version>/bin/<os>/<arch>/<name>[.sha256]   (dl.k8s.io/release layout)
//	<root>/images/                                              (OCI image layout)
type Layout struct{ Root string }

// BinaryPath is where a release binary lives, e.g. release/v1.34.4/bin/linux/amd64/kubeadm.
func (l Layout) BinaryPath(version, goos, goarch, name string) string {
	return filepath.Join(l.Root, "release", version, "bin", goos, goarch, name)
}

// ImagesDir holds the OCI image layout.
func (l Layout) ImagesDir() string { return filepath.Join(l.Root, "images") }

// PublishBinary copies src into the release layout with a .sha256 file beside it, the way
// dl.k8s.io serves them: the file holds only the hex digest. Both land atomically, the binary first,
// so a reader never sees a checksum for a binary that is not there yet.
func (l Layout) PublishBinary(src, version, goos, goarch, name string) error {
	dst := l.BinaryPath(version, goos, goarch, name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	h := sha256.New()
	if err := atomicfile.Write(dst, io.TeeReader(in, h), 0o755); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return atomicfile.WriteBytes(dst+".sha256", []byte(sum), 0o644)
}

// VerifyBinary checks a published binary against its .sha256 file.
func (l Layout) VerifyBinary(version, goos, goarch, name string) error {
	p := l.BinaryPath(version, goos, goarch, name)
	want, err := os.ReadFile(p + ".sha256")
	if err != nil {
		return err
	}
	got, err := cache.FileSHA256(p)
	if err != nil {
		return err
	}
	if w, ok := cache.ParseDigest(want); !ok || w != got {
		return fmt.Errorf("%s: sha256 %s does not match %s.sha256", p, got, filepath.Base(p))
	}
	return nil
}
