package artifacts

import (
	"os"
	"path/filepath"
	"strings"
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

func TestWrapperGoModCases(t *testing.T) {
	tests := []struct {
		name    string
		gomod   string
		goVer   string   // the wrapper's go directive
		replace []string // the wrapper's replace block
	}{
		{
			name:  "no go directive defaults to 1.22; toolchain is not the go version",
			gomod: "module example.com/main\n\ntoolchain go1.25.1\n\nrequire example.com/dep v1.0.0\n",
			goVer: "1.22",
		},
		{
			name:  "go directive with toolchain and godebug",
			gomod: "module example.com/main\n\ngo 1.25.0\n\ntoolchain go1.25.1\n\ngodebug default=go1.24\n",
			goVer: "1.25.0",
		},
		{
			name: "local replaces pinned to required versions, sorted, // indirect and comments ignored",
			gomod: `module example.com/main // the main module

go 1.24

require (
	example.com/b v1.4.0 // indirect
	example.com/a v1.3.0
	example.com/c v0.9.1
)

require example.com/d v2.0.0+incompatible

replace (
	example.com/b => ../b // sibling
	example.com/a v1.3.0 => ./a
)

replace example.com/d => ./../d
`,
			goVer: "1.24",
			replace: []string{
				"example.com/a => example.com/a v1.3.0",
				"example.com/b => example.com/b v1.4.0",
				"example.com/d => example.com/d v2.0.0+incompatible",
			},
		},
		{
			name: "placeholder and pseudo versions take the placeholder",
			gomod: `module example.com/main

go 1.24

require (
	example.com/staging v0.0.0
	example.com/pseudo v0.0.0-20240101000000-abcdefabcdef
)

replace (
	example.com/staging => ./staging/src/example.com/staging
	example.com/pseudo => ./pseudo
)
`,
			goVer: "1.24",
			replace: []string{
				"example.com/pseudo => example.com/pseudo v9.9.9",
				"example.com/staging => example.com/staging v9.9.9",
			},
		},
		{
			name: "module replaces kept in file order, before pinned ones; unrequired and absolute ones left out",
			gomod: `module example.com/main

go 1.24

require example.com/sub v1.0.0

replace example.com/z v1.0.0 => example.com/zfork v1.0.1 // fork

replace example.com/sub => ../sub

replace (
	example.com/y => example.com/yfork v0.2.0
	example.com/guard => ./FORBIDDEN_DEPENDENCY
	example.com/abs => /opt/abs
)
`,
			goVer: "1.24",
			replace: []string{
				"example.com/z v1.0.0 => example.com/zfork v1.0.1",
				"example.com/y => example.com/yfork v0.2.0",
				"example.com/sub => example.com/sub v1.0.0",
			},
		},
		{
			name: "exclude and retract lines are not requirements",
			gomod: `module example.com/main

go 1.24

require example.com/sub v1.0.0

exclude (
	example.com/sub v1.1.0
)

retract v1.0.0 // broken

replace example.com/sub => ./sub
`,
			goVer: "1.24",
			replace: []string{
				"example.com/sub => example.com/sub v1.0.0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wrapperGoMod("example.com/main", "v1.2.3", []byte(tt.gomod), func(string) string { return "v9.9.9" })
			if err != nil {
				t.Fatal(err)
			}
			want := "module mkube.local/build\n\ngo " + tt.goVer + "\n\nrequire example.com/main v1.2.3\n"
			if len(tt.replace) > 0 {
				want += "\nreplace (\n\t" + strings.Join(tt.replace, "\n\t") + "\n)\n"
			}
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestWrapperGoModBadGoMod(t *testing.T) {
	in := []byte("module x\n\ngo 1.22\n\nrequire example.com/sub\n")
	if _, err := wrapperGoMod("x", "v1.0.0", in, func(string) string { return "v1.0.0" }); err == nil {
		t.Fatal("want an error for a go.mod that does not parse")
	}
}
