package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenMarksAndAdopts(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a", "b")
	for _, tc := range []struct {
		name    string
		entries []string // top-level entries before Open
		ok      bool
	}{
		{"new", nil, true},
		{"empty", []string{}, true},
		{"older mkube home", []string{"profiles", "cache", "certs", "locks"}, true},
		{"someone else's", []string{"profiles", "Documents"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Home(filepath.Join(base, tc.name))
			if tc.entries != nil {
				os.MkdirAll(string(h), 0o755)
			}
			for _, e := range tc.entries {
				os.MkdirAll(filepath.Join(string(h), e), 0o755)
			}
			id, err := h.Open()
			if !tc.ok {
				if err == nil {
					t.Fatalf("Open adopted a foreign directory (id %s)", id)
				}
				if _, serr := os.Stat(filepath.Join(string(h), MarkerFile)); serr == nil {
					t.Fatal("a marker was written into a foreign directory")
				}
				return
			}
			if err != nil || !homeID.MatchString(id) {
				t.Fatalf("Open = %q, %v", id, err)
			}
			again, err := h.Open()
			if err != nil || again != id {
				t.Fatalf("second Open = %q, %v; want the same ID %q", again, err, id)
			}
		})
	}
}

func TestPurgeNeedsMarker(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a", "b")
	sentinel := filepath.Join(base, "sentinel")
	os.MkdirAll(base, 0o755)
	os.WriteFile(sentinel, []byte("keep"), 0o644)

	foreign := Home(filepath.Join(base, "foreign"))
	os.MkdirAll(filepath.Join(string(foreign), "profiles"), 0o755)
	if err := foreign.Purge(); err == nil {
		t.Fatal("purged a directory without the marker")
	}
	if _, err := os.Stat(string(foreign)); err != nil {
		t.Fatal("the unmarked directory is gone")
	}

	h := Home(filepath.Join(base, "home"))
	if _, err := h.Open(); err != nil {
		t.Fatal(err)
	}
	if err := h.Purge(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(string(h)); !os.IsNotExist(err) {
		t.Fatal("the marked home is still there")
	}
	if _, err := os.Stat(sentinel); err != nil {
		t.Fatal("a file beside the home is gone")
	}
	if err := h.Purge(); err != nil {
		t.Fatalf("purging a missing home: %v", err)
	}
}

func TestPreciousHomesRefused(t *testing.T) {
	u := t.TempDir()
	t.Setenv("HOME", u)
	for _, h := range []Home{Home(u), Home("/")} {
		if _, err := h.Open(); err == nil {
			t.Errorf("Open(%s) accepted", h)
		}
		if err := h.Purge(); err == nil {
			t.Errorf("Purge(%s) accepted", h)
		}
	}
}

// Many processes opening a new home at once all get the same ID.
func TestOpenConcurrentlyAgreesOnOneID(t *testing.T) {
	h := Home(filepath.Join(t.TempDir(), "a", "b", "home"))
	ids := make(chan string, 16)
	for range 16 {
		go func() {
			id, err := h.Open()
			if err != nil {
				t.Error(err)
			}
			ids <- id
		}()
	}
	first := <-ids
	for range 15 {
		if id := <-ids; id != first {
			t.Fatalf("two IDs for one home: %s and %s", first, id)
		}
	}
	ents, _ := os.ReadDir(string(h))
	if len(ents) != 1 {
		t.Errorf("leftovers beside the marker: %v", ents)
	}
}
