package apply

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// PruneKinds are the kinds searched for an addon's objects besides those its manifest has now.
// Nothing records which kinds an older manifest used, so a kind an addon drops is only pruned if
// it is here: every kind of the shipped manifests is (a test checks), plus the ones addons commonly
// use. CustomResourceDefinitions are left out on purpose: deleting one deletes every object of
// its kind, the user's included. Kinds the cluster does not serve are skipped.
var PruneKinds = []schema.GroupKind{
	{Kind: "Pod"}, {Kind: "Service"}, {Kind: "ServiceAccount"}, {Kind: "ConfigMap"}, {Kind: "Secret"},
	{Kind: "PersistentVolumeClaim"},
	{Group: "apps", Kind: "Deployment"}, {Group: "apps", Kind: "DaemonSet"}, {Group: "apps", Kind: "StatefulSet"},
	{Group: "batch", Kind: "Job"}, {Group: "batch", Kind: "CronJob"},
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
	{Group: "storage.k8s.io", Kind: "StorageClass"},
	{Group: "networking.k8s.io", Kind: "IngressClass"}, {Group: "networking.k8s.io", Kind: "Ingress"},
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"},
	{Group: "policy", Kind: "PodDisruptionBudget"},
	{Group: "apiregistration.k8s.io", Kind: "APIService"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
	namespaceKind,
}

// guardKinds are where a namespace is searched for objects that are not the addon's before it is
// deleted (deleting a namespace deletes all it holds): the kinds people put their work in. Objects
// with an owner are skipped (their owner is what counts: the addon's Deployment's pods, say), and so
// are the ones Kubernetes makes in every namespace.
var guardKinds = []schema.GroupKind{
	{Kind: "Pod"}, {Kind: "PersistentVolumeClaim"}, {Kind: "Service"}, {Kind: "ConfigMap"}, {Kind: "Secret"},
	{Kind: "ServiceAccount"},
	{Group: "apps", Kind: "Deployment"}, {Group: "apps", Kind: "StatefulSet"}, {Group: "apps", Kind: "DaemonSet"},
	{Group: "apps", Kind: "ReplicaSet"}, {Group: "batch", Kind: "Job"}, {Group: "batch", Kind: "CronJob"},
	{Group: "networking.k8s.io", Kind: "Ingress"},
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"},
}

// autoCreated are the objects Kubernetes puts in every namespace.
var autoCreated = map[objKey]bool{
	{gk: schema.GroupKind{Kind: "ServiceAccount"}, name: "default"}:     true,
	{gk: schema.GroupKind{Kind: "ConfigMap"}, name: "kube-root-ca.crt"}: true,
}

// protectedNamespaces are the cluster's own; they are never deleted whatever label they carry.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// prune deletes the objects labelled as addon name's, in kinds and PruneKinds, that keep does not
// hold. Namespaces go last, and only those that hold nothing but the addon's objects: a namespace
// that has the user's work in it (or is one of the cluster's own) stays, with a log line.
func (a *Applier) prune(ctx context.Context, name string, kinds []schema.GroupKind, keep map[objKey]bool) ([]deleted, error) {
	var done []deleted
	selector := AddonLabel + "=" + name
	inManifest := map[schema.GroupKind]bool{}
	for _, gk := range kinds {
		inManifest[gk] = true
	}
	seen := map[schema.GroupKind]bool{}
	var namespaces []*unstructured.Unstructured
	var nsMapping *meta.RESTMapping
	for _, gk := range slices.Concat(kinds, PruneKinds) {
		if seen[gk] {
			continue
		}
		seen[gk] = true
		items, m, err := a.list(ctx, gk, "", selector, !inManifest[gk])
		if err != nil {
			return nil, err
		}
		for i := range items {
			obj := &items[i]
			// The label is checked again in case a server (or a fake) did not filter by it. The key
			// takes the kind listed, not the item's, which a list may leave unset.
			if keep[objKey{gk, obj.GetNamespace(), obj.GetName()}] || obj.GetLabels()[AddonLabel] != name {
				continue
			}
			if gk == namespaceKind {
				namespaces, nsMapping = append(namespaces, obj), m
				continue
			}
			if err := a.delete(ctx, m, obj); err != nil {
				return nil, err
			}
			done = append(done, deleted{m, obj})
		}
	}
	for _, ns := range namespaces {
		if protectedNamespaces[ns.GetName()] {
			a.logf("addon %s: keeping namespace %s: it is the cluster's own", name, ns.GetName())
			continue
		}
		other, err := a.foreignObject(ctx, name, ns.GetName())
		if err != nil {
			return nil, err
		}
		if other != "" {
			a.logf("addon %s: keeping namespace %s: it holds %s, which is not the addon's", name, ns.GetName(), other)
			continue
		}
		if err := a.delete(ctx, nsMapping, ns); err != nil {
			return nil, err
		}
		done = append(done, deleted{nsMapping, ns})
	}
	return done, nil
}

// deleted is an object prune deleted.
type deleted struct {
	m   *meta.RESTMapping
	obj *unstructured.Unstructured
}

// waitGone waits until every deleted object is gone (finalizers done, a namespace emptied), as
// `kubectl delete` does: when `addons disable` returns, the addon is not there any more. An object
// of the same name made since (another UID) counts as gone.
func (a *Applier) waitGone(ctx context.Context, objs []deleted) error {
	for _, d := range objs {
		ri := a.resource(d.m, d.obj.GetNamespace())
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			got, err := ri.Get(ctx, d.obj.GetName(), metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return true, nil
			case err != nil:
				return false, nil // the API server restarting: ask again
			}
			return got.GetUID() != d.obj.GetUID(), nil
		})
		if err != nil {
			return fmt.Errorf("%s is still being deleted: %w", describe(d.obj), err)
		}
	}
	return nil
}

