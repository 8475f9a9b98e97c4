package start

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mkube/pkg/cache"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// loadingDriver is the fake driver with an engine's image store (ref → ID): the docker driver's
// ImageID and LoadImage.
type loadingDriver struct {
	*drivertest.Driver
	images map[string]string
	loads  int
}

func (d *loadingDriver) ImageID(_ context.Context, ref string) (string, error) {
	return d.images[ref], nil
}

// LoadImage tags what the archive's manifest names with the image's config digest, as Docker does.
func (d *loadingDriver) LoadImage(_ context.Context, archive func(io.Writer) error) error {
	var b bytes.Buffer
	if err := archive(&b); err != nil {
		return err
	}
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Name == "manifest.json" {
			var m []struct {
				Config   string
				RepoTags []string
			}
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				return err
			}
			for _, e := range m {
				for _, tag := range e.RepoTags {
					d.images[tag] = e.Config
				}
			}
		}
	}
	d.loads++
	return nil
}

type nodeImageCase struct {
	name      string
	mirror    string
	baseImage string
	state     driver.State
	engine    string // the engine's ID of baseImage before the step
	want      string // the engine's ID after it
	loads     int
	wantErr   string // a reason ID or text in the error's advice
	warns     bool
}

// TestNodeImageStep runs in a development build and, from make test, in one stamped as a release
// whose node image digest no test registry serves: there a pinned pull must be refused.
func TestNodeImageStep(t *testing.T) {
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	push := func(ref string, seed int64) string {
		img, err := random.Image(64<<10, 2, random.WithSource(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		dst, _ := name.ParseReference(ref)
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigName()
		return cfg.String()
	}
	nodeID := push(host+"/m/node:"+release.Version(), 1)
	userID := push(host+"/me/node:1", 2)
	local := release.LocalRef(release.NodeRepo)
	pinned := release.Digest(release.NodeRepo) != ""
	// what a pull of the release's node image from the test mirror gives: the image, or a refusal
	pulled, pulledErr, pulledLoads := nodeID, "", 1
	if pinned {
		pulled, pulledErr, pulledLoads = "", "INET_DOWNLOAD", 0
	}
	tests := []nodeImageCase{
		{"pulled from the mirror and loaded", host + "/m", local, driver.Nonexistent, "", pulled, pulledLoads, pulledErr, false},
		{"an existing machine needs no image", host + "/m", local, driver.Stopped, "", "", 0, "", false},
		{"a mirror without it", host + "/nosuch", local, driver.Nonexistent, "", "", 0, "INET_DOWNLOAD", false},
		{"a user's --base-image from its own registry, not the mirror", host + "/m", host + "/me/node:1", driver.Nonexistent, "", userID, 1, "", false},
		{"a user's --base-image in the engine is used", host + "/m", host + "/me/node:1", driver.Nonexistent, "sha256:mine", "sha256:mine", 0, "", false},
	}
	if pinned {
		tests = append(tests,
			nodeImageCase{"another image under the release's name, refused by the registry", host + "/m", local, driver.Nonexistent, "sha256:dev", "sha256:dev", 0, "INET_DOWNLOAD", false},
			nodeImageCase{"the engine's copy, offline: used with a warning", "127.0.0.1:1/m", local, driver.Nonexistent, "sha256:dev", "sha256:dev", 0, "", true})
	} else {
		tests = append(tests,
			nodeImageCase{"already in the engine", host + "/m", local, driver.Nonexistent, "sha256:built", "sha256:built", 0, "", false},
			nodeImageCase{"a development build without a mirror names the fixes", "", local, driver.Nonexistent, "", "", 0, "make node-image", false},
			nodeImageCase{"a development build uses make node-image's", "", local, driver.Nonexistent, "sha256:built", "sha256:built", 0, "", false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := drivertest.NewDriver(&drivertest.Log{})
			if tt.state != driver.Nonexistent {
				fake.Create(context.Background(), driver.Spec{Name: "demo"})
				fake.Stop(context.Background())
				fake.Log.Take()
			}
			ref, _ := cache.CanonicalRef(tt.baseImage)
			d := &loadingDriver{Driver: fake, images: map[string]string{}}
			if tt.engine != "" {
				d.images[tt.baseImage] = tt.engine
			}
			var output bytes.Buffer
			home := config.Home(filepath.Join(t.TempDir(), "a", "b", ".mkube"))
			s := &State{m: &cluster.Manager{Home: home, Out: out.New(&output, &output, 0)},
				Profile: &config.Profile{Name: "demo", Mirror: tt.mirror, BaseImage: tt.baseImage}, Driver: d, Entry: driver.Entry{Name: "docker"}}
			err := nodeImageStep(context.Background(), s)
			if tt.wantErr != "" {
				re, ok := reason.As(err)
				if !ok || !(re.Kind.ID == tt.wantErr || strings.Contains(re.Advice, tt.wantErr)) {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("%v\n%s", err, output.String())
			}
			got := d.images[tt.baseImage]
			if ref != tt.baseImage && d.images[ref] != "" {
				got = d.images[ref] // docker load names it canonically
			}
			if d.loads != tt.loads || got != tt.want {
				t.Errorf("loads = %d, engine has %q; want %d, %q\n%s", d.loads, got, tt.loads, tt.want, output.String())
			}
			if warned := strings.Contains(output.String(), "could not check"); warned != tt.warns {
				t.Errorf("warning printed: %v, want %v\n%s", warned, tt.warns, output.String())
			}
		})
	}
}

// A development build without a mirror names the engine that lacks the node image, and for an
// engine other than Docker (which `make node-image` builds into) how to copy it over.
func TestNodeImageSourceNamesTheEngine(t *testing.T) {
	if release.Registry() != "" {
		t.Skip("a release build pulls the node image from its registry")
	}
	local := release.LocalRef(release.NodeRepo)
	for engine, want := range map[string]string{
		"docker": "build it with `make node-image`, pass --mirror",
		"podman": "build it with `make node-image` and copy it (docker save " + local + " | podman load)",
	} {
		s := &State{Profile: &config.Profile{Name: "demo", BaseImage: local}, Entry: driver.Entry{Name: engine}}
		_, err := nodeImageSource(local, local, "", s)
		re, ok := reason.As(err)
		if !ok {
			t.Errorf("%s: %v, want a reason error", engine, err)
			continue
		}
		if !strings.HasPrefix(re.Advice, want) || !strings.Contains(err.Error(), "not in the local "+engine+" engine") {
			t.Errorf("%s: %v (advice %q), want advice starting %q", engine, err, re.Advice, want)
		}
	}
}
