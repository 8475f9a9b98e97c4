// Package apply puts addon manifests into a cluster from the host with server-side apply, and takes
// them out again. It replaces running `kubectl apply -f -` inside the node with a digest file as
// the record of what was applied: here the record is in the cluster itself, a label on every object
// an addon owns, so pruning and removal work from whatever the cluster holds, even if the node's
// state directory was lost or the manifest changed between mkube versions.
package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

const (
	// FieldManager is the field manager of every apply: the fields mkube sets are mkube's.
	FieldManager = "mkube"
	// AddonLabel marks each object with the addon that owns it; pruning and Remove go by it alone.
	AddonLabel = "mkube.io/addon"
)

// DefaultServiceAccountAddon and DefaultServiceAccount are the "default-serviceaccount" pseudo-addon
// that kubeadm/addons.go applies before the real ones: the service-account controller makes
// default/default a few seconds after it starts and pods in "default" are refused until it exists,
// so applying it at once lets a user's first `kubectl run` work. It is a constant for the caller to
// Apply like any addon; a caller should never Remove it (the controller owns that account).
const (
	DefaultServiceAccountAddon = "default-serviceaccount"
	DefaultServiceAccount      = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n"
)

// Applier applies addon manifests to a cluster with server-side apply.
type Applier struct {
	Dynamic dynamic.Interface
	// Mapper resolves kinds to resources and scopes. A discovery-backed one is reset and asked again
	// when it does not know a kind, since right after the API server starts its cache may be stale.
	Mapper meta.RESTMapper
	// DefaultNamespace receives namespaced objects that name no namespace, as kubectl's context
	// namespace does; "" means "default".
	DefaultNamespace string
	// Logf, if set, is told about retries, deletions and namespaces kept.
	Logf func(format string, args ...any)
	// Backoff paces retries of transient errors; the zero value means DefaultBackoff. Retries go on
	// until the context ends, so the caller bounds them with a deadline.
	Backoff wait.Backoff
}

// New makes an Applier for the cluster cfg points at, mapping kinds through discovery (read on first
// use and again when a kind is missing). An Apply makes a list request for each kind it prunes (about 25), so a cfg without a QPS gets
// 50 rather than client-go's 5, which would stall each addon for seconds and log throttling. The
// API server's warnings (a deprecated field, say) go to Logf unless cfg handles them already.
func New(cfg *rest.Config) (*Applier, error) {
	a := &Applier{}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	if cfg.WarningHandler == nil && cfg.WarningHandlerWithContext == nil {
		cfg.WarningHandler = warnings{a}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	a.Dynamic = dyn
	a.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(uncached{dc})
	return a, nil
}

// uncached lets DeferredDiscoveryRESTMapper use the discovery client as it is. The mapper keeps
// what it builds from discovery until Reset anyway; the usual memory cache in between would add
// nothing but a klog line on stderr ("Couldn't get current server API group list") for each try
// while the API server is down, straight into the user's terminal.
type uncached struct{ discovery.DiscoveryInterface }

func (uncached) Fresh() bool { return true } // a miss is retried by Applier, after a Reset
func (uncached) Invalidate() {}

// warnings hands the API server's warnings to Logf instead of client-go's stderr.
type warnings struct{ a *Applier }

func (w warnings) HandleWarningHeader(code int, _ string, text string) {
	if code == 299 && text != "" {
		w.a.logf("warning: %s", text)
	}
}

// Apply server-side-applies every object of the multi-document YAML manifest (field manager
// "mkube", forced so mkube owns the fields it sets), stamping each with AddonLabel=name, then
// prunes: it deletes the objects carrying that label, in the manifest's kinds and PruneKinds, that
// the manifest no longer has. Namespaces are applied first. See prune for which namespaces go.
func (a *Applier) Apply(ctx context.Context, name string, manifest []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	objs, err := Parse(manifest)
	if err != nil {
		return fmt.Errorf("addon %s: %w", name, err)
	}
	// Objects in a namespace are refused until it exists; otherwise the manifest's order is kept.
	sort.SliceStable(objs, func(i, j int) bool { return isNamespace(objs[i]) && !isNamespace(objs[j]) })
	keep := map[objKey]bool{}
	var kinds []schema.GroupKind
	for _, obj := range objs {
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AddonLabel] = name
		obj.SetLabels(labels)
		if err := a.retry(ctx, func() string { return describe(obj) }, func(ctx context.Context) error {
			return a.applyOne(ctx, obj)
		}); err != nil {
			return fmt.Errorf("addon %s: %w", name, err)
		}
		keep[keyOf(obj)] = true
		kinds = append(kinds, obj.GroupVersionKind().GroupKind())
	}
	if _, err := a.prune(ctx, name, kinds, keep); err != nil {
		return fmt.Errorf("addon %s: %w", name, err)
	}
	return nil
}

