package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The demo addon's documents, by a short name, so tests can leave some out. The ServiceAccount
// comes before its Namespace to show that namespaces are applied first; the ClusterRole names a
// namespace, which a cluster-scoped object must lose; the ConfigMap names none.
var demoDocs = []struct{ key, yaml string }{
	{"sa", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: demo}\n"},
	{"ns", "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n"},
	{"cm", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n"},
	{"role", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: demo-reader, namespace: ignored}\nrules: []\n"},
	{"deploy", `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: demo, labels: {app: demo}}
spec:
  replicas: 1
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: app, image: "demo:1"}]}
`},
	{"svc", "apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: demo}\nspec: {ports: [{port: 80}]}\n"},
}

// where each demo document's object lands.
var demoObjects = map[string]struct {
	gk       schema.GroupKind
	ns, name string
}{
	"sa":     {schema.GroupKind{Kind: "ServiceAccount"}, "demo", "app"},
	"ns":     {schema.GroupKind{Kind: "Namespace"}, "", "demo"},
	"cm":     {schema.GroupKind{Kind: "ConfigMap"}, "default", "settings"},
	"role":   {schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, "", "demo-reader"},
	"deploy": {schema.GroupKind{Group: "apps", Kind: "Deployment"}, "demo", "app"},
	"svc":    {schema.GroupKind{Kind: "Service"}, "demo", "app"},
}

// demo renders the demo manifest without the documents named in leaveOut, with an empty and a
// comment-only document in it as real manifests have.
func demo(leaveOut ...string) []byte {
	out := []string{"# demo addon\n", ""}
	for _, d := range demoDocs {
		if !contains(leaveOut, d.key) {
			out = append(out, d.yaml)
		}
	}
	return []byte(strings.Join(out, "---\n"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testCtx bounds a test's calls, which retry until their context ends, so a regression fails
// instead of hanging.
func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestApplyCreatesLabelledObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	for key, want := range demoObjects {
		o := e.get(t, want.gk, want.ns, want.name)
		if o == nil {
			t.Errorf("%s: %s %s/%s not created", key, want.gk, want.ns, want.name)
			continue
		}
		if got := o.GetLabels()[AddonLabel]; got != "demo" {
			t.Errorf("%s: label %s = %q", key, AddonLabel, got)
		}
		managed := false
		for _, f := range o.GetManagedFields() {
			managed = managed || (f.Manager == FieldManager && f.Operation == "Apply")
		}
		if !managed {
			t.Errorf("%s: no Apply by %s in managedFields %+v", key, FieldManager, o.GetManagedFields())
		}
	}
	if d := e.get(t, demoObjects["deploy"].gk, "demo", "app"); d != nil && d.GetLabels()["app"] != "demo" {
		t.Errorf("the manifest's own labels were lost: %v", d.GetLabels())
	}
	if e.count("delete", "") != 0 {
		t.Errorf("a first apply deleted something:\n%s", e.log)
	}
	var first string
	for _, act := range e.dyn.Actions() {
		if act.GetVerb() == "patch" {
			first = act.GetResource().Resource
			break
		}
	}
	if first != "namespaces" {
		t.Errorf("first applied %s, not the namespace", first)
	}
}

func TestDefaultNamespace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ set, want string }{{"", "default"}, {"elsewhere", "elsewhere"}} {
		e := newEnv(t)
		e.a.DefaultNamespace = tc.set
		if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
			t.Fatal(err)
		}
		if e.get(t, demoObjects["cm"].gk, tc.want, "settings") == nil {
			t.Errorf("DefaultNamespace %q: ConfigMap not in %s", tc.set, tc.want)
		}
	}
}

func TestReapplyIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 2 {
		if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
			t.Fatalf("apply %d: %v", i+1, err)
		}
	}
	for key, want := range demoObjects {
		if e.get(t, want.gk, want.ns, want.name) == nil {
			t.Errorf("%s gone after a second apply", key)
		}
	}
	if n := e.count("delete", ""); n != 0 {
		t.Errorf("re-apply deleted %d objects:\n%s", n, e.log)
	}
	// A change reaches the object, and a field no longer applied goes (server-side apply semantics).
	changed := strings.Replace(string(demo()), "data: {mode: fast}", "data: {level: high}", 1)
	if err := e.a.Apply(testCtx(t), "demo", []byte(changed)); err != nil {
		t.Fatal(err)
	}
	cm := e.get(t, demoObjects["cm"].gk, "default", "settings")
	if cm == nil {
		t.Fatal("ConfigMap gone")
	}
	if data, _, _ := unstructured.NestedStringMap(cm.Object, "data"); len(data) != 1 || data["level"] != "high" {
		t.Errorf("changed ConfigMap data = %v", data)
	}
}

// Force: a field someone else applied since (kubectl apply --server-side, say) is taken back
// rather than failing with a conflict.
func TestApplyTakesFieldsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	cm := obj("v1", "ConfigMap", "default", "settings", nil)
	cm.Object["data"] = map[string]any{"mode": "slow"}
	m, _ := e.a.Mapper.RESTMapping(cm.GroupVersionKind().GroupKind())
	if _, err := e.a.resource(m, "default").Apply(testCtx(t), "settings", cm, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, cm.GroupVersionKind().GroupKind(), "default", "settings")
	if mode, _, _ := unstructured.NestedString(got.Object, "data", "mode"); mode != "fast" {
		t.Errorf("data.mode = %q, want mkube's fast back", mode)
	}
}

func TestApplyPrunes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		dropped []string
		kept    string // a namespace kept despite its Namespace leaving the manifest, if any
	}{
		{name: "service (a kind the manifest no longer has)", dropped: []string{"svc"}},
		{name: "configmap and clusterrole", dropped: []string{"cm", "role"}},
		{name: "namespace and all in it", dropped: []string{"ns", "sa", "deploy", "svc"}},
		{name: "namespace that holds a user's object", dropped: []string{"ns", "sa", "deploy", "svc"}, kept: "demo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Neither a user's unlabelled ConfigMap nor another addon's may go.
			user := obj("v1", "ConfigMap", "default", "user", nil)
			other := obj("v1", "ConfigMap", "default", "other", map[string]string{AddonLabel: "other"})
			objs := []*unstructured.Unstructured{user, other}
			if tc.kept != "" {
				objs = append(objs, obj("v1", "ConfigMap", tc.kept, "mine", nil))
			}
			e := newEnv(t, objs...)
			if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
				t.Fatal(err)
			}
			if err := e.a.Apply(testCtx(t), "demo", demo(tc.dropped...)); err != nil {
				t.Fatal(err)
			}
			for key, want := range demoObjects {
				gone := contains(tc.dropped, key) && !(key == "ns" && tc.kept != "")
				if got := e.get(t, want.gk, want.ns, want.name) == nil; got != gone {
					t.Errorf("%s: gone = %v, want %v\n%s", key, got, gone, e.log)
				}
			}
			for _, o := range objs {
				if e.get(t, schema.GroupKind{Kind: "ConfigMap"}, o.GetNamespace(), o.GetName()) == nil {
					t.Errorf("pruned ConfigMap %s/%s, which is not the addon's", o.GetNamespace(), o.GetName())
				}
			}
			if tc.kept != "" && !strings.Contains(e.log.String(), "keeping namespace "+tc.kept) {
				t.Errorf("no word of the namespace kept:\n%s", e.log)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		manifest []byte
	}{
		{"with the manifest", demo()},
		{"without it (PruneKinds suffice)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The user's objects of the addon's names, without the label, stay.
			users := []*unstructured.Unstructured{
				obj("v1", "Service", "default", "app", nil),
				obj("v1", "ConfigMap", "elsewhere", "settings", nil),
			}
			e := newEnv(t, users...)
			if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
				t.Fatal(err)
			}
			if err := e.a.Remove(testCtx(t), "demo", tc.manifest); err != nil {
				t.Fatal(err)
			}
			for key, want := range demoObjects {
				if e.get(t, want.gk, want.ns, want.name) != nil {
					t.Errorf("%s still there after Remove\n%s", key, e.log)
				}
			}
			for _, u := range users {
				if e.get(t, schema.GroupKind{Kind: u.GetKind()}, u.GetNamespace(), u.GetName()) == nil {
					t.Errorf("Remove deleted the user's %s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
				}
			}
			deletes := e.count("delete", "")
			if err := e.a.Remove(testCtx(t), "demo", tc.manifest); err != nil {
				t.Fatalf("second Remove: %v", err)
			}
			if n := e.count("delete", ""); n != deletes {
				t.Errorf("second Remove deleted %d more", n-deletes)
			}
		})
	}
}

