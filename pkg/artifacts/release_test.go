package artifacts

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"mkube/pkg/cache"
	"mkube/pkg/release"
)

// gitRepo makes a repository with one commit and returns its directory and commit.
func gitRepo(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "one")
	return dir, git("rev-parse", "HEAD")
}

func TestSourceCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	ctx := context.Background()
	dir, head := gitRepo(t)
	if got, err := sourceCommit(ctx, dir, false); err != nil || got != head {
		t.Fatalf("clean tree: %q, %v; want %q", got, err, head)
	}
	for name, change := range map[string]func(){
		"modified":  func() { os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module y\n"), 0o644) },
		"untracked": func() { os.WriteFile(filepath.Join(dir, "new.go"), nil, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			raw, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
			t.Cleanup(func() {
				os.WriteFile(filepath.Join(dir, "go.mod"), raw, 0o644)
				os.Remove(filepath.Join(dir, "new.go"))
			})
			change()
			_, err := sourceCommit(ctx, dir, false)
			if err == nil || !strings.Contains(err.Error(), "commit or stash first; --allow-dirty for a local try") || strings.Contains(err.Error(), "\n") {
				t.Errorf("dirty tree: %v, want a one-line refusal with advice", err)
			}
			if got, err := sourceCommit(ctx, dir, true); err != nil || got != head+"-dirty" {
				t.Errorf("dirty tree allowed: %q, %v; want %q", got, err, head+"-dirty")
			}
		})
	}
	if _, err := sourceCommit(ctx, t.TempDir(), true); err == nil {
		t.Error("a directory that is no git tree was released")
	}
}

func TestCheckRelease(t *testing.T) {
	for _, tt := range []struct {
		version, registry string
		wantRegistry      string
		wantErr           string
	}{
		{"v0.2.0", "registry.example.com/mkube", "registry.example.com/mkube", ""},
		{"v0.1.0-3-gabcdef0-dirty", "127.0.0.1:5080/mkube/", "127.0.0.1:5080/mkube", ""},
		{"v0.2.0", "http://mirror.lan:5000/mkube", "http://mirror.lan:5000/mkube", ""},
		{"", "registry.example.com/mkube", "", "cannot tag an image"},
		{"v0.2.0+1", "registry.example.com/mkube", "", "cannot tag an image"},
		{"v0.2.0", "registry.example.com", "", "want HOST[:PORT]/PATH"},
		{"v0.2.0", "mkube", "", "want HOST[:PORT]/PATH"},
		{"v0.2.0", "", "", "want HOST[:PORT]/PATH"},
	} {
		o, err := checkRelease(ReleaseOptions{Version: tt.version, Registry: tt.registry, Out: "out/release", Work: "out/build", Source: "."})
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q %q: %v", tt.version, tt.registry, err)
		case tt.wantErr == "" && o.Registry != tt.wantRegistry:
			t.Errorf("%q: registry %q, want %q", tt.registry, o.Registry, tt.wantRegistry)
		case tt.wantErr == "" && !filepath.IsAbs(o.Out):
			t.Errorf("out %q is not absolute", o.Out)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%q %q: %v, want a one-line error with %q", tt.version, tt.registry, err, tt.wantErr)
		}
	}
}

func TestPlatformBinaryName(t *testing.T) {
	var got []string
	for _, p := range ReleasePlatforms {
		got = append(got, p.BinaryName())
	}
	want := []string{"mkube-linux-amd64", "mkube-linux-arm64", "mkube-darwin-amd64", "mkube-darwin-arm64", "mkube-windows-amd64.exe"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("binary names %q, want %q", got, want)
	}
}

