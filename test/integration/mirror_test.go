//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/mod/semver"

	"mkube/pkg/addons"
	"mkube/pkg/artifacts"
	"mkube/pkg/cache"
	"mkube/pkg/k8sversion"
	"mkube/pkg/netpol"
)

// TestMirror checks the mirror `make artifacts` built, the way mkube and a user reach it: binaries
// over HTTP with matching checksums, every image pulled through the registry API, and every image
// really running its component in the local Docker engine.
func TestMirror(t *testing.T) {
	v := k8sversion.Default().String()
	host := serveMirror(t)
	base := "http://" + host + "/release/" + v + "/bin/linux/amd64/"

	for _, bin := range []string{"kubeadm", "kubelet", "kubectl"} {
		body := httpGet(t, base+bin)
		sum := strings.TrimSpace(string(httpGet(t, base+bin+".sha256")))
		got := sha256.Sum256(body)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x does not match its .sha256 file %s", bin, got, sum)
		}
	}
	kubeadm := outPath(t, "mirror", "release", v, "bin", "linux", "amd64", "kubeadm")
	if got := strings.TrimSpace(run(t, kubeadm, "version", "-o", "short")); got != v {
		t.Errorf("kubeadm version -o short = %q, want %s", got, v)
	}
	kubectl := outPath(t, "mirror", "release", v, "bin", "linux", "amd64", "kubectl")
	if got := run(t, kubectl, "version", "--client"); !strings.Contains(got, v) {
		t.Errorf("kubectl version --client = %q, want %s", got, v)
	}

	refs := strings.Fields(run(t, kubeadm, "config", "images", "list", "--kubernetes-version", v))
	agnhost := artifacts.AgnhostRepo + ":" + agnhostVersion(t)
	refs = append(refs, addons.ProvisionerImage(), agnhost)
	refs = append(refs, netpol.Images()...)
	local := map[string]string{} // canonical → reference at the mirror
	for _, ref := range refs {
		r, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		at, err := name.NewTag(host+"/"+r.RepositoryStr()+":"+r.TagStr(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(at)
		if err != nil {
			t.Errorf("pull %s from the mirror: %v", at, err)
			continue
		}
		cf, err := img.ConfigFile()
		if err != nil || cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.Config.Entrypoint) == 0 {
			t.Errorf("%s: config %+v, %v", at, cf, err)
		}
		local[ref] = at.String()
	}

	// Every image runs its component: pulled into Docker from the loopback registry, as a user would.
	checks := []struct {
		ref        string
		entrypoint string
		args       []string
		want       string
	}{
		{ref: "kube-apiserver", args: []string{"--version"}, want: "Kubernetes " + v},
		{ref: "kube-controller-manager", args: []string{"--version"}, want: "Kubernetes " + v},
		{ref: "kube-scheduler", args: []string{"--version"}, want: "Kubernetes " + v},
		{ref: "kube-proxy", args: []string{"--version"}, want: "Kubernetes " + v},
		{ref: "kube-proxy", entrypoint: "iptables", args: []string{"--version"}, want: "iptables v1."},
		{ref: "kube-proxy", entrypoint: "ip6tables-save", args: []string{"--version"}, want: "ip6tables-save v1."},
		{ref: "kube-proxy", entrypoint: "iptables-legacy-restore", args: []string{"--version"}, want: "legacy"},
		{ref: "kube-proxy", entrypoint: "conntrack", args: []string{"--version"}, want: "conntrack v1."},
		{ref: "cloudnativelabs/kube-router", args: []string{"--version"}, want: "version v2.1.0"},
		{ref: "cloudnativelabs/kube-router", entrypoint: "ipset", args: []string{"--version"}, want: "ipset v"},
		{ref: "etcd", args: []string{"--version"}, want: "etcd Version: "},
		{ref: "coredns/coredns", args: []string{"-version"}, want: "CoreDNS-"},
		{ref: "pause", args: []string{"-v"}, want: "pause.c "},
		{ref: "storage-provisioner", args: []string{"-h"}, want: "-provisioner"},
		{ref: "e2e-test-images/agnhost", args: []string{"--help"}, want: "netexec"},
		{ref: "e2e-test-images/agnhost", entrypoint: "dig", args: []string{"-v"}, want: "DiG 9"},
		{ref: "e2e-test-images/agnhost", entrypoint: "curl", args: []string{"--version"}, want: "curl "},
		{ref: "e2e-test-images/agnhost", entrypoint: "/coredns", args: []string{"-version"}, want: "CoreDNS-"},
		{ref: "e2e-test-images/agnhost", entrypoint: "id", args: []string{"user-defined-in-image"}, want: "50000(group-defined-in-image)"},
		{ref: "e2e-test-images/agnhost", entrypoint: "sh", args: []string{"-c", "command -v nc ip iperf bash seq >/dev/null && ls /uploads /localhost.crt /agnhost-2 && echo tools-ok"}, want: "tools-ok"},
	}
	for _, c := range checks {
		var at string
		for ref, l := range local {
			if r, _ := name.NewTag(ref); r.RepositoryStr() == c.ref {
				at = l
			}
		}
		if at == "" {
			t.Errorf("no image for %s in the mirror", c.ref)
			continue
		}
		args := []string{"run", "--rm", "--network", "none"}
		if c.entrypoint != "" {
			args = append(args, "--entrypoint", c.entrypoint)
		}
		args = append(args, at)
		out, _ := runErr("docker", append(args, c.args...)...)
		if !strings.Contains(out, c.want) {
			t.Errorf("docker run %s %s %v: want %q in output:\n%s", c.ref, c.entrypoint, c.args, c.want, out)
		}
	}
}

