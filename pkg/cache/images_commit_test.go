package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// commit moves only what this pull verified into the layout, and notices a blob that left the
// layout (a concurrent delete's GC) since the pull found it there.
func TestCommit(t *testing.T) {
	ctx := context.Background()
	blob := func(s string) (v1.Descriptor, []byte) {
		h, n, _ := v1.SHA256(bytes.NewReader([]byte(s)))
		return v1.Descriptor{MediaType: types.OCILayer, Size: n, Digest: h}, []byte(s)
	}
	cfg, cfgData := blob(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cfg.MediaType = types.OCIConfigJSON
	layer, layerData := blob("layer")
	raw, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}})
	img := &pulledImage{raw: raw, mediaType: types.OCIManifestSchema1, blobs: []v1.Descriptor{cfg, layer}}

	tests := []struct {
		name     string
		inLayout []int // indices of img.blobs already in blobs/
		partial  []int // indices with a verified partial
		fetched  []int // indices this pull fetched
		wantErr  error
	}{
		{name: "a blob left the layout", inLayout: []int{0}, fetched: []int{}, wantErr: errBlobGone},
		{name: "fetched blobs move in", partial: []int{0, 1}, fetched: []int{0, 1}},
		{name: "a blob another pull moved in first", inLayout: []int{0}, partial: []int{0, 1}, fetched: []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := OpenImages(ctx, filepath.Join(t.TempDir(), "images"))
			if err != nil {
				t.Fatal(err)
			}
			data := [][]byte{cfgData, layerData}
			write := func(p string, b []byte) {
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range tt.inLayout {
				write(c.store.blobPath(img.blobs[i].Digest), data[i])
			}
			for _, i := range tt.partial {
				write(c.partialBlob(img.blobs[i].Digest), data[i])
			}
			fetched := map[v1.Hash]bool{}
			for _, i := range tt.fetched {
				fetched[img.blobs[i].Digest] = true
			}
			// The GC of a delete in another process, before this pull takes the lock.
			if tt.wantErr != nil {
				os.Remove(c.store.blobPath(img.blobs[0].Digest))
			}
			err = c.commit(ctx, "registry.k8s.io/x:1", "r", img, fetched)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("commit = %v, want %v", err, tt.wantErr)
			}
			es, _ := c.store.Entries()
			if tt.wantErr != nil {
				if len(es) != 0 {
					t.Errorf("indexed an image with a blob missing: %+v", es)
				}
				return
			}
			if len(es) != 1 {
				t.Fatalf("entries: %+v", es)
			}
			got, err := c.store.Image("registry.k8s.io/x:1")
			if err != nil {
				t.Fatal(err)
			}
			if cf, err := got.RawConfigFile(); err != nil || !bytes.Equal(cf, cfgData) {
				t.Errorf("config: %s, %v", cf, err)
			}
			for _, b := range img.blobs {
				if _, err := os.Stat(c.partialBlob(b.Digest)); !os.IsNotExist(err) {
					t.Errorf("partial %s left", b.Digest)
				}
			}
		})
	}
}
