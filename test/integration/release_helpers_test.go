//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// publishedRelease is a release of this source tree, made once per test run with `make release`
// and `make release-mirror` into a real OCI registry (Debian's build of distribution) on loopback.
// mkube reaches the registry through proxy, which lets a test cut, slow down or corrupt a blob.
type publishedRelease struct {
	Version  string            `json:"version"`
	Registry string            `json:"registry"`
	Digests  map[string]string `json:"digests"`
	dir      string            // out/release
	proxy    *registryProxy
}

// mirror is the --mirror value that reaches the release through the proxy.
func (r *publishedRelease) mirror() string {
	_, path, _ := strings.Cut(r.Registry, "/")
	return r.proxy.host + "/" + path
}

var (
	releaseOnce  sync.Once
	theRelease   *publishedRelease
	releaseErr   error
	releaseStops []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, stop := range releaseStops {
		stop()
	}
	os.Exit(code)
}

// publishRelease returns the run's release, publishing it the first time.
func publishRelease(t *testing.T) *publishedRelease {
	t.Helper()
	releaseOnce.Do(func() { theRelease, releaseErr = publish(repoRoot(t)) })
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return theRelease
}

func publish(root string) (*publishedRelease, error) {
	storage, err := os.MkdirTemp("", "mkube-itest-registry-")
	if err != nil {
		return nil, err
	}
	releaseStops = append(releaseStops, func() { os.RemoveAll(storage) })
	host, err := startRegistry(storage)
	if err != nil {
		return nil, err
	}
	registry := host + "/mkube"
	begin := time.Now()
	for _, args := range [][]string{
		{"release", "RELEASE_REGISTRY=" + registry},
		{"release-mirror", "RELEASE_REGISTRY=" + registry},
	} {
		cmd := exec.Command("make", append([]string{"-C", root}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, tailLines(string(out), 40))
		}
		fmt.Printf("=== make %s took %s\n%s\n", args[0], time.Since(begin).Round(time.Second), tailLines(string(out), 15))
		begin = time.Now()
	}
	r := &publishedRelease{dir: filepath.Join(root, "out", "release")}
	raw, err := os.ReadFile(filepath.Join(r.dir, "release.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("release.json: %w", err)
	}
	if r.proxy, err = newRegistryProxy(host); err != nil {
		return nil, err
	}
	releaseStops = append(releaseStops, r.proxy.close)
	return r, nil
}

// startRegistry runs Debian's docker-registry (distribution) on a free loopback port, storing in dir.
func startRegistry(dir string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	host := ln.Addr().String()
	ln.Close()
	config := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command("docker-registry", "serve", config)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("docker-registry (hack/install-deps.sh --test installs it): %w", err)
	}
	releaseStops = append(releaseStops, func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host, nil
			}
		}
	}
	return "", fmt.Errorf("docker-registry did not answer on %s", host)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// registryProxy passes requests to the registry and records each blob GET; for one blob it can
// slow the answer down (so a test can interrupt a pull half way) or flip a byte in it.
type registryProxy struct {
	host  string
	srv   *httptest.Server
	mu    sync.Mutex
	log   []blobGet // every blob GET; since marks where the current interference began
	since int
	// the blob being interfered with, how, and bytes of it served so far
	target string
	mode   string // "", "slow", "tamper"
	served int64
}

type blobGet struct {
	Path, Range string
}

func newRegistryProxy(registry string) (*registryProxy, error) {
	u, err := url.Parse("http://" + registry)
	if err != nil {
		return nil, err
	}
	p := &registryProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = p.modify
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			p.mu.Lock()
			p.log = append(p.log, blobGet{Path: r.URL.Path, Range: r.Header.Get("Range")})
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	p.host = strings.TrimPrefix(p.srv.URL, "http://")
	return p, nil
}

func (p *registryProxy) close() { p.srv.Close() }

// interfere sets how the blob with digest is served from now on ("" serves it faithfully).
func (p *registryProxy) interfere(digest, mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target, p.mode, p.served, p.since = digest, mode, 0, len(p.log)
}

// gets are the blob GETs since the last interfere; all of them with all.
func (p *registryProxy) gets(all bool) []blobGet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if all {
		return append([]blobGet(nil), p.log...)
	}
	return append([]blobGet(nil), p.log[p.since:]...)
}

func (p *registryProxy) bytesServed() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served
}

func (p *registryProxy) modify(resp *http.Response) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.target == "" || !strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+p.target) || resp.Request.Method != http.MethodGet {
		return nil
	}
	resp.Body = &meddler{ReadCloser: resp.Body, p: p, mode: p.mode}
	return nil
}

// meddler counts, slows down or corrupts a blob's body.
type meddler struct {
	io.ReadCloser
	p    *registryProxy
	mode string
	off  int64
}

func (m *meddler) Read(b []byte) (int, error) {
	if m.mode == "slow" {
		if len(b) > 64<<10 {
			b = b[:64<<10]
		}
		time.Sleep(20 * time.Millisecond) // about 3 MB/s
	}
	n, err := m.ReadCloser.Read(b)
	if m.mode == "tamper" && m.off <= 4096 && m.off+int64(n) > 4096 {
		b[4096-m.off] ^= 0xff
	}
	m.off += int64(n)
	m.p.mu.Lock()
	m.p.served += int64(n)
	m.p.mu.Unlock()
	return n, err
}

// hideMkubeImages leaves the Docker engine without any mkube.local image for the test: each is
// tagged aside and untagged (the content stays, so nothing is rebuilt), and put back afterwards.
func hideMkubeImages(t *testing.T) {
	t.Helper()
	out := run(t, "docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "mkube.local/*")
	for _, ref := range strings.Fields(out) {
		aside := "mkube-itest-aside/" + strings.NewReplacer("mkube.local/", "", ":", "-").Replace(ref) + ":kept"
		run(t, "docker", "tag", ref, aside)
		run(t, "docker", "rmi", ref)
		t.Cleanup(func() {
			runErr("docker", "tag", aside, ref)
			runErr("docker", "rmi", aside)
		})
	}
	if left := strings.TrimSpace(run(t, "docker", "images", "-q", "mkube.local/*")); left != "" {
		t.Fatalf("mkube images left in the engine: %s", left)
	}
}
