package artifacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAptMirror(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"deb822", "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n", "http://mirror.example/debian"},
		{"one-line", "# comment\ndeb http://mirror.example/debian bookworm main\n", "http://mirror.example/debian"},
		{"options", "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n", "http://mirror.example/debian"},
		{"security only", "deb http://mirror.example/debian-security bookworm-security main\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "sources")
			os.WriteFile(p, []byte(tt.content), 0o644)
			if got := aptMirror(p); got != tt.want {
				t.Errorf("aptMirror = %q, want %q", got, tt.want)
			}
		})
	}
	if got := aptMirror("/nonexistent"); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

func TestRecipeKeyAndFresh(t *testing.T) {
	if recipeKey("a", "b") == recipeKey("ab") || recipeKey("a", "b") == recipeKey("a", "c") {
		t.Error("recipe keys collide")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "bin")
	if fresh(dir, "k", out) {
		t.Error("fresh with no stamp")
	}
	os.WriteFile(out, nil, 0o644)
	markFresh(dir, "k")
	if !fresh(dir, "k", out) {
		t.Error("not fresh after markFresh")
	}
	if fresh(dir, "other", out) {
		t.Error("fresh with another key")
	}
	os.Remove(out)
	if fresh(dir, "k", out) {
		t.Error("fresh with a missing output")
	}
}

func TestTrimCNIPlugins(t *testing.T) {
	dir := t.TempDir()
	cni := filepath.Join(dir, "usr/lib/cni")
	os.MkdirAll(cni, 0o755)
	for _, p := range []string{"bridge", "dhcp", "host-local", "macvlan", "loopback", "portmap", "vrf", "tuning"} {
		os.WriteFile(filepath.Join(cni, p), []byte("x"), 0o755)
	}
	if err := trimCNIPlugins(dir); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(cni); got != "bridge,host-local,loopback,portmap,tuning" {
		t.Errorf("left %s", got)
	}
}

// dirNames lists a directory's entries, sorted, comma-separated.
func dirNames(dir string) string {
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}
