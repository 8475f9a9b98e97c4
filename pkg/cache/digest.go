package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"mkube/pkg/atomicfile"
)

// DigestSuffix names a cached file's digest record: F's record is F + DigestSuffix.
const DigestSuffix = ".sha256"

// FileSHA256 is the hex sha256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ParseDigest reads a sha256 file's content the way dl.k8s.io and sha256sum write it: the first
// field, 64 hex digits (returned in lower case). ok is false for anything else.
func ParseDigest(raw []byte) (digest string, ok bool) {
	f := strings.Fields(string(raw))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", false
	}
	d := strings.ToLower(f[0])
	if _, err := hex.DecodeString(d); err != nil {
		return "", false
	}
	return d, true
}

// Recorded is the digest recorded beside path (path.sha256), without reading path itself: what a
// reader uses when it needs a cached file's digest and trusts the rule (the record is written only
// after path was verified and renamed into place). ok is false when there is no valid record.
func Recorded(path string) (digest string, ok bool) {
	raw, err := os.ReadFile(path + DigestSuffix)
	if err != nil {
		return "", false
	}
	return ParseDigest(raw)
}

// Verified reports whether path is a complete, verified cache entry, checked in full: its record
// is there and path's content still hashes to it. A file whose record is missing (a crash between
// rename and record, or never verified) or whose content changed since is not trusted.
func Verified(path string) (digest string, ok bool) {
	want, ok := Recorded(path)
	if !ok {
		return "", false
	}
	got, err := FileSHA256(path)
	if err != nil || got != want {
		return "", false
	}
	return want, true
}

// Digest is a file's sha256: the cache's record of it when there is one (see Recorded), else
// computed from its content (a file that is not a cache entry, e.g. an ISO passed by path).
func Digest(path string) (string, error) {
	if d, ok := Recorded(path); ok {
		return d, nil
	}
	return FileSHA256(path)
}

// Commit makes dst a cache entry from tmp, a file in dst's directory whose content the caller has
// verified to hash to digest (hashed while it was written and compared with the published one).
// In order: dst's old record goes, tmp is renamed to dst, the record is written atomically. A crash
// at any point leaves either the old entry, or a dst without a record (not trusted: fetched again),
// or the new entry; never a record that vouches for content it was not computed from.
func Commit(tmp, dst, digest string) error {
	d, ok := ParseDigest([]byte(digest))
	if !ok {
		return fmt.Errorf("committing %s: %q is not a sha256 digest", dst, digest)
	}
	if err := Forget(dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return atomicfile.WriteBytes(dst+DigestSuffix, []byte(d+"\n"), 0o644)
}

// Forget drops dst's record, so that dst is no longer trusted (and the next fetch replaces it).
func Forget(dst string) error {
	if err := os.Remove(dst + DigestSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
