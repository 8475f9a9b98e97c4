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

func TestReadersShareWritersExclude(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	ctx := context.Background()
	r1, err := RLock(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := RLock(ctx, p)
	if err != nil {
		t.Fatalf("a second reader was refused: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := Lock(short, p); err == nil {
		t.Fatal("a writer got the lock while readers held it")
	}
	r1()
	r2()
	w, err := Lock(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel2()
	if _, err := RLock(short2, p); err == nil {
		t.Fatal("a reader got the lock while a writer held it")
	}
	w()
}
