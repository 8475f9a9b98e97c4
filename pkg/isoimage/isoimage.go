// Package isoimage names mkube's VM image (built by `make iso`, see iso/README.md) and keeps it in
// the cache, downloaded from the first of a list of URLs that has it and checked against the
// sha256 published beside it.
package isoimage

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

	"mkube/pkg/download"
	"mkube/pkg/safepath"
)

// Version of the VM image this mkube boots.
const Version = "v0.1.0"

// Name is its file name.
func Name() string { return "mkube-" + Version + "-amd64.iso" }

// Cache makes sure dir holds the ISO from the first URL of urls that serves it, verified against
// URL.sha256, and returns its path. A cached copy whose digest still matches the URL's is used
// as is; when no URL answers, a verified cached copy is used (offline).
func Cache(ctx context.Context, urls []string, dir string, progress io.Writer) (string, error) {
	if len(urls) == 0 {
		return "", errors.New("no ISO URL")
	}
	d := &download.Downloader{Progress: progress}
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
			if download.Cached(dst) {
				return dst, nil // offline: the verified copy will do
			}
			errs = append(errs, err.Error())
			continue
		}
		if have, err := os.ReadFile(dst + ".sha256"); err == nil && strings.TrimSpace(string(have)) == want && download.Cached(dst) {
			return dst, nil
		}
		os.Remove(dst + ".sha256") // a different build under the same name: fetch it again
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

// DevDefault is the ISO a development build finds without flags: `make iso` writes it next to the
// mkube binary (out/). Empty when there is none.
func DevDefault() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), Name())
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
