package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteKeepsOldContentOnFailure(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "f")
	if err := WriteBytes(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if err := Write(p, failingReader{}, 0o600); err == nil {
		t.Fatal("a failed write reported success")
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("content after a failed write = %q", got)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".f.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}
