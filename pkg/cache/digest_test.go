package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The digest-file rule (see the package doc): F is trusted iff F.sha256 beside it holds F's
// sha256, and Commit is the only writer of that record.
func TestDigestFileRule(t *testing.T) {
	content := []byte("kubelet binary")
	good := sum(content)
	write := func(t *testing.T, p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(t *testing.T, dst, s string) {
		t.Helper()
		tmp := dst + ".download-x"
		write(t, tmp, s)
		if err := Commit(tmp, dst, sum([]byte(s))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, dst string)
		recorded bool // Recorded: a record is there
		verified bool // Verified: the record is there and matches the content
	}{
		{name: "nothing", setup: func(*testing.T, string) {}},
		{name: "missing .sha256 (crash before the record)", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
		}},
		{name: "record without the file", setup: func(t *testing.T, dst string) {
			write(t, dst+".sha256", good+"\n")
		}, recorded: true},
		{name: "record and matching file", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
			write(t, dst+".sha256", good+"\n")
		}, recorded: true, verified: true},
		{name: "sha256sum's format: first field", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
			write(t, dst+".sha256", good+"  kubelet\n")
		}, recorded: true, verified: true},
		{name: "upper-case digest", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
			write(t, dst+".sha256", strings.ToUpper(good))
		}, recorded: true, verified: true},
		{name: "wrong content: changed after it was verified", setup: func(t *testing.T, dst string) {
			commit(t, dst, string(content))
			write(t, dst, "tampered")
		}, recorded: true},
		{name: "junk record", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
			write(t, dst+".sha256", "not a digest")
		}},
		{name: "64 characters that are not hex", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
			write(t, dst+".sha256", strings.Repeat("z", 64))
		}},
		{name: "empty record", setup: func(t *testing.T, dst string) {
			write(t, dst, string(content))
			write(t, dst+".sha256", "")
		}},
		{name: "committed", setup: func(t *testing.T, dst string) {
			commit(t, dst, string(content))
		}, recorded: true, verified: true},
		{name: "committed over an older entry", setup: func(t *testing.T, dst string) {
			commit(t, dst, "old build")
			commit(t, dst, string(content))
		}, recorded: true, verified: true},
		{name: "forgotten", setup: func(t *testing.T, dst string) {
			commit(t, dst, string(content))
			if err := Forget(dst); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "kubelet")
			tt.setup(t, dst)
			rec, rok := Recorded(dst)
			if rok != tt.recorded || (rok && rec != good) {
				t.Errorf("Recorded = %q, %v; want ok=%v", rec, rok, tt.recorded)
			}
			got, ok := Verified(dst)
			if ok != tt.verified || (ok && got != good) {
				t.Errorf("Verified = %q, %v; want ok=%v with %s", got, ok, tt.verified, good)
			}
			// Digest: the record if there is one, else the content's hash.
			if d, err := Digest(dst); tt.recorded && d != good {
				t.Errorf("Digest = %q, %v; want the record %s", d, err, good)
			}
		})
	}
}

func TestCommitIsAtomic(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "mkube.iso")
	old, neu := []byte("old build"), []byte("new build")
	tmp := filepath.Join(dir, ".mkube.iso.download-1")
	os.WriteFile(tmp, old, 0o644)
	if err := Commit(tmp, dst, sum(old)); err != nil {
		t.Fatal(err)
	}

	// A digest that is not one is refused before anything changes.
	tmp2 := filepath.Join(dir, ".mkube.iso.download-2")
	os.WriteFile(tmp2, neu, 0o644)
	if err := Commit(tmp2, dst, "nope"); err == nil {
		t.Fatal("Commit accepted a non-digest")
	}
	if d, ok := Verified(dst); !ok || d != sum(old) {
		t.Errorf("a refused Commit changed the entry: %q %v", d, ok)
	}

	// A commit that cannot rename (here: tmp is gone) has already dropped the old record: the old
	// file is no longer trusted rather than vouched for by a record about to be replaced.
	if err := Commit(filepath.Join(dir, "missing"), dst, sum(neu)); err == nil {
		t.Fatal("Commit of a missing file succeeded")
	}
	if _, ok := Recorded(dst); ok {
		t.Error("a failed Commit left the old record in place")
	}

	// A crash between rename and record (the state Commit passes through): the renamed file is
	// there but not trusted.
	if err := os.Rename(tmp2, dst); err != nil {
		t.Fatal(err)
	}
	if _, ok := Verified(dst); ok {
		t.Error("a file without its record is trusted")
	}

	// The whole commit: content and record agree, and only dst and its record are left.
	tmp3 := filepath.Join(dir, ".mkube.iso.download-3")
	os.WriteFile(tmp3, neu, 0o644)
	if err := Commit(tmp3, dst, strings.ToUpper(sum(neu))); err != nil {
		t.Fatal(err)
	}
	if d, ok := Verified(dst); !ok || d != sum(neu) {
		t.Errorf("after Commit: %q %v", d, ok)
	}
	if raw, _ := os.ReadFile(dst + ".sha256"); string(raw) != sum(neu)+"\n" {
		t.Errorf("record = %q", raw)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "mkube.iso,mkube.iso.sha256" {
		t.Errorf("files left: %v", names)
	}
}
