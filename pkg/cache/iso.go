package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"mkube/pkg/release"
	"mkube/pkg/safepath"
)

// ISO makes sure dir holds the ISO from the first URL of urls that serves it, verified against
// URL.sha256, and returns its path. A cached copy whose digest still matches the URL's is used
// as is; when no URL answers, a verified cached copy is used (offline). The ISO is a cache entry
// like a binary: its record is dir/NAME.iso.sha256 (see the package doc).
func ISO(ctx context.Context, urls []string, dir string, progress io.Writer) (string, error) {
	if len(urls) == 0 {
		return "", errors.New("no ISO URL")
	}
	d := &Downloader{Progress: progress}
	var errs []string
	for _, u := range urls {
		u = normalize(u)
		name := path.Base(strings.SplitN(u, "?", 2)[0])
		if !strings.HasSuffix(name, ".iso") {
			errs = append(errs, fmt.Sprintf("%s: not an .iso URL", u))
			continue
		}
		// The URL's last element becomes a file name in the cache: it must stay one name there.
		dst, err := safepath.Join(dir, name)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: unusable file name: %v", u, err))
			continue
		}
		want, err := d.Checksum(ctx, u+".sha256")
		if err != nil {
			if _, ok := Verified(dst); ok {
				return dst, nil // offline: the verified copy will do
			}
			errs = append(errs, err.Error())
			continue
		}
		if have, ok := Verified(dst); ok && have == want {
			return dst, nil
		}
		// A different build under the same name: no longer trusted, fetched again.
		if err := Forget(dst); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := d.File(ctx, u, u+".sha256", dst, name); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return dst, nil
	}
	return "", fmt.Errorf("no ISO could be had: %s", strings.Join(errs, "; "))
}

// normalize turns a local path into a file:// URL.
func normalize(u string) string {
	if strings.Contains(u, "://") {
		return u
	}
	abs, err := filepath.Abs(u)
	if err != nil {
		return u
	}
	return (&url.URL{Scheme: "file", Path: abs}).String()
}

// DevISO is the ISO a development build finds without flags: `make iso` writes it next to the
// mkube binary (out/). Empty when there is none.
func DevISO() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), release.ISOName())
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
