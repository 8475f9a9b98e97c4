package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestFile(t *testing.T) {
	content := bytes.Repeat([]byte("kubelet"), 10000)
	files := map[string]string{
		"/good":        string(content),
		"/good.sha256": sum(content) + "  good\n",
		"/bad":         "tampered",
		"/bad.sha256":  sum(content),
		"/junk.sha256": "not a digest",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	ctx := context.Background()
	var progress bytes.Buffer
	d := &Downloader{Progress: &progress}
	dir := t.TempDir()

	tests := []struct {
		name, path, checksum string
		wantErr              string
	}{
		{name: "ok", path: "/good", checksum: "/good.sha256"},
		{name: "checksum mismatch", path: "/bad", checksum: "/bad.sha256", wantErr: "checksum mismatch"},
		{name: "missing file", path: "/nope", checksum: "/good.sha256", wantErr: "404"},
		{name: "missing checksum", path: "/good", checksum: "/nope.sha256", wantErr: "404"},
		{name: "junk checksum", path: "/good", checksum: "/junk.sha256", wantErr: "no sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(dir, tt.name, "bin")
			err := d.File(ctx, srv.URL+tt.path, srv.URL+tt.checksum, dst, "bin")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(dst); !os.IsNotExist(err) {
					t.Error("a failed download left a file under the final name")
				}
				left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".bin.download-*"))
				if len(left) > 0 {
					t.Errorf("temp files left: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			if d, ok := Verified(dst); !bytes.Equal(got, content) || !ok || d != sum(content) {
				t.Error("downloaded content wrong or not recorded")
			}
		})
	}
	if !strings.Contains(progress.String(), "bin") {
		t.Errorf("no progress bar drawn: %q", progress.String())
	}

	// A verified file is used without touching the network.
	srv.Close()
	if err := d.File(ctx, srv.URL+"/good", srv.URL+"/good.sha256", filepath.Join(dir, "ok", "bin"), "bin"); err != nil {
		t.Errorf("cached file refetched: %v", err)
	}
	// A corrupted cached file is not trusted.
	os.WriteFile(filepath.Join(dir, "ok", "bin"), []byte("corrupt"), 0o755)
	if _, ok := Verified(filepath.Join(dir, "ok", "bin")); ok {
		t.Error("corrupt cache entry reported as cached")
	}
}

func TestFileURL(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "kubectl")
	os.WriteFile(src, []byte("k"), 0o755)
	os.WriteFile(src+".sha256", []byte(sum([]byte("k"))), 0o644)
	dst := filepath.Join(dir, "cache", "kubectl")
	d := &Downloader{}
	if err := d.File(context.Background(), "file://"+src, "file://"+src+".sha256", dst, "kubectl"); err != nil {
		t.Fatal(err)
	}
	if err := d.File(context.Background(), "ftp://x/y", "ftp://x/y.sha256", filepath.Join(dir, "z"), "z"); err == nil {
		t.Error("ftp accepted")
	}
}
