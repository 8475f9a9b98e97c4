//go:build windows

package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Lock creates path exclusively; Windows has no flock. A lock older than a minute is taken to be
// left by a crashed process.
func Lock(ctx context.Context, path string) (func(), error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > time.Minute {
			os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock %s (another mkube is using it): %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RLock is Lock on Windows: readers exclude each other too, which is correct, only less parallel.
func RLock(ctx context.Context, path string) (func(), error) { return Lock(ctx, path) }
