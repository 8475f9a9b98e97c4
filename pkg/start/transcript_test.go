package start_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/client-go/rest"

	"mkube/internal/golden"
	"mkube/pkg/addons"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/out"
	"mkube/pkg/start"
)

// The version's images as the node's kubeadm lists them (the fake node answers with these).
var kubeadmImages = []string{
	"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/kube-controller-manager:v1.37.2",
	"registry.k8s.io/kube-scheduler:v1.37.2", "registry.k8s.io/kube-proxy:v1.37.2",
	"registry.k8s.io/coredns/coredns:v1.13.1", "registry.k8s.io/pause:3.10.1", "registry.k8s.io/etcd:3.6.6-0",
}

// mirror serves Kubernetes binaries in dl.k8s.io's layout and an OCI registry with small random
// images under every name a start pulls, on loopback.
func mirror(t *testing.T) *httptest.Server {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.HandleFunc("/release/", func(w http.ResponseWriter, r *http.Request) {
		body := "fake " + filepath.Base(strings.TrimSuffix(r.URL.Path, ".sha256")) + "\n"
		if strings.HasSuffix(r.URL.Path, ".sha256") {
			fmt.Fprintf(w, "%x\n", sha256.Sum256([]byte(body)))
			return
		}
		fmt.Fprint(w, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	refs := append([]string{"example.com/mkube-node:test"}, kubeadmImages...) // the ssh profile's node image
	for _, a := range addons.All {
		refs = append(refs, a.Images...)
	}
	for _, ref := range refs {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := name.NewTag(srv.Listener.Addr().String()+"/"+tag.RepositoryStr()+":"+tag.TagStr(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// node answers what the start asks the node (everything else succeeds silently).
func nodeReplies(args []string) (string, int) {
	switch strings.Join(args, " ") {
	case "/usr/local/bin/kubeadm config images list --kubernetes-version v1.37.2":
		return strings.Join(kubeadmImages, "\n") + "\n", 0
	case "stat -fc %T /sys/fs/cgroup/":
		return "cgroup2fs\n", 0
	case "/bin/sh -c ls /etc/kubernetes/manifests/*.yaml >/dev/null 2>&1":
		return "", 2 // a new node has no static pods yet
	}
	return "", 0
}

// TestTranscripts drives start, addons enable, stop, start again and delete through fakes, for a
// container and a VM profile on each host OS, and compares what was sent to the node (and the
// driver's calls) with golden files: a change in what mkube does to a node shows in review.
func TestTranscripts(t *testing.T) {
	srv := mirror(t)
	iso := filepath.Join(t.TempDir(), "mkube.iso")
	os.WriteFile(iso, []byte("fake iso"), 0o644)
	os.WriteFile(iso+".sha256", []byte(fmt.Sprintf("%x\n", sha256.Sum256([]byte("fake iso")))), 0o644)
	for _, host := range []string{"linux", "darwin", "windows"} {
		for _, kind := range []string{"docker", "kvm2", "ssh"} {
			t.Run(host+"-"+kind, func(t *testing.T) {
				log := &drivertest.Log{}
				fake := drivertest.NewDriver(log)
				fake.Node.Reply = nodeReplies
				baseImage := "mkube.local/node:v0.1.0"
				if kind == "ssh" { // the user's machine and key; the runtime from a node image in a registry
					fake.EP.SSHKey = "/home/u/.ssh/id_ed25519"
					baseImage = srv.Listener.Addr().String() + "/mkube-node:test"
				}
				entry := driver.Entry{Name: kind, Supported: true, ISO: kind == "kvm2", NodeFiles: kind == "ssh",
					Health: func(context.Context, driver.Settings) driver.Health {
						return driver.Health{Installed: true, Running: true, Healthy: true}
					},
					New: func(string, driver.Options) (driver.Driver, error) { fake.Reopen(); return fake, nil }}
				home := config.Home(filepath.Join(t.TempDir(), "a", "b", ".mkube"))
				id, err := home.Open()
				if err != nil {
					t.Fatal(err)
				}
				var output bytes.Buffer
				m := &cluster.Manager{Home: home, HomeID: id, Out: out.New(&output, &output, 0), Drivers: driver.NewRegistry(entry),
					KubeconfigPaths: []string{filepath.Join(t.TempDir(), "kubeconfig")}, HostOS: host, HostArch: "amd64",
					NewApplier: fakeApplier(log)}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				opts := start.Options{Profile: "demo", Driver: kind, KubernetesVersion: "v1.37.2", CPUs: 2, Memory: "2048mb",
					DiskSize: "20000mb", BinaryMirror: srv.URL + "/release", ImageRepository: srv.Listener.Addr().String(),
					ISOURLs: []string{iso}, BaseImage: baseImage, Wait: "none", WaitTimeout: time.Minute}
				var transcript strings.Builder
				step := func(title string, run func() error) {
					t.Helper()
					if err := run(); err != nil {
						t.Fatalf("%s: %v\n%s", title, err, output.String())
					}
					if leak := fake.Leaks(); leak != "" {
						t.Errorf("%s left %s", title, leak)
					}
					lines := log.Take()
					for i := range lines {
						lines[i] = strings.ReplaceAll(lines[i], string(home), "$MKUBE_HOME")
						lines[i] = strings.ReplaceAll(lines[i], srv.Listener.Addr().String(), "$MIRROR")
					}
					if strings.HasPrefix(title, "start") {
						lines = canonical(lines)
					}
					fmt.Fprintf(&transcript, "== mkube %s\n%s\n", title, strings.Join(lines, "\n"))
				}
				res := start.HostResources{CPUs: 4, MemoryMB: 8192}
				step("start", func() error { return start.Run(ctx, m, opts, res) })
				step("addons enable dashboard", func() error { return m.AddonEnable(ctx, "demo", "dashboard") })
				step("stop", func() error { return m.Stop(ctx, "demo") })
				step("start (restart)", func() error { return start.Run(ctx, m, opts, res) })
				step("delete", func() error { return m.Delete(ctx, "demo", false) })
				golden.Check(t, "transcript-"+host+"-"+kind+".golden", []byte(transcript.String()))
			})
		}
	}
}

// canonical orders what ran concurrently: the image stream into containerd goes on beside the
// other preparations, so its lines are moved after them (each side keeps its own order).
func canonical(lines []string) []string {
	var main, stream []string
	for _, l := range lines {
		if strings.Contains(l, "preload") || strings.Contains(l, "images import") {
			stream = append(stream, "  (provision, in parallel with the above) "+l)
			continue
		}
		main = append(main, l)
	}
	return append(main, stream...)
}

// fakeApplier records the addons applied and removed.
func fakeApplier(log *drivertest.Log) func(cfg *rest.Config) (cluster.Applier, error) {
	return func(*rest.Config) (cluster.Applier, error) { return drivertest.Applier{Log: log}, nil }
}
