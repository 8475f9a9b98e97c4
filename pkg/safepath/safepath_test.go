package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestElem(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"mkube", true},
		{"a-b.c_d", true},
		{"ünïcödé", true}, // Elem allows it; the profile validator is stricter
		{strings.Repeat("a", MaxElem), true},
		{"", false},
		{".", false},
		{"..", false},
		{"../..", false},
		{"a/b", false},
		{`a\b`, false},
		{"/abs", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{string([]byte{0xff, 0xfe}), false},
		{strings.Repeat("a", MaxElem+1), false},
	} {
		err := Elem(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("Elem(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrOutside) {
			t.Errorf("Elem(%q) error %v does not wrap ErrOutside", tc.name, err)
		}
	}
}

func TestJoin(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "home")
	for _, tc := range []struct {
		elems []string
		want  string // "" = refused
	}{
		{[]string{"profiles", "mkube"}, filepath.Join(root, "profiles", "mkube")},
		{[]string{"profiles", ".."}, ""},
		{[]string{"..", "x"}, ""},
		{[]string{"profiles", "../.."}, ""},
		{[]string{"profiles", "/etc"}, ""},
		{[]string{"profiles", ""}, ""},
		{[]string{"profiles", "a\x00"}, ""},
		{nil, ""},
	} {
		got, err := Join(root, tc.elems...)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Join(%q) = %q, want refusal", tc.elems, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Join(%q) = %q, %v; want %q", tc.elems, got, err, tc.want)
		}
	}
	if _, err := Join("relative/dir", "x"); err == nil {
		t.Error("a relative root was accepted")
	}
}

func TestInside(t *testing.T) {
	for _, tc := range []struct {
		root, p string
		want    bool
	}{
		{"/h", "/h/x", true},
		{"/h", "/h/x/y", true},
		{"/h", "/h", false},
		{"/h", "/h/", false},
		{"/h", "/", false},
		{"/h", "/hx", false},
		{"/h", "/h/../x", false},
		{"/h", "/h/x/../..", false},
		{"/h", "/h/..x", true}, // a name that starts with dots is still inside
	} {
		if got := Inside(tc.root, tc.p); got != tc.want {
			t.Errorf("Inside(%q, %q) = %v, want %v", tc.root, tc.p, got, tc.want)
		}
	}
}

func TestRemoveAllStaysInside(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a", "b")
	root := filepath.Join(base, "home")
	outside := filepath.Join(base, "sentinel")
	for _, d := range []string{filepath.Join(root, "profiles", "p"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o644)
	// A link inside the home that points outside: removing through it must not follow it.
	if err := os.Symlink(outside, filepath.Join(root, "profiles", "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{root, base, filepath.Dir(base), filepath.Join(root, ".."), filepath.Join(root, "profiles", "link", "keep")} {
		if err := RemoveAll(root, p); err == nil {
			t.Errorf("RemoveAll(%s) was allowed", p)
		}
	}
	if err := RemoveAll(root, filepath.Join(root, "profiles", "link")); err != nil {
		t.Fatalf("removing the link itself: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Fatalf("a file outside the home is gone: %v", err)
	}
	if err := RemoveAll(root, filepath.Join(root, "profiles", "p")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "profiles", "p")); !os.IsNotExist(err) {
		t.Fatal("the profile directory is still there")
	}
	if err := RemoveAll(root, filepath.Join(root, "profiles", "missing")); err != nil {
		t.Fatalf("a missing path: %v", err)
	}
}

// A user who moved a top-level folder (machines/) to another disk with a link can still delete.
func TestRemoveAllFollowsAMovedTopFolder(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a", "b")
	root := filepath.Join(base, "home")
	disk := filepath.Join(base, "otherdisk", "machines")
	os.MkdirAll(filepath.Join(disk, "p"), 0o755)
	os.MkdirAll(root, 0o755)
	if err := os.Symlink(disk, filepath.Join(root, "machines")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(root, filepath.Join(root, "machines", "p")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(disk, "p")); !os.IsNotExist(err) {
		t.Fatal("the machine on the other disk is still there")
	}
	// Deeper links are still not followed.
	os.MkdirAll(filepath.Join(disk, "q"), 0o755)
	os.MkdirAll(filepath.Join(base, "victim", "x"), 0o755)
	os.Symlink(filepath.Join(base, "victim"), filepath.Join(disk, "q", "link"))
	if err := RemoveAll(root, filepath.Join(root, "machines", "q", "link", "x")); err == nil {
		t.Fatal("a link below the moved folder was followed")
	}
	if _, err := os.Stat(filepath.Join(base, "victim", "x")); err != nil {
		t.Fatal("the victim is gone")
	}
}
