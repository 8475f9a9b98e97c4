package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// captureWarnings returns a context whose warnings are collected.
func captureWarnings(ctx context.Context) (context.Context, *[]string) {
	var got []string
	return WithWarnings(ctx, func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }), &got
}

func assertNoLeftovers(t *testing.T, cfg string) {
	t.Helper()
	if _, err := os.Lstat(cfg + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file %s.lock left behind (kubectl would fail with \"file exists\"): %v", cfg, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), ".*.tmp-*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestLockFileIsGoneAfterEveryOperation(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kube", "config")
	ctx := context.Background()
	steps := []struct {
		name string
		run  func() error
	}{
		{"update new file", func() error { _, err := Update(ctx, []string{cfg}, entry(dir, "a"), true); return err }},
		{"update existing entry", func() error { _, err := Update(ctx, []string{cfg}, entry(dir, "a"), false); return err }},
		{"remove", func() error { _, err := Remove(ctx, []string{cfg}, "a", testHome, ""); return err }},
		{"remove absent", func() error { _, err := Remove(ctx, []string{cfg}, "a", testHome, ""); return err }},
		{"refused update", func() error {
			e := entry(dir, "b")
			Update(ctx, []string{cfg}, e, false)
			e.HomeID = "other"
			if _, err := Update(ctx, []string{cfg}, e, false); !errors.Is(err, ErrNotOurs) {
				return fmt.Errorf("want ErrNotOurs, got %v", err)
			}
			return nil
		}},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		assertNoLeftovers(t, cfg)
	}
}

func TestStaleLockIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	// An older mkube (flock on this file) or a crashed kubectl left an empty lock file behind.
	if err := os.WriteFile(cfg+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleLockAge)
	os.Chtimes(cfg+".lock", old, old)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx, warnings := captureWarnings(ctx)
	if _, err := Update(ctx, []string{cfg}, entry(dir, "a"), true); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, cfg)
	if len(*warnings) != 1 || !strings.Contains((*warnings)[0], cfg+".lock") {
		t.Errorf("warnings = %q, want one naming the lock", *warnings)
	}
}

func TestFreshLockMakesUpdateWait(t *testing.T) {
	base, warnings := captureWarnings(context.Background())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	copyExisting(t, cfg)
	before, _ := os.ReadFile(cfg)
	// Someone else (kubectl, another mkube) holds the lock.
	if err := os.WriteFile(cfg+".lock", nil, 0); err != nil {
		t.Fatal(err)
	}

	t.Run("times out with ctx", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(base, 150*time.Millisecond)
		defer cancel()
		_, err := Update(ctx, []string{cfg}, entry(dir, "a"), true)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Update = %v, want a deadline error", err)
		}
		if now, _ := os.ReadFile(cfg); string(now) != string(before) {
			t.Error("wrote without the lock")
		}
		if _, err := os.Stat(cfg + ".lock"); err != nil {
			t.Error("removed a lock it did not hold")
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".config.tmp-*")); len(left) > 0 {
			t.Errorf("temp files left: %v", left)
		}
	})

	t.Run("waits until released", func(t *testing.T) {
		const hold = 300 * time.Millisecond
		go func() {
			time.Sleep(hold)
			os.Remove(cfg + ".lock")
		}()
		start := time.Now()
		ctx, cancel := context.WithTimeout(base, 5*time.Second)
		defer cancel()
		if _, err := Update(ctx, []string{cfg}, entry(dir, "a"), true); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < hold {
			t.Errorf("Update returned after %v, before the lock was released", waited)
		}
		if s, _ := Server([]string{cfg}, "a"); s == "" {
			t.Error("entry not written")
		}
		assertNoLeftovers(t, cfg)
	})
	if len(*warnings) > 0 {
		t.Errorf("a fresh lock was treated as stale: %q", *warnings)
	}
}

// A read can catch kubectl halfway through rewriting the file in place; mkube must wait for the
// writer's lock and read again rather than call the file corrupt.
func TestTornReadIsReadAgainUnderTheLock(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	full, err := os.ReadFile("testdata/existing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The writer holds the lock and has written part of the file: here, cut inside a flow of YAML
	// that does not parse.
	os.WriteFile(cfg+".lock", nil, 0)
	os.WriteFile(cfg, []byte("apiVersion: v1\nclusters:\n- cluster: {server: https://prod"), 0o600)
	done := make(chan error, 1)
	go func() {
		_, err := Update(context.Background(), []string{cfg}, entry(dir, "a"), false)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Update did not wait for the writer: %v", err)
	default:
	}
	os.WriteFile(cfg, full, 0o600)
	os.Remove(cfg + ".lock")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s, _ := Server([]string{cfg}, "prod"); s != "https://prod.example:6443" {
		t.Error("the writer's content was lost")
	}
	if s, _ := Server([]string{cfg}, "a"); s == "" {
		t.Error("entry not written")
	}
}