// TestMirrorAgnhostServes deploys the offline test app as a user would and asks it over HTTP.
func TestMirrorAgnhostServes(t *testing.T) {
	host := serveMirror(t)
	img := host + "/e2e-test-images/agnhost:" + agnhostVersion(t)
	run(t, "docker", "pull", "-q", img)
	id := strings.TrimSpace(run(t, "docker", "run", "-d", "--rm", "-p", "127.0.0.1::8080", img, "netexec", "--http-port=8080"))
	t.Cleanup(func() { runErr("docker", "rm", "-f", id) })
	port := strings.TrimSpace(run(t, "docker", "port", id, "8080/tcp"))
	var body string
	for i := 0; i < 50 && !strings.Contains(body, "NOW:"); i++ {
		resp, err := http.Get("http://" + port + "/echo?msg=NOW:hello")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		if body == "" {
			run(t, "sleep", "0.2")
		}
	}
	if body != "NOW:hello" {
		t.Errorf("agnhost netexec /echo = %q", body)
	}
}

// TestMirrorRebuildIsIncrementalAndBadInputIsHarmless reruns the build: nothing is rebuilt; then
// asks for versions it must refuse, and checks the mirror is untouched.
func TestMirrorRebuildIsIncrementalAndBadInputIsHarmless(t *testing.T) {
	tool := outPath(t, "mkube-mirror")
	out := run(t, tool, "build", "--mirror", outPath(t, "mirror"), "--work", outPath(t, "build"), "--source", repoRoot(t))
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "assembling") || (strings.Contains(line, "building") && !strings.Contains(line, "up to date")) {
			t.Errorf("second build rebuilt something: %q", line)
		}
	}
	index := outPath(t, "mirror", "images", "index.json")
	before, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1.99.0", "v1.20.0", "nonsense"} {
		out, err := runErr(tool, "build", "--kubernetes-version", v, "--mirror", outPath(t, "mirror"), "--work", outPath(t, "build"))
		if err == nil {
			t.Errorf("build %s succeeded", v)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 {
			t.Errorf("build %s: want one line, got %q", v, out)
		}
		if v != "nonsense" && !strings.Contains(out, "v1.31.x through v1.37.x") {
			t.Errorf("build %s: error does not name the supported range: %q", v, out)
		}
	}
	after, _ := os.ReadFile(index)
	if string(before) != string(after) {
		t.Error("a refused build changed the mirror")
	}
}

// agnhostVersion is the tag of the agnhost image in the mirror (agnhost's VERSION file).
func agnhostVersion(t *testing.T) string {
	t.Helper()
	// With the test images the mirror also holds the previous agnhost: the newest is the cluster's.
	newest := ""
	for _, ref := range mirrorRefs(t) {
		if tag, ok := strings.CutPrefix(ref, artifacts.AgnhostRepo+":"); ok && (newest == "" || semver.Compare("v"+tag, "v"+newest) > 0) {
			newest = tag
		}
	}
	if newest == "" {
		t.Fatal("no agnhost image in the mirror: run make artifacts")
	}
	return newest
}

// mirrorRefs are the references of every image in the mirror make artifacts built.
func mirrorRefs(t *testing.T) []string {
	t.Helper()
	store, err := cache.OpenImageStore(outPath(t, "mirror", "images"))
	if err != nil {
		t.Fatal(err)
	}
	es, err := store.Entries()
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]string, 0, len(es))
	for _, e := range es {
		refs = append(refs, e.Ref)
	}
	return refs
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
