package cache_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mkube/pkg/cache"
	"mkube/pkg/release"
)

func TestPullISO(t *testing.T) {
	reg := newFaultyRegistry(t)
	iso := randomBytes(1, 200<<10)
	isoFile := artifactFile{release.ISOName(), iso}
	good := reg.pushArtifact("mkube/iso:v1", release.ISOArtifactType, release.ISOLayerType, isoFile)
	tests := []struct {
		name    string
		push    func(ref string) // what the registry holds at ref; nil: nothing
		ref     string
		wantErr string // "" = success
	}{
		{name: "by tag", ref: "mkube/iso:v1"},
		{name: "by digest", ref: "mkube/iso:v1@" + good.String()},
		{
			name:    "unknown digest",
			ref:     "mkube/iso:v1@sha256:" + strings.Repeat("0", 64),
			wantErr: "MANIFEST_UNKNOWN",
		},
		{name: "not there", ref: "mkube/iso:v0", wantErr: "MANIFEST_UNKNOWN"},
		{
			name: "config media type only",
			push: func(ref string) {
				m := reg.artifact(ref, release.ISOArtifactType, release.ISOLayerType, isoFile)
				m.ArtifactType = "" // as registries and tools before OCI 1.1 push it
				reg.putManifest(ref, m)
			},
			ref: "mkube/iso:legacy",
		},
		{
			name:    "wrong artifact type",
			push:    func(ref string) { reg.pushArtifact(ref, release.BinariesArtifactType, release.ISOLayerType, isoFile) },
			ref:     "mkube/iso:bins",
			wantErr: "not " + release.ISOArtifactType,
		},
		{
			name: "two ISO layers",
			push: func(ref string) {
				reg.pushArtifact(ref, release.ISOArtifactType, release.ISOLayerType, isoFile, artifactFile{"b.iso", []byte("b")})
			},
			ref:     "mkube/iso:two",
			wantErr: "2 layers",
		},
	}
	for _, title := range []string{"../escape.iso", "sub/dir.iso", "mkube.img", "", ".iso/..", "..iso\x00.iso"} {
		tests = append(tests, struct {
			name    string
			push    func(ref string)
			ref     string
			wantErr string
		}{
			name: "title " + title,
			push: func(ref string) {
				reg.pushArtifact(ref, release.ISOArtifactType, release.ISOLayerType, artifactFile{title, iso})
			},
			ref:     "mkube/iso:bad-title",
			wantErr: "title",
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.push != nil {
				tt.push(tt.ref)
			}
			dir := t.TempDir()
			ref := reg.ref(tt.ref)
			got, err := cache.PullISO(bg, ref, dir, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ref.String()) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, ref, tt.wantErr)
				}
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Errorf("a refused ISO left %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != filepath.Join(dir, release.ISOName()) || !bytes.Equal(readFile(t, got), iso) {
				t.Fatalf("PullISO = %s", got)
			}
			if _, ok := cache.Verified(got); !ok {
				t.Error("the ISO is not a verified entry")
			}
		})
	}
}

// Without a registry a verified ISO is used; an answer from the registry is not overridden by it.
func TestPullISOOffline(t *testing.T) {
	reg := newFaultyRegistry(t)
	iso := randomBytes(2, 50<<10)
	reg.pushArtifact("mkube/iso:v1", release.ISOArtifactType, release.ISOLayerType, artifactFile{release.ISOName(), iso})
	dir := t.TempDir()
	ref := reg.ref("mkube/iso:v1")
	want, err := cache.PullISO(bg, ref, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.blobGets()
	// Cached: the manifest is asked for, the ISO is not downloaded again.
	if got, err := cache.PullISO(bg, ref, dir, nil); err != nil || got != want {
		t.Fatalf("second pull = %s, %v", got, err)
	}
	if g := reg.blobGets(); len(g) != 0 {
		t.Errorf("a cached ISO was downloaded again: %+v", g)
	}
	if _, err := cache.PullISO(bg, reg.ref("mkube/iso:v2"), dir, nil); err == nil {
		t.Error("a tag the registry does not have was answered with the cached ISO")
	}
	reg.srv.Close()
	if got, err := cache.PullISO(bg, ref, dir, nil); err != nil || got != want {
		t.Errorf("offline pull = %s, %v; want the cached %s", got, err, want)
	}
	if _, err := cache.PullISO(bg, ref, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), ref.String()) {
		t.Errorf("offline without a cached ISO: %v", err)
	}
	// A copy that is not verified does not stand in.
	os.Remove(want + cache.DigestSuffix)
	if _, err := cache.PullISO(bg, ref, dir, nil); err == nil {
		t.Error("an unverified ISO was used offline")
	}
}

func TestPullBinaries(t *testing.T) {
	reg := newFaultyRegistry(t)
	names := []string{"kubeadm", "kubelet", "kubectl"}
	content := map[string][]byte{}
	var files []artifactFile
	for i, n := range names {
		content[n] = randomBytes(int64(10+i), (i+1)*30<<10)
		files = append(files, artifactFile{n, content[n]})
	}
	reg.pushArtifact("mkube/kubernetes-binaries:v1.34.4-linux-amd64", release.BinariesArtifactType, release.BinaryLayerType, files...)
	reg.pushArtifact("mkube/kubernetes-binaries:partial", release.BinariesArtifactType, release.BinaryLayerType, files[:2]...)
	reg.pushArtifact("mkube/kubernetes-binaries:iso", release.ISOArtifactType, release.BinaryLayerType, files...)
	ref := reg.ref("mkube/kubernetes-binaries:v1.34.4-linux-amd64")

	for _, tt := range []struct{ ref, wantErr string }{
		{"mkube/kubernetes-binaries:partial", "has no kubectl"},
		{"mkube/kubernetes-binaries:iso", "not " + release.BinariesArtifactType},
	} {
		dir := t.TempDir()
		err := cache.PullBinaries(bg, reg.ref(tt.ref), dir, names, nil)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want %q", tt.ref, err, tt.wantErr)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s: a refused artifact left %v", tt.ref, left)
		}
	}

	dir := t.TempDir()
	// kubeadm is cached already, with the artifact's digest: it is not downloaded.
	os.WriteFile(filepath.Join(dir, "kubeadm"), content["kubeadm"], 0o755)
	os.WriteFile(filepath.Join(dir, "kubeadm"+cache.DigestSuffix), []byte(sha256hex(content["kubeadm"])), 0o644)
	reg.blobGets()
	var progress bytes.Buffer
	if err := cache.PullBinaries(bg, ref, dir, names, &progress); err != nil {
		t.Fatal(err)
	}
	if g := reg.blobGets(); len(g) != 2 {
		t.Errorf("blob GETs = %+v, want kubelet's and kubectl's", g)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if !bytes.Equal(readFile(t, p), content[n]) {
			t.Errorf("%s differs", n)
		}
		if d, ok := cache.Verified(p); !ok || d != sha256hex(content[n]) {
			t.Errorf("%s is not a verified entry", n)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v", n, st.Mode())
		}
	}
	if !strings.Contains(progress.String(), "kubectl") || !strings.Contains(progress.String(), "90.00 KiB") {
		t.Errorf("progress = %q", progress.String())
	}
	// All cached: no registry needed.
	reg.srv.Close()
	if err := cache.PullBinaries(bg, ref, dir, names, nil); err != nil {
		t.Errorf("cached binaries went to the registry: %v", err)
	}
}
