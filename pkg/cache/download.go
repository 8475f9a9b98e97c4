package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"mkube/pkg/out"
)

// Downloader fetches URLs (http, https, file).
type Downloader struct {
	Client   *http.Client // nil: one on Transport(), with its timeouts and stall guard
	Progress io.Writer    // where progress bars go; nil for none
}

// open returns the content at u and its size (-1 if unknown).
func (d *Downloader) open(ctx context.Context, u string) (io.ReadCloser, int64, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, 0, err
	}
	switch parsed.Scheme {
	case "file":
		f, err := os.Open(parsed.Path)
		if err != nil {
			return nil, 0, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, st.Size(), nil
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, 0, err
		}
		c := d.Client
		if c == nil {
			c = defaultClient()
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return resp.Body, resp.ContentLength, nil
	default:
		return nil, 0, fmt.Errorf("unsupported URL %q: use http, https or file", u)
	}
}

// Checksum reads a .sha256 file's digest (the first field, as dl.k8s.io and sha256sum write it).
func (d *Downloader) Checksum(ctx context.Context, u string) (string, error) {
	rc, _, err := d.open(ctx, u)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return "", err
	}
	digest, ok := ParseDigest(raw)
	if !ok {
		return "", fmt.Errorf("%s holds no sha256 digest", u)
	}
	return digest, nil
}

// File downloads u to dst and checks it against the sha256 published at checksumURL; dst takes its
// name and its record only once verified (Commit). A dst that is already Verified is kept without
// any network access.
func (d *Downloader) File(ctx context.Context, u, checksumURL, dst, label string) error {
	if _, ok := Verified(dst); ok {
		return nil
	}
	want, err := d.Checksum(ctx, checksumURL)
	if err != nil {
		return err
	}
	rc, size, err := d.open(ctx, u)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	var r io.Reader = rc
	if d.Progress != nil {
		bar := out.Bar(d.Progress, label, size, true)
		defer bar.Finish()
		r = bar.NewProxyReader(rc)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		if IsStall(err) {
			return err // names the URL already
		}
		return fmt.Errorf("downloading %s: %w", u, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: checksum mismatch: got sha256 %s, the mirror publishes %s", u, got, want)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return err
	}
	return Commit(tmp.Name(), dst, want)
}
