package mirror

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"mkube/pkg/cache"
)

// testMirror lays out a small mirror: one binary and two images.
func testMirror(t *testing.T) (Layout, map[string]v1.Image) {
	t.Helper()
	l := Layout{Root: t.TempDir()}
	bin := filepath.Join(t.TempDir(), "kubectl")
	os.WriteFile(bin, []byte("kubectl binary"), 0o755)
	if err := l.PublishBinary(bin, "v1.34.4", "linux", "amd64", "kubectl"); err != nil {
		t.Fatal(err)
	}
	store, err := cache.OpenImageStore(l.ImagesDir())
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]v1.Image{}
	for _, ref := range []string{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/coredns/coredns:v1.12.1"} {
		layer, err := FilesLayer([]File{{Path: "/bin", Mode: 0o755, Data: []byte(ref)}})
		if err != nil {
			t.Fatal(err)
		}
		img, err := Assemble(ImageSpec{Ref: ref, Layers: []v1.Layer{layer}, Entrypoint: []string{"/bin"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ref, "k", img); err != nil {
			t.Fatal(err)
		}
		imgs[ref] = img
	}
	return l, imgs
}

func TestServerServesReleaseAndRegistry(t *testing.T) {
	l, imgs := testMirror(t)
	h, err := NewServer(l, nil, AllowPush())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1 only
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	// Binaries and checksums in dl.k8s.io's layout.
	for path, want := range map[string]string{
		"/release/v1.34.4/bin/linux/amd64/kubectl":        "kubectl binary",
		"/release/v1.34.4/bin/linux/amd64/kubectl.sha256": "",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
		if want != "" && string(body) != want {
			t.Errorf("GET %s = %q", path, body)
		}
	}
	if resp, err := http.Get(srv.URL + "/release/v1.99.0/bin/linux/amd64/kubectl"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing binary: %v %v", resp.Status, err)
	}

	// Images through the OCI distribution API, pulled by go-containerregistry's client.
	ctx := context.Background()
	for ref, want := range imgs {
		repo, tag, _ := cache.RepoPath(ref)
		r, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(r, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("pull %s: %v", r, err)
		}
		gd, _ := got.Digest()
		wd, _ := want.Digest()
		if gd != wd {
			t.Errorf("%s digest %s, want %s", r, gd, wd)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("%s layers: %v", r, err)
		}
		tags, err := remote.List(r.Context(), remote.WithContext(ctx))
		if err != nil || len(tags) != 1 || tags[0] != tag {
			t.Errorf("tags of %s = %v, %v", repo, tags, err)
		}
	}
	reg, _ := name.NewRegistry(host, name.Insecure)
	repos, err := remote.Catalog(ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(repos)
	if strings.Join(repos, ",") != "coredns/coredns,pause" {
		t.Errorf("catalog = %v", repos)
	}
	missing, _ := name.ParseReference(host+"/kube-apiserver:v1.34.4", name.Insecure)
	if _, err := remote.Image(missing); err == nil {
		t.Error("pulled an image the mirror does not have")
	}

	// With AllowPush, pushes work too, so the mirror doubles as a local registry.
	pushed, _ := name.ParseReference(host+"/mine/app:dev", name.Insecure)
	if err := remote.Write(pushed, imgs["registry.k8s.io/pause:3.10.1"]); err != nil {
		t.Fatalf("push: %v", err)
	}
	if _, err := remote.Image(pushed); err != nil {
		t.Errorf("pull after push: %v", err)
	}
}

func TestServerIsReadOnlyWithoutAllowPush(t *testing.T) {
	l, imgs := testMirror(t)
	h, err := NewServer(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	pushed, _ := name.ParseReference(host+"/mine/app:dev", name.Insecure)
	if err := remote.Write(pushed, imgs["registry.k8s.io/pause:3.10.1"]); err == nil || !strings.Contains(err.Error(), "--allow-push") {
		t.Errorf("push to a read-only mirror: %v, want a refusal naming --allow-push", err)
	}
	// Overwriting a served tag is what read-only is for.
	for _, tt := range []struct{ method, path string }{
		{http.MethodPost, "/v2/pause/blobs/uploads/"},
		{http.MethodPut, "/v2/pause/manifests/3.10.1"},
		{http.MethodDelete, "/v2/pause/manifests/3.10.1"},
		{http.MethodPatch, "/v2/pause/blobs/uploads/x"},
		{http.MethodPut, "/release/v1.34.4/bin/linux/amd64/kubectl"},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), `"code":"UNSUPPORTED"`) {
			t.Errorf("%s %s: %s %s, want 405 with an OCI error", tt.method, tt.path, resp.Status, body)
		}
	}
	// Pulls are unaffected.
	served, _ := name.ParseReference(host+"/pause:3.10.1", name.Insecure)
	if _, err := remote.Image(served); err != nil {
		t.Errorf("pull from a read-only mirror: %v", err)
	}
	if _, err := remote.Image(pushed); err == nil {
		t.Error("the refused push left an image behind")
	}
}

func TestServerRefusesForeignHosts(t *testing.T) {
	l, _ := testMirror(t)
	h, err := NewServer(l, nil, AllowHosts("mirror.lan", "192.168.1.5:5080"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:5080", true},
		{"127.0.0.2", true},
		{"[::1]:5080", true},
		{"localhost:5080", true},
		{"LOCALHOST", true},
		{"mirror.lan:5080", true}, // --allow-host
		{"Mirror.LAN", true},
		{"192.168.1.5:5080", true}, // the listen address
		{"rebind.attacker.example:5080", false},
		{"127.0.0.1.nip.io:5080", false},
		{"192.168.1.6:5080", false},
		{"", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ok := rec.Code == http.StatusOK; ok != tt.ok {
			t.Errorf("Host %q: %d %s", tt.host, rec.Code, rec.Body)
		}
		if !tt.ok && (rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"code":"DENIED"`)) {
			t.Errorf("Host %q: %d %s, want 403 with an OCI error", tt.host, rec.Code, rec.Body)
		}
	}
}
