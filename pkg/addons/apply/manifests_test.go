package apply

import (
	"slices"
	"testing"

	"k8s.io/client-go/kubernetes/scheme"

	"mkube/pkg/addons"
)

// The tests' mapper must not invent kinds: each is one client-go knows, except APIService, which
// lives in the aggregator's API (k8s.io/kube-aggregator, not a dependency).
func TestTestKindsAreReal(t *testing.T) {
	t.Parallel()
	for _, k := range testKinds {
		if k.gvk.Group == "apiregistration.k8s.io" {
			continue
		}
		if !scheme.Scheme.Recognizes(k.gvk) {
			t.Errorf("%v is not a Kubernetes kind", k.gvk)
		}
	}
}

// Every shipped addon parses, maps, has only kinds PruneKinds covers (so dropping one from a
// manifest later still prunes it), and applies to and is removed from a fake cluster.
func TestRealManifests(t *testing.T) {
	t.Parallel()
	for _, ad := range addons.All {
		t.Run(ad.Name, func(t *testing.T) {
			t.Parallel()
			manifest, err := addons.Render(ad, addons.Values{NodeIP: "192.168.49.2"})
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Parse(manifest)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			mapper := testMapper()
			for _, o := range objs {
				gvk := o.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					t.Errorf("%s: %v", describe(o), err)
					continue
				}
				if !slices.Contains(PruneKinds, gvk.GroupKind()) {
					t.Errorf("%s: kind %s not in PruneKinds", describe(o), gvk.GroupKind())
				}
				// Addon objects say where they go rather than land in the user's default namespace.
				if m.Scope.Name() == "namespace" && o.GetNamespace() == "" {
					t.Errorf("%s names no namespace", describe(o))
				}
			}

			e := newEnv(t)
			for range 2 {
				if err := e.a.Apply(testCtx(t), ad.Name, manifest); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range objs {
				if got := e.get(t, o.GroupVersionKind().GroupKind(), o.GetNamespace(), o.GetName()); got == nil ||
					got.GetLabels()[AddonLabel] != ad.Name {
					t.Errorf("%s not applied with its label", describe(o))
				}
			}
			if n := e.count("delete", ""); n != 0 {
				t.Errorf("applying twice deleted %d objects:\n%s", n, e.log)
			}
			if err := e.a.Remove(testCtx(t), ad.Name, manifest); err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if e.get(t, o.GroupVersionKind().GroupKind(), o.GetNamespace(), o.GetName()) != nil {
					t.Errorf("%s left after Remove", describe(o))
				}
			}
		})
	}
}
