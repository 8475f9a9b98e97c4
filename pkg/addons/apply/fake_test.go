package apply

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

// testKinds are the kinds the tests' mapper and fake cluster know, with their real scope: every
// kind of PruneKinds and guardKinds, hence of the shipped manifests (TestRealManifests checks).
var testKinds = []struct {
	gvk        schema.GroupVersionKind
	namespaced bool
}{
	{schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, false},
	{schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Service"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, true},
	{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, true},
	{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, true},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}, true},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}, true},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, false},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}, false},
	{schema.GroupVersionKind{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}, false},
	{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "IngressClass"}, false},
	{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}, true},
	{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, true},
	{schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}, true},
	{schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}, false},
	{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}, false},
	{schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"}, false},
}

func testMapper() *meta.DefaultRESTMapper {
	var gvs []schema.GroupVersion
	for _, k := range testKinds {
		gvs = append(gvs, k.gvk.GroupVersion())
	}
	m := meta.NewDefaultRESTMapper(gvs)
	for _, k := range testKinds {
		scope := meta.RESTScopeRoot
		if k.namespaced {
			scope = meta.RESTScopeNamespace
		}
		m.Add(k.gvk, scope)
	}
	return m
}

// env is an Applier on a fake cluster. The fake's default tracker cannot server-side apply (in
// client-go v0.37 its Apply fetches the object first, so a new object is NotFound, and it merges
// rather than tracks fields), so the client reacts through the field-managed tracker that
// fake.NewClientset uses instead, over an all-unstructured scheme with a deduced type converter:
// creates on apply, records managedFields per manager, and drops fields a manager stops applying.
type env struct {
	a   *Applier
	dyn *dynamicfake.FakeDynamicClient
	log *strings.Builder
}

func newEnv(t *testing.T, objs ...*unstructured.Unstructured) *env {
	t.Helper()
	sch := runtime.NewScheme()
	for _, k := range testKinds {
		sch.AddKnownTypeWithName(k.gvk, &unstructured.Unstructured{})
		list := k.gvk
		list.Kind += "List"
		sch.AddKnownTypeWithName(list, &unstructured.UnstructuredList{})
	}
	tracker := clienttesting.NewFieldManagedObjectTracker(sch, serializer.NewCodecFactory(sch).UniversalDecoder(),
		managedfields.NewDeducedTypeConverter())
	for _, o := range objs {
		if err := tracker.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(sch, nil)
	dyn.ReactionChain = nil
	dyn.AddReactor("*", "*", clienttesting.ObjectReaction(tracker))
	log := &strings.Builder{}
	a := &Applier{Dynamic: dyn, Mapper: testMapper(),
		Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1},
		Logf:    func(f string, args ...any) { log.WriteString(strings.TrimSpace(fmt.Sprintf(f, args...)) + "\n") }}
	return &env{a: a, dyn: dyn, log: log}
}

// get returns the object of kind gk called ns/name, or nil.
func (e *env) get(t *testing.T, gk schema.GroupKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	m, err := e.a.Mapper.RESTMapping(gk)
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.a.resource(m, ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return o
}

// count counts the actions of verb on resource that the fake saw.
func (e *env) count(verb, resource string) int {
	n := 0
	for _, act := range e.dyn.Actions() {
		if act.GetVerb() == verb && (resource == "" || act.GetResource().Resource == resource) {
			n++
		}
	}
	return n
}

// obj makes an object for the fake cluster to hold before a test.
func obj(apiVersion, kind, ns, name string, labels map[string]string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	o.SetLabels(labels)
	return o
}
