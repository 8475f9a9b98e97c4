package lockfile

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludesAndTimesOut(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, p); err == nil {
		t.Fatal("a second holder got the lock")
	}
	unlock()
	again, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatalf("lock not released: %v", err)
	}
	again()
}