// foreignObject names an object in namespace ns, of guardKinds, that is not addon name's, or "".
func (a *Applier) foreignObject(ctx context.Context, name, ns string) (string, error) {
	for _, gk := range guardKinds {
		items, _, err := a.list(ctx, gk, ns, "", true)
		if err != nil {
			return "", err
		}
		for i := range items {
			o := &items[i]
			if o.GetLabels()[AddonLabel] == name || len(o.GetOwnerReferences()) > 0 || autoCreated[objKey{gk: gk, name: o.GetName()}] {
				continue
			}
			return describe(o), nil
		}
	}
	return "", nil
}

// list lists gk's objects in namespace ns ("" for all) that match selector, and returns the
// mapping used. An optional kind that the cluster does not serve has none: it gives a nil mapping.
func (a *Applier) list(ctx context.Context, gk schema.GroupKind, ns, selector string, optional bool) ([]unstructured.Unstructured, *meta.RESTMapping, error) {
	var items []unstructured.Unstructured
	var m *meta.RESTMapping
	err := a.retry(ctx, func() string { return "listing " + gk.String() }, func(ctx context.Context) error {
		var err error
		if m, err = a.mapping(gk, optional); err != nil || m == nil {
			return err
		}
		l, err := a.resource(m, ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if optional && apierrors.IsNotFound(err) {
			m = nil // discovery named a resource that is not served (any longer)
			return nil
		}
		if err != nil {
			return err
		}
		items = l.Items
		return nil
	})
	return items, m, err
}

// mapping resolves gk to its preferred version's resource; versions do not matter for finding
// objects. A kind the manifest has must resolve (a miss is retried after a reset, see transient);
// an optional one that does not is taken as not served, without a reset: those are all built-in
// kinds, which discovery lists from the start, and a reset per missing kind would read discovery
// again for each.
func (a *Applier) mapping(gk schema.GroupKind, optional bool) (*meta.RESTMapping, error) {
	m, err := a.Mapper.RESTMapping(gk)
	if optional && meta.IsNoMatchError(err) {
		return nil, nil
	}
	return m, err
}

func (a *Applier) resource(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if ns == "" || m.Scope.Name() != meta.RESTScopeNameNamespace {
		return a.Dynamic.Resource(m.Resource)
	}
	return a.Dynamic.Resource(m.Resource).Namespace(ns)
}

// delete deletes obj, in the background (see Remove). The UID precondition makes sure the object
// deleted is the one listed, not one of the same name made since; that, or it being gone, is fine.
func (a *Applier) delete(ctx context.Context, m *meta.RESTMapping, obj *unstructured.Unstructured) error {
	policy := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &policy}
	if uid := obj.GetUID(); uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	ri := a.resource(m, obj.GetNamespace())
	return a.retry(ctx, func() string { return "deleting " + describe(obj) }, func(ctx context.Context) error {
		err := ri.Delete(ctx, obj.GetName(), opts)
		if apierrors.IsNotFound(err) || (opts.Preconditions != nil && apierrors.IsConflict(err)) {
			return nil
		}
		if err == nil {
			a.logf("deleted %s", describe(obj))
		}
		return err
	})
}
