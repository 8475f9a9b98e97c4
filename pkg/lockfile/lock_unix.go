//go:build !windows

package lockfile

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Lock takes an exclusive flock on path, waiting until ctx ends. The kernel drops it if the process dies, so a crash
// never leaves a stale lock behind.
func Lock(ctx context.Context, path string) (func(), error) { return flock(ctx, path, syscall.LOCK_EX) }

// RLock takes a shared flock on path: any number of readers hold it together, a writer's Lock
// waits for them (and they for it).
func RLock(ctx context.Context, path string) (func(), error) {
	return flock(ctx, path, syscall.LOCK_SH)
}

func flock(ctx context.Context, path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s (another mkube is using it): %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
