package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func publish(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	sum := sha256.Sum256([]byte(content))
	os.WriteFile(p, []byte(content), 0o644)
	os.WriteFile(p+".sha256", []byte(hex.EncodeToString(sum[:])+"\n"), 0o644)
	return p
}

func TestISOTriesURLsInOrderAndVerifies(t *testing.T) {
	src, cache := t.TempDir(), t.TempDir()
	good := publish(t, src, "mkube-test.iso", "iso bytes")
	bad := publish(t, src, "bad.iso", "iso bytes")
	os.WriteFile(bad, []byte("tampered"), 0o644)
	ctx := context.Background()

	if _, err := ISO(ctx, []string{bad}, cache, nil); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("tampered ISO: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "bad.iso")); err == nil {
		t.Error("a tampered ISO was kept in the cache")
	}
	got, err := ISO(ctx, []string{filepath.Join(src, "missing.iso"), "file://" + good}, cache, nil)
	if err != nil || filepath.Base(got) != "mkube-test.iso" {
		t.Fatalf("second URL: %q %v", got, err)
	}
	// Rebuilt under the same name: fetched again.
	publish(t, src, "mkube-test.iso", "new iso bytes")
	if got, _ = ISO(ctx, []string{good}, cache, nil); readString(got) != "new iso bytes" {
		t.Errorf("stale cached ISO used: %q", readString(got))
	}
	// Source gone: the verified copy serves offline.
	os.Remove(good)
	os.Remove(good + ".sha256")
	if got, err = ISO(ctx, []string{good}, cache, nil); err != nil || readString(got) != "new iso bytes" {
		t.Errorf("offline: %q %v", got, err)
	}
	if _, err := ISO(ctx, []string{"https://example.invalid/x.txt"}, cache, nil); err == nil {
		t.Error("a non-ISO URL was accepted")
	}
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
