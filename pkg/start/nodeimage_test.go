package start

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// loadingDriver is the fake driver with an engine's image store: the docker driver's HasImage and
// LoadImage.
type loadingDriver struct {
	*drivertest.Driver
	images map[string]bool
	loads  int
}

func (d *loadingDriver) HasImage(_ context.Context, ref string) (bool, error) { return d.images[ref], nil }

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
			raw, _ := io.ReadAll(tr)
			for ref := range d.images {
				delete(d.images, ref)
			}
			// docker load tags what the archive's manifest names
			for _, f := range strings.Split(string(raw), `"`) {
				if strings.HasPrefix(f, "mkube.local/") {
					d.images[f] = true
				}
			}
		}
	}
	d.loads++
	return nil
}

func TestNodeImageStep(t *testing.T) {
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := name.ParseReference(host + "/m/node:" + release.Version())
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	local := release.LocalRef(release.NodeRepo)
	tests := []struct {
		name      string
		mirror    string
		baseImage string
		state     driver.State
		inEngine  bool
		loads     int
		wantErr   string // a reason ID or text in the error
	}{
		{"pulled from the mirror and loaded", host + "/m", local, driver.Nonexistent, false, 1, ""},
		{"already in the engine", host + "/m", local, driver.Nonexistent, true, 0, ""},
		{"an existing machine needs no image", host + "/m", local, driver.Stopped, false, 0, ""},
		{"a development build without a mirror names the fixes", "", local, driver.Nonexistent, false, 0, "make node-image"},
		{"a mirror without it", host + "/nosuch", local, driver.Nonexistent, false, 0, "INET_DOWNLOAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := drivertest.NewDriver(&drivertest.Log{})
			if tt.state != driver.Nonexistent {
				fake.Create(context.Background(), driver.Spec{Name: "demo"})
				if tt.state == driver.Stopped {
					fake.Stop(context.Background())
				}
				fake.Log.Take()
			}
			d := &loadingDriver{Driver: fake, images: map[string]bool{}}
			if tt.inEngine {
				d.images[local] = true
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
				if d.loads != 0 {
					t.Error("a failed step loaded an image")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, output.String())
			}
			if d.loads != tt.loads || !d.images[local] && tt.loads > 0 {
				t.Errorf("loads = %d (engine %v), want %d", d.loads, d.images, tt.loads)
			}
			if tt.loads > 0 && !strings.Contains(output.String(), "Pulling base image "+host+"/m/node:"+release.Version()) {
				t.Errorf("output:\n%s", output.String())
			}
		})
	}
}
