//go:build integration

package integration

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// releaseBinary copies the release's linux/amd64 binary alone into an empty directory outside the
// source tree, nested a few levels deep, as a user who downloaded it would have it.
func releaseBinary(t *testing.T, r *publishedRelease) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "downloads", "mkube", r.Version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(r.dir, "mkube-linux-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "mkube")
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// nodeLayer is the digest of the release node image's largest layer.
func nodeLayer(t *testing.T, r *publishedRelease) (string, int64) {
	t.Helper()
	ref, err := name.ParseReference(r.Registry+"/node@"+r.Digests["node"], name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var digest string
	var size int64
	for _, l := range m.Layers {
		if l.Size > size {
			digest, size = l.Digest.String(), l.Size
		}
	}
	return digest, size
}

func TestRelease(t *testing.T) {
	r := publishRelease(t)

	t.Run("SHA256SUMS and every platform's binary", func(t *testing.T) {
		out := run(t, "sh", "-c", "cd "+r.dir+" && sha256sum -c SHA256SUMS")
		for _, b := range []struct {
			file, check string
		}{
			{"mkube-linux-amd64", "elf/x86-64"}, {"mkube-linux-arm64", "elf/aarch64"},
			{"mkube-darwin-amd64", "macho/x86-64"}, {"mkube-darwin-arm64", "macho/arm64"},
			{"mkube-windows-amd64.exe", "pe/x86-64"},
		} {
			if !strings.Contains(out, b.file+": OK") {
				t.Errorf("SHA256SUMS does not check %s:\n%s", b.file, out)
			}
			if got := binaryPlatform(t, filepath.Join(r.dir, b.file)); got != b.check {
				t.Errorf("%s is %s, want %s", b.file, got, b.check)
			}
			// A Linux mkube built without cgo has no kvm2 driver: it links the C library.
			if f, err := elf.Open(filepath.Join(r.dir, b.file)); err == nil {
				libs, _ := f.ImportedLibraries()
				f.Close()
				if !slices.Contains(libs, "libc.so.6") {
					t.Errorf("%s is not built with cgo (imports %v): it has no kvm2 driver", b.file, libs)
				}
			}
		}
		// The Linux binaries run here: amd64 natively, arm64 under qemu-user with Debian's arm64 C library.
		for _, cmd := range [][]string{
			{filepath.Join(r.dir, "mkube-linux-amd64")},
			{"qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", filepath.Join(r.dir, "mkube-linux-arm64")},
		} {
			var v struct {
				Version  string            `json:"mkubeVersion"`
				Registry string            `json:"releaseRegistry"`
				Images   map[string]string `json:"releaseImages"`
			}
			raw := run(t, cmd[0], append(cmd[1:], "version", "-o", "json")...)
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				t.Fatalf("%s version -o json: %v\n%s", cmd, err, raw)
			}
			if v.Version != r.Version || v.Registry != r.Registry {
				t.Errorf("%s version -o json: %s", cmd, raw)
			}
			for _, repo := range []string{"node", "iso", "storage-provisioner", "dashboard"} {
				want := fmt.Sprintf("%s/%s:%s@%s", r.Registry, repo, r.Version, r.Digests[repo])
				if v.Images[repo] != want || !strings.HasPrefix(r.Digests[repo], "sha256:") {
					t.Errorf("%s version -o json: %s is %q, want %q", cmd, repo, v.Images[repo], want)
				}
			}
		}
	})

	hideMkubeImages(t)
	c := newCluster(t, "")
	c.bin = releaseBinary(t, r)
	// Nothing but the registry on loopback: any other address mkube's HTTP clients try goes to a
	// proxy that does not exist (Go never proxies loopback).
	c.extraEnv = []string{"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY="}
	const p = "itest-release"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	t.Cleanup(func() { c.dumpOnFailure(p) })
	nodeImage := "mkube.local/node:" + r.Version
	t.Cleanup(func() { runErr("docker", "rmi", nodeImage) })
	args := []string{"start", "-p", p, "--driver=docker", "--mirror=" + r.mirror()}
	layer, size := nodeLayer(t, r)
	t.Logf("node image: layer %s, %.1f MB compressed", layer, float64(size)/1e6)

	t.Run("a tampered blob is refused", func(t *testing.T) {
		r.proxy.interfere(layer, "tamper")
		out, code := c.run(args...)
		if code == 0 || !strings.Contains(out, "does not match") {
			t.Errorf("exit %d, want a refusal naming the digest mismatch:\n%s", code, out)
		}
		if _, err := docker("image", "inspect", nodeImage); err == nil {
			t.Errorf("the tampered node image reached the Docker engine")
		}
	})

	t.Run("an interrupted pull resumes", func(t *testing.T) {
		r.proxy.interfere(layer, "slow")
		cut := size / 3
		_, code := c.startSignalledWhen(os.Interrupt, func() bool { return r.proxy.bytesServed() > cut }, args...)
		if code == 0 {
			t.Fatal("the interrupted start exited 0")
		}
		served := r.proxy.bytesServed()
		r.proxy.interfere(layer, "")
		begin := time.Now()
		out := c.must(append(args, "-v", "1")...)
		t.Logf("start after the interruption: %s", time.Since(begin).Round(100*time.Millisecond))
		var from int64 = -1
		for _, g := range r.proxy.gets(false) {
			if strings.HasSuffix(g.Path, layer) {
				if m := regexp.MustCompile(`^bytes=(\d+)-(\d*)$`).FindStringSubmatch(g.Range); m != nil {
					from, _ = strconv.ParseInt(m[1], 10, 64)
				}
			}
		}
		if from <= 0 || from > served || r.proxy.bytesServed() > size-from {
			t.Errorf("the pull did not resume: served %d of %d before the interruption, asked for bytes=%d-, served %d after (requests: %+v)",
				served, size, from, r.proxy.bytesServed(), r.proxy.gets(false))
		}
		if !strings.Contains(out, "Pulling base image") || !strings.Contains(out, "MiB") {
			t.Errorf("no byte-accurate progress for the node image:\n%s", out)
		}
		if !strings.Contains(out, "Done!") {
			t.Errorf("start output:\n%s", out)
		}
	})

	t.Run("everything came from the registry", func(t *testing.T) {
		// No other source was given: binaries and images came through the proxy.
		var paths []string
		for _, g := range r.proxy.gets(true) {
			paths = append(paths, g.Path)
		}
		all := strings.Join(paths, "\n")
		for _, want := range []string{"/kubernetes-binaries/", "/kube-apiserver/", "/storage-provisioner/", "/node/"} {
			if !strings.Contains(all, want) {
				t.Errorf("no blob of %s was pulled from the mirror:\n%s", want, all)
			}
		}
	})

	t.Run("the default storage class binds a PVC", func(t *testing.T) {
		pvc := filepath.Join(t.TempDir(), "pvc.yaml")
		os.WriteFile(pvc, []byte("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 10Mi\n"), 0o644)
		c.kubectl(p, "apply", "-f", pvc)
		eventually(t, 3*time.Minute, func() string {
			if phase := c.kubectl(p, "get", "pvc", "data", "-o", "jsonpath={.status.phase}"); phase != "Bound" {
				return "pvc is " + phase
			}
			return ""
		})
	})

	t.Run("dashboard --url answers", func(t *testing.T) {
		c.must("-p", p, "addons", "enable", "dashboard")
		url, stop := c.background(nil, "-p", p, "dashboard", "--url")
		defer stop()
		eventually(t, 2*time.Minute, func() string {
			body, err := get(url, "")
			if err != nil || !strings.Contains(body, "mkube dashboard") {
				return fmt.Sprintf("%v %.200q", err, body)
			}
			return ""
		})
	})

	c.must("-p", p, "delete")
}

// binaryPlatform reads an executable's format and machine: elf/x86-64, macho/arm64, pe/x86-64, …
func binaryPlatform(t *testing.T, path string) string {
	t.Helper()
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		return "elf/" + map[elf.Machine]string{elf.EM_X86_64: "x86-64", elf.EM_AARCH64: "aarch64"}[f.Machine]
	}
	if f, err := macho.Open(path); err == nil {
		defer f.Close()
		return "macho/" + map[macho.Cpu]string{macho.CpuAmd64: "x86-64", macho.CpuArm64: "arm64"}[f.Cpu]
	}
	if f, err := pe.Open(path); err == nil {
		defer f.Close()
		return "pe/" + map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "x86-64"}[f.Machine]
	}
	return "unknown"
}
