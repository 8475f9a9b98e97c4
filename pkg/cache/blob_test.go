package cache_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mkube/pkg/cache"
)

// An interrupted download keeps what arrived, and the next call asks only for the rest — however
// the registry answers that request.
func TestFetchBlobResumes(t *testing.T) {
	const size = 300 << 10
	tests := []struct {
		name  string
		fault func(*faultyRegistry) // in force for the second call
		want  func(have int64) []blobGet
	}{
		{
			name: "registry resumes",
			want: func(have int64) []blobGet {
				return []blobGet{{rng: fmt.Sprintf("bytes=%d-%d", have, size-1), status: 206, served: size - have}}
			},
		},
		{
			name:  "registry redirects and resumes",
			fault: func(f *faultyRegistry) { f.redirect = true },
			want: func(have int64) []blobGet {
				return []blobGet{{rng: fmt.Sprintf("bytes=%d-%d", have, size-1), status: 206, served: size - have}}
			},
		},
		{
			name:  "registry ignores Range",
			fault: func(f *faultyRegistry) { f.ignoreRange = true },
			want: func(have int64) []blobGet {
				return []blobGet{{rng: fmt.Sprintf("bytes=%d-%d", have, size-1), status: 200, served: size}}
			},
		},
		{
			name:  "registry refuses the range",
			fault: func(f *faultyRegistry) { f.refuseRange = true },
			want: func(have int64) []blobGet {
				return []blobGet{
					{rng: fmt.Sprintf("bytes=%d-%d", have, size-1), status: 416},
					{status: 200, served: size},
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newFaultyRegistry(t)
			content := randomBytes(int64(i), size)
			desc := reg.pushBlob("mkube/blobs", content, "application/octet-stream")
			repo := reg.ref("mkube/blobs:x").Context()
			dst := filepath.Join(t.TempDir(), "blob")

			reg.set(func(f *faultyRegistry) { f.cut[desc.Digest.String()] = 100 << 10 })
			if err := cache.FetchBlob(bg, repo, desc, dst, nil, "blob"); err == nil {
				t.Fatal("a cut download succeeded")
			}
			first := reg.blobGets()
			if len(first) != 1 || first[0].rng != "" {
				t.Fatalf("first try: %+v", first)
			}
			partials, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".blob.*.partial"))
			if len(partials) != 1 {
				t.Fatalf("partials after the cut: %v", partials)
			}
			st, _ := os.Stat(partials[0])
			have := st.Size()
			if have == 0 || have > 100<<10 || !bytes.Equal(readFile(t, partials[0]), content[:have]) {
				t.Fatalf("the partial holds %d bytes, not a prefix of the first 100 KiB", have)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatal("a cut download left a file under the final name")
			}

			if tt.fault != nil {
				reg.set(tt.fault)
			}
			var progress bytes.Buffer
			if err := cache.FetchBlob(bg, repo, desc, dst, &progress, "blob"); err != nil {
				t.Fatal(err)
			}
			got := reg.blobGets()
			want := tt.want(have)
			for j := range want {
				want[j].digest = desc.Digest.String()
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("second try:\n got %+v\nwant %+v", got, want)
			}
			if !bytes.Equal(readFile(t, dst), content) {
				t.Error("the resumed blob differs")
			}
			if d, ok := cache.Verified(dst); !ok || d != desc.Digest.Hex {
				t.Errorf("not a verified entry: %q, %v", d, ok)
			}
			if _, err := os.Stat(partials[0]); !os.IsNotExist(err) {
				t.Error("the partial is still there")
			}
			if !strings.Contains(progress.String(), "300.00 KiB / 300.00 KiB") {
				t.Errorf("progress = %q", progress.String())
			}
		})
	}
}

// A blob that does not hash to its digest is refused and its partial dropped, so the next try
// does not resume from bad bytes.
func TestFetchBlobRefusesATamperedBlob(t *testing.T) {
	reg := newFaultyRegistry(t)
	desc := reg.pushBlob("mkube/blobs", randomBytes(7, 64<<10), "application/octet-stream")
	repo := reg.ref("mkube/blobs:x").Context()
	dir := t.TempDir()
	dst := filepath.Join(dir, "blob")
	reg.set(func(f *faultyRegistry) { f.corrupt[desc.Digest.String()] = true })
	err := cache.FetchBlob(bg, repo, desc, dst, nil, "blob")
	if err == nil || !strings.Contains(err.Error(), "does not match its digest: refused") || !strings.Contains(err.Error(), reg.host) {
		t.Fatalf("err = %v, want a refusal naming %s", err, reg.host)
	}
	// Only the download's lock file stays.
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 || !strings.HasSuffix(left[0], ".partial.lock") {
		t.Fatalf("a refused blob left %v", left)
	}
	// The registry mends its ways: the next try starts from zero.
	reg.set(func(f *faultyRegistry) { f.corrupt = map[string]bool{} })
	reg.blobGets()
	if err := cache.FetchBlob(bg, repo, desc, dst, nil, "blob"); err != nil {
		t.Fatal(err)
	}
	if g := reg.blobGets(); len(g) != 1 || g[0].rng != "" {
		t.Errorf("after a refusal: %+v", g)
	}
}

// A verified entry needs no registry; one with another digest (a stale build) is replaced.
func TestFetchBlobVerifiedNeedsNoNetwork(t *testing.T) {
	reg := newFaultyRegistry(t)
	content := randomBytes(8, 10<<10)
	desc := reg.pushBlob("mkube/blobs", content, "application/octet-stream")
	repo := reg.ref("mkube/blobs:x").Context()
	dst := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(dst, []byte("old build"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+cache.DigestSuffix, []byte(sha256hex([]byte("old build"))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cache.FetchBlob(bg, repo, desc, dst, nil, "blob"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dst), content) {
		t.Fatal("the stale entry was kept")
	}
	reg.srv.Close()
	if err := cache.FetchBlob(bg, repo, desc, dst, nil, "blob"); err != nil {
		t.Errorf("a verified blob went to the network: %v", err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
