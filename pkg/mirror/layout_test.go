package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func TestPublishBinaryReleaseLayout(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	src := filepath.Join(t.TempDir(), "kubeadm")
	content := []byte("#!/bin/sh\necho kubeadm\n")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishBinary(src, "v1.34.4", "linux", "amd64", "kubeadm"); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(l.Root, "release/v1.34.4/bin/linux/amd64/kubeadm")
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("binary mode = %v, want 0755", st.Mode().Perm())
	}
	sum, err := os.ReadFile(dst + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(content)
	// dl.k8s.io's .sha256 files hold the bare hex digest and nothing else.
	if string(sum) != hex.EncodeToString(want[:]) {
		t.Errorf(".sha256 = %q, want %x", sum, want)
	}
	if err := l.VerifyBinary("v1.34.4", "linux", "amd64", "kubeadm"); err != nil {
		t.Errorf("VerifyBinary: %v", err)
	}
	if err := os.WriteFile(dst, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyBinary("v1.34.4", "linux", "amd64", "kubeadm"); err == nil {
		t.Error("VerifyBinary accepted a binary that does not match its checksum")
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
