package cluster

import (
	"context"
	"strings"
	"testing"

	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/node"
)

// TestAddonMarkers: the node's markers decide what is applied and removed; an addon an older
// mkube applied with kubectl (legacy marker, unlabelled objects) is applied once before it is
// removed, so Remove finds its objects by their label.
func TestAddonMarkers(t *testing.T) {
	t.Parallel()
	manifest := []byte("kind: ConfigMap")
	tests := []struct {
		name    string
		markers map[string]string // marker → value, before
		do      func(context.Context, Applier, driver.Runner) error
		want    string // the applier's calls
	}{
		{"apply, none before", nil, func(ctx context.Context, a Applier, r driver.Runner) error {
			return ApplyAddon(ctx, a, r, "demo", manifest)
		}, "apply demo"},
		{"apply, same manifests applied", map[string]string{"addon-ssa-demo": manifestDigest(manifest)}, func(ctx context.Context, a Applier, r driver.Runner) error {
			return ApplyAddon(ctx, a, r, "demo", manifest)
		}, ""},
		{"apply, older mkube applied it", map[string]string{"addon-demo": manifestDigest(manifest)}, func(ctx context.Context, a Applier, r driver.Runner) error {
			return ApplyAddon(ctx, a, r, "demo", manifest)
		}, "apply demo"},
		{"remove, never applied", nil, func(ctx context.Context, a Applier, r driver.Runner) error {
			return RemoveAddon(ctx, a, r, "demo", manifest)
		}, ""},
		{"remove, applied", map[string]string{"addon-ssa-demo": "x"}, func(ctx context.Context, a Applier, r driver.Runner) error {
			return RemoveAddon(ctx, a, r, "demo", manifest)
		}, "remove demo"},
		{"remove, applied by an older mkube", map[string]string{"addon-demo": "x"}, func(ctx context.Context, a Applier, r driver.Runner) error {
			return RemoveAddon(ctx, a, r, "demo", manifest)
		}, "apply demo,remove demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			log := &drivertest.Log{}
			d := drivertest.NewDriver(&drivertest.Log{})
			d.Create(ctx, driver.Spec{Name: "demo"})
			r, _ := d.Runner(ctx)
			defer r.Close()
			for m, v := range tt.markers {
				node.SetMarker(ctx, r, m, v)
			}
			if err := tt.do(ctx, drivertest.Applier{Log: log}, r); err != nil {
				t.Fatal(err)
			}
			var calls []string
			for _, l := range log.Take() {
				calls = append(calls, strings.Fields(l)[0]+" "+strings.Fields(l)[2])
			}
			if got := strings.Join(calls, ","); got != tt.want {
				t.Errorf("applier calls %q, want %q", got, tt.want)
			}
			if strings.HasPrefix(tt.name, "remove") && (node.Marker(ctx, r, "addon-demo") != "" || node.Marker(ctx, r, "addon-ssa-demo") != "") {
				t.Error("a marker is left after the remove")
			}
		})
	}
}