// A namespace holding only the addon's objects, dependents of them (owner references) and what
// Kubernetes puts in every namespace goes with the addon; one with anything else, or one of the
// cluster's own, stays.
func TestRemoveNamespace(t *testing.T) {
	t.Parallel()
	owned := obj("v1", "Pod", "demo", "app-1234", nil)
	owned.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "app-12", UID: "u1"}})
	for _, tc := range []struct {
		name     string
		ns       string
		present  []*unstructured.Unstructured
		wantKept bool
	}{
		{"only the addon's", "demo", nil, false},
		{"owned pod and automatic objects", "demo", []*unstructured.Unstructured{owned,
			obj("v1", "ServiceAccount", "demo", "default", nil), obj("v1", "ConfigMap", "demo", "kube-root-ca.crt", nil)}, false},
		{"a user's ConfigMap", "demo", []*unstructured.Unstructured{obj("v1", "ConfigMap", "demo", "mine", nil)}, true},
		{"a user's Deployment", "demo", []*unstructured.Unstructured{obj("apps/v1", "Deployment", "demo", "web", nil)}, true},
		{"another addon's object", "demo", []*unstructured.Unstructured{
			obj("v1", "Secret", "demo", "x", map[string]string{AddonLabel: "other"})}, true},
		{"the cluster's own", "kube-system", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.present...)
			m := []byte(strings.NewReplacer("namespace: demo}", "namespace: "+tc.ns+"}",
				"{name: demo}", "{name: "+tc.ns+"}").Replace(string(demo())))
			if err := e.a.Apply(testCtx(t), "demo", m); err != nil {
				t.Fatal(err)
			}
			if err := e.a.Remove(testCtx(t), "demo", m); err != nil {
				t.Fatal(err)
			}
			if kept := e.get(t, namespaceKind, "", tc.ns) != nil; kept != tc.wantKept {
				t.Errorf("namespace %s kept = %v, want %v\n%s", tc.ns, kept, tc.wantKept, e.log)
			}
			if e.get(t, demoObjects["deploy"].gk, tc.ns, "app") != nil {
				t.Error("the addon's Deployment stayed")
			}
		})
	}
}

func TestDefaultServiceAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.a.Apply(testCtx(t), DefaultServiceAccountAddon, []byte(DefaultServiceAccount)); err != nil {
		t.Fatal(err)
	}
	if e.get(t, schema.GroupKind{Kind: "ServiceAccount"}, "default", "default") == nil {
		t.Error("default/default not applied")
	}
}

func TestBadAddonName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"", "no spaces", strings.Repeat("x", 64)} {
		if err := e.a.Apply(testCtx(t), name, demo()); err == nil {
			t.Errorf("Apply(%q) took a name that cannot be a label value", name)
		}
		if err := e.a.Remove(testCtx(t), name, nil); err == nil {
			t.Errorf("Remove(%q) took a name that cannot be a label value", name)
		}
	}
	if len(e.dyn.Actions()) != 0 {
		t.Error("a bad name reached the cluster")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string // describe() of each object
		err      string
	}{
		{"empty", "", nil, ""},
		{"empty and comment-only documents", "---\n# nothing\n---\n\n---\n{}\n", nil, ""},
		{"two objects", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
			[]string{"ConfigMap x/a", "Namespace x"}, ""},
		{"JSON", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`, []string{"Secret s"}, ""},
		{"a List", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
			[]string{"ConfigMap a", "ConfigMap b"}, ""},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", nil, "document 1"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", nil, "document 1: ConfigMap"},
		{"no apiVersion, second document", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n", nil, "document 2"},
		{"bad YAML", "apiVersion: v1\nkind: [\n", nil, "document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs, err := Parse([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, describe(o))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
