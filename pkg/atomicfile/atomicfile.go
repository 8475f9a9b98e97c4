// Package atomicfile writes files so that readers see the old content or the new, never a part:
// through a temporary file in the same directory, synced, then renamed over the target. A crash,
// Ctrl-C or a full disk leaves the previous file as it was.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// Write streams r into path with mode, creating parent directories.
func Write(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteBytes writes data to path with mode.
func WriteBytes(path string, data []byte, mode os.FileMode) error {
	return Write(path, bytes.NewReader(data), mode)
}
