package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// client-go's kubeconfig lock (tools/clientcmd/loader.go lockFile/unlockFile) is the file
// <kubeconfig>.lock, created with O_CREATE|O_EXCL and removed on unlock; kubectl gives up at once
// with "file exists" when it finds one. mkube speaks the same protocol so that the two exclude each
// other, and removes its lock every time so that kubectl never trips over one mkube left behind.
const (
	// lockPoll is how often a waiting writer tries again: holders keep the lock for milliseconds.
	lockPoll = 10 * time.Millisecond
	// staleLockAge is far longer than any live holder keeps the lock (kubectl and mkube hold it
	// while they write one small file), so a lock this old was left by a process that died, or by
	// an mkube from before this protocol, which never removed its lock file.
	staleLockAge = 10 * time.Second
)

type warnKey struct{}

// WithWarnings returns a context under which this package reports what it did on the user's
// behalf that they may want to know about (such as removing a stale lock) through warn; without
// it such notes go to stderr.
func WithWarnings(ctx context.Context, warn func(format string, args ...any)) context.Context {
	return context.WithValue(ctx, warnKey{}, warn)
}

func warnf(ctx context.Context, format string, args ...any) {
	if w, ok := ctx.Value(warnKey{}).(func(string, ...any)); ok && w != nil {
		w(format, args...)
		return
	}
	fmt.Fprintf(os.Stderr, "❗  "+format+"\n", args...)
}

// lockName is client-go's: the kubeconfig path as given, not symlink-resolved, plus ".lock".
func lockName(path string) string { return path + ".lock" }

// lock takes the kubeconfig lock of path, waiting until ctx ends while someone else holds it, and
// returns the function that releases it.
func lock(ctx context.Context, path string) (func(), error) {
	name := lockName(path)
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			mine, serr := f.Stat()
			f.Close()
			// Remove the lock only while it is still ours: if we ever held it so long that another
			// process took it over as stale, its lock is not ours to remove. A failed remove
			// leaves a lock only the stale rule below will clear.
			return func() {
				if st, err := os.Lstat(name); serr != nil || (err == nil && os.SameFile(st, mine)) {
					os.Remove(name)
				}
			}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("locking kubeconfig %s: %w", path, err)
		}
		st, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released between our create and stat: try again at once
		}
		if err == nil && time.Since(st.ModTime()) > staleLockAge {
			// Two waiters may both find the same stale lock; the second's remove could then hit
			// the first's fresh lock. The window is the microseconds between a stat and a remove,
			// and only opens after a crash, so this is left as is rather than made elaborate.
			if err := os.Remove(name); err == nil || errors.Is(err, fs.ErrNotExist) {
				warnf(ctx, "Removed the kubeconfig lock %s: it was %s old, and kubectl and mkube hold it for milliseconds, so a crashed process (or an older mkube) left it behind.",
					name, time.Since(st.ModTime()).Round(time.Second))
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the kubeconfig lock %s (remove it if no kubectl or mkube is running): %w", name, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}