func TestWriteSums(t *testing.T) {
	dir := t.TempDir()
	names := []string{"mkube-windows-amd64.exe", "mkube-linux-amd64", "mkube-darwin-arm64"}
	for _, n := range names {
		os.WriteFile(filepath.Join(dir, n), []byte("binary "+n), 0o755)
	}
	if err := writeSums(dir, names); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	line := regexp.MustCompile(`^[0-9a-f]{64}  (mkube-[a-z0-9.-]+)$`)
	var order []string
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not `<hex>  <name>`", l)
		}
		sum, _ := cache.FileSHA256(filepath.Join(dir, m[1]))
		if !strings.HasPrefix(l, sum+"  ") {
			t.Errorf("%s: wrong sum in %q", m[1], l)
		}
		order = append(order, m[1])
	}
	if want := []string{"mkube-darwin-arm64", "mkube-linux-amd64", "mkube-windows-amd64.exe"}; !reflect.DeepEqual(order, want) {
		t.Errorf("files %q, want %q (sorted)", order, want)
	}
	// The tool it is made for agrees.
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "-c", "--quiet", "SHA256SUMS")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}
}

func TestWriteReleaseInfo(t *testing.T) {
	dir := t.TempDir()
	info := ReleaseInfo{Version: "v0.2.0", Commit: "abc", Registry: "registry.example.com/mkube",
		Digests: map[string]string{release.NodeRepo: "sha256:01", release.ISORepo: "sha256:02"}}
	if err := writeReleaseInfo(dir, info); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "release.json"))
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": "v0.2.0", "commit": "abc", "registry": "registry.example.com/mkube",
		"digests": map[string]any{"node": "sha256:01", "iso": "sha256:02"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("release.json %s, want %v", raw, want)
	}
}

// TestNodeImageFrom assembles a node image from a tiny root file system: the configuration the
// docker driver expects, one reproducible gzip layer holding the tree.
func TestNodeImageFrom(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sbin"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "lib-init"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("../lib-init", filepath.Join(root, "sbin", "init"))
	os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("node\n"), 0o644)

	img, err := nodeImageFrom(root, "mkube.local/node:v0.9.0", "recipe123")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" ||
		!reflect.DeepEqual(cf.Config.Entrypoint, []string{"/sbin/init"}) ||
		!reflect.DeepEqual(cf.Config.Env, []string{"container=docker"}) ||
		cf.Config.Labels[cache.AnnotationRecipe] != "recipe123" {
		t.Errorf("config: %s/%s %+v", cf.OS, cf.Architecture, cf.Config)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("manifest: %s with layers %+v, want one OCI gzip layer", m.MediaType, m.Layers)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Linkname
	}
	want := map[string]string{"etc/": "", "etc/hostname": "", "lib-init": "", "sbin/": "", "sbin/init": "../lib-init"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer entries %v, want %v", got, want)
	}
	again, err := nodeImageFrom(root, "mkube.local/node:v0.9.0", "recipe123")
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same tree assembled twice: %s and %s", d1, d2)
	}
}

// TestOwnImageRecipes: the release's own images have the mirror build's shape under their
// release-tagged names.
func TestOwnImageRecipes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	os.WriteFile(bin, []byte("program"), 0o755)
	for _, tt := range []struct {
		recipe     func(ref, bin string) imageRecipe
		repo, user string
		entrypoint []string
	}{
		{provisionerImage, release.ProvisionerRepo, "", []string{"/storage-provisioner"}},
		{dashboardImage, release.DashboardRepo, "65532", []string{"/dashboard"}},
	} {
		ref := ownRef(tt.repo, "v0.9.0")
		if want := "mkube.local/" + tt.repo + ":v0.9.0"; ref != want {
			t.Errorf("ownRef = %q, want %q", ref, want)
		}
		img, err := tt.recipe(ref, bin).build()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cf.Config.Entrypoint, tt.entrypoint) || cf.Config.User != tt.user {
			t.Errorf("%s: entrypoint %q user %q", tt.repo, cf.Config.Entrypoint, cf.Config.User)
		}
	}
}

func TestDropOtherISOs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"mkube-v1-amd64.iso", "mkube-v1-amd64.iso.sha256", "mkube-v1-amd64.iso.recipe",
		"mkube-v2-amd64.iso", "mkube-v2-amd64.iso.sha256", "mkube-linux-amd64", "SHA256SUMS"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	if err := dropOtherISOs(dir, "mkube-v2-amd64.iso"); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(dir); got != "SHA256SUMS,mkube-linux-amd64,mkube-v2-amd64.iso,mkube-v2-amd64.iso.sha256" {
		t.Errorf("left %s", got)
	}
}