// Remove deletes every object labelled AddonLabel=name, in the manifest's kinds (manifest may be
// nil) and PruneKinds, ignoring those already gone, so it is idempotent. Objects without the label
// stay even if the manifest names them: they are the user's. Deletion propagates in the background,
// as kubectl's does: the owner goes at once and the garbage collector takes its dependents, so an
// enable right after a disable applies fresh objects instead of patching ones that are still
// waiting for their pods to go (as foreground deletion would leave them) and then vanish.
func (a *Applier) Remove(ctx context.Context, name string, manifest []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	objs, err := Parse(manifest)
	if err != nil {
		return fmt.Errorf("disabling addon %s: %w", name, err)
	}
	var kinds []schema.GroupKind
	for _, obj := range objs {
		kinds = append(kinds, obj.GroupVersionKind().GroupKind())
	}
	gone, err := a.prune(ctx, name, kinds, nil)
	if err != nil {
		return fmt.Errorf("disabling addon %s: %w", name, err)
	}
	if err := a.waitGone(ctx, gone); err != nil {
		return fmt.Errorf("disabling addon %s: %w", name, err)
	}
	return nil
}

// errTerminating says an applied object is still being deleted (a namespace from a disable just
// before, say): the apply patched the dying object, so it is applied again once that is gone.
var errTerminating = errors.New("is being deleted; waiting to create it anew")

func (a *Applier) applyOne(ctx context.Context, obj *unstructured.Unstructured) error {
	ri, err := a.resourceFor(obj)
	if err != nil {
		return err
	}
	live, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return err
	}
	if live != nil && live.GetDeletionTimestamp() != nil {
		return errTerminating
	}
	return nil
}

// resourceFor resolves obj's resource through the mapper and settles its namespace: a cluster-scoped
// object loses any it names (the API server would drop it too), a namespaced one without any gets
// the default, as kubectl does.
func (a *Applier) resourceFor(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		obj.SetNamespace("")
		return a.Dynamic.Resource(m.Resource), nil
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(a.defaultNamespace())
	}
	return a.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
}

func (a *Applier) defaultNamespace() string {
	if a.DefaultNamespace != "" {
		return a.DefaultNamespace
	}
	return metav1.NamespaceDefault
}

func (a *Applier) logf(format string, args ...any) {
	if a.Logf != nil {
		a.Logf(format, args...)
	}
}

// Parse splits a multi-document YAML (or JSON) manifest into objects. Empty and comment-only
// documents are skipped and a List's items taken one by one; each object must have an apiVersion,
// a kind and a name (server-side apply cannot generate names).
func Parse(manifest []byte) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		if err := d.Decode(&raw); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if s := strings.TrimSpace(string(raw)); s == "" || s == "null" || s == "{}" {
			continue
		}
		obj, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		var items []*unstructured.Unstructured
		switch o := obj.(type) {
		case *unstructured.Unstructured:
			items = append(items, o)
		case *unstructured.UnstructuredList:
			for i := range o.Items {
				items = append(items, &o.Items[i])
			}
		default:
			return nil, fmt.Errorf("document %d: unexpected %T", doc, obj)
		}
		for _, o := range items {
			if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
				return nil, fmt.Errorf("document %d: %s: apiVersion, kind and metadata.name are all needed", doc, describe(o))
			}
			out = append(out, o)
		}
	}
}

func checkName(name string) error {
	if errs := validation.IsValidLabelValue(name); name == "" || len(errs) > 0 {
		return fmt.Errorf("addon name %q cannot be a label value: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func isNamespace(obj *unstructured.Unstructured) bool {
	return obj.GroupVersionKind().GroupKind() == namespaceKind
}

var namespaceKind = schema.GroupKind{Kind: "Namespace"}

// objKey is an object's identity for pruning. The version is left out: a list may return another
// version of the same object than the manifest names.
type objKey struct {
	gk        schema.GroupKind
	namespace string
	name      string
}

func keyOf(obj *unstructured.Unstructured) objKey {
	return objKey{obj.GroupVersionKind().GroupKind(), obj.GetNamespace(), obj.GetName()}
}

// describe names an object in messages as kubectl does: Kind namespace/name, or Kind name.
func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + " " + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetName()
}
