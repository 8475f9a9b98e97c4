package artifacts

import (
	"os"
	"path/filepath"
	"testing"

	"mkube/internal/golden"
)

func TestWrapperGoMod(t *testing.T) {
	tests := []struct {
		name        string
		main, ver   string
		placeholder string
	}{
		{name: "kubernetes", main: "k8s.io/kubernetes", ver: "v1.34.4", placeholder: "v0.34.4"},
		{name: "etcd", main: "go.etcd.io/etcd/server/v3", ver: "v3.6.5"},
		{name: "plain", main: "github.com/coredns/coredns", ver: "v1.12.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.name+".go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := wrapperGoMod(tt.main, tt.ver, in, func(string) string { return tt.placeholder })
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, tt.name+".wrapper.golden", []byte(got))
		})
	}
}

func TestWrapperGoModNeedsVersions(t *testing.T) {
	in := []byte("module x\n\ngo 1.22\n\nrequire example.com/sub v0.0.0\n\nreplace example.com/sub => ./sub\n")
	if _, err := wrapperGoMod("x", "v1.0.0", in, func(string) string { return "" }); err == nil {
		t.Fatal("want an error when a locally replaced module has no published version")
	}
}
