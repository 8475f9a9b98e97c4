package cluster

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/safepath"
)

// otherNode finds a node of the profile that is not its primary: the primary is the cluster.
func otherNode(p *config.Profile, nodeName, verb string) (config.Node, error) {
	n, _, ok := p.Node(nodeName)
	switch {
	case !ok || nodeName == "":
		return n, reason.Errorf(reason.GuestNodeNotFound, "run `mkube node list -p "+p.Name+"` to see its nodes", "profile %q has no node %q", p.Name, nodeName)
	case n.Name == p.Name && p.HA && verb == "stop":
		return n, nil // the other control planes keep serving
	case n.Name == p.Name:
		return n, reason.Errorf(reason.Usage, fmt.Sprintf("`mkube %s -p %s` acts on the whole cluster", verb, p.Name),
			"%s is the cluster's primary control-plane node", n.Name)
	case n.ControlPlane && !p.HA && verb == "delete":
		return n, reason.Errorf(reason.Usage, fmt.Sprintf("`mkube delete -p %s` deletes the whole cluster", p.Name),
			"%s is a control plane of a cluster without --ha", n.Name)
	}
	return n, nil
}

// StopNode stops one node of a profile (`mkube node stop`), keeping everything on it.
func (m *Manager) StopNode(ctx context.Context, name, nodeName string) error {
	unlock, err := m.LockProfile(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.loadProfile(name)
	if err != nil {
		return err
	}
	n, err := otherNode(p, nodeName, "stop")
	if err != nil {
		return err
	}
	if err := m.stopNode(ctx, p, n.Name); err != nil {
		return err
	}
	m.Out.Step(out.Stopped, "Successfully stopped node %s", n.Name)
	return nil
}

// drainTimeout bounds how long `node delete` waits for the node's pods to be evicted (a
// PodDisruptionBudget may hold them until replacements are ready elsewhere).
const drainTimeout = 3 * time.Minute

// DeleteNode removes one node from a profile's cluster (`mkube node delete`): its pods evicted
// (PodDisruptionBudgets honoured), its Node object deleted, its machine removed, the profile saved.
// A stopped cluster only loses the machine and the record; its Node object goes at the next start.
func (m *Manager) DeleteNode(ctx context.Context, name, nodeName string) error {
	unlock, err := m.LockProfile(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.loadProfile(name)
	if err != nil {
		return err
	}
	n, err := otherNode(p, nodeName, "delete")
	if err != nil {
		return err
	}
	var leave *Machine // a control plane's own machine, which must run for its etcd member to leave
	if n.ControlPlane {
		if leave, err = m.openNode(ctx, p, n.Name); err != nil {
			return err
		}
		defer leave.Close()
	}
	// The primary reaches the API (through the load balancer of an --ha cluster). A worker still
	// goes when it cannot be opened: only the drain is lost.
	var ep driver.Endpoint
	running := false
	if mc, err := m.open(ctx, p); err == nil {
		mc.Close()
		ep, running = mc.Endpoint, mc.State == driver.Running
	} else if leave != nil {
		return err
	}
	if leave != nil && (!running || leave.State != driver.Running) {
		return reason.Errorf(reason.GuestNotRunning, fmt.Sprintf("start the cluster and the node first (`mkube node start %s -p %s`), then delete it", n.Name, p.Name),
			"%s is a control plane: its etcd member leaves the cluster while it and the cluster run", n.Name)
	}
	m.Out.Step(out.Fire, "Deleting node %s from cluster %s", n.Name, p.Name)
	if running {
		client, err := m.Client(p.Name, ep)
		if err != nil {
			return err
		}
		if err := drain(ctx, client, n.Name, m.Out); err != nil {
			return reason.New(reason.K8sStart, fmt.Errorf("draining %s: %w", n.Name, err), "see `kubectl get pdb -A`: a PodDisruptionBudget may keep its pods")
		}
		if leave != nil {
			if err := m.leaveControlPlane(ctx, leave, n.Name); err != nil {
				return err
			}
		}
		if err := client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	e, ok := m.Drivers.Lookup(p.Driver)
	if !ok {
		return reason.Errorf(reason.DriverUnsupported, "", "the driver %q of profile %q is not supported here", p.Driver, p.Name)
	}
	if err := m.deleteMachine(ctx, e, p, n.Name); err != nil {
		return err
	}
	if known, err := m.KnownHostsFile(p.Name, n.Name); err == nil {
		if err := safepath.RemoveAll(string(m.Home), known); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	var kept []config.Node
	for _, o := range p.Nodes {
		if o.Name != n.Name {
			kept = append(kept, o)
		}
	}
	p.Nodes = kept
	if err := m.Home.Save(p); err != nil {
		return err
	}
	m.Out.Step(out.Skull, "Node %s was successfully deleted.", n.Name)
	return nil
}

// leaveControlPlane takes a control plane of an --ha cluster out of it before its machine goes:
// out of the load balancer first (clients go to the others), then `kubeadm reset` in the node,
// which removes its etcd member. A member left behind would count against etcd's quorum for good:
// with one more control plane stopped, the cluster would stop answering.
func (m *Manager) leaveControlPlane(ctx context.Context, mc *Machine, name string) error {
	m.drainLB(ctx, mc.Driver, name)
	r, err := mc.Runner(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := kubeadm.Leave(ctx, r); err != nil {
		return reason.New(reason.K8sStart, fmt.Errorf("%s leaving the control plane: %w", name, err), "see `mkube logs -p "+mc.Profile.Name+" --node "+name+"`")
	}
	return nil
}

// drain cordons a node and evicts its pods through the Eviction API, as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data` does: DaemonSet pods and static pods stay (they go
// with the machine), a PodDisruptionBudget that refuses an eviction is asked again until it
// allows it or drainTimeout passes; then it waits until the evicted pods are gone.
func drain(ctx context.Context, client kubernetes.Interface, nodeName string, o *out.Printer) error {
	patch := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := client.CoreV1().Nodes().Patch(ctx, nodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // never registered, or gone already
		}
		return err
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	var evicted []corev1.Pod
	for _, pod := range pods.Items {
		if !evictable(&pod) {
			continue
		}
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
		var last error
		err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			last = client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, ev)
			switch {
			case last == nil, apierrors.IsNotFound(last):
				return true, nil
			case apierrors.IsTooManyRequests(last): // a PodDisruptionBudget says not yet
				return false, nil
			}
			return false, last
		})
		if err != nil {
			if last != nil {
				err = last
			}
			return fmt.Errorf("evicting %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		o.V(1, "evicted %s/%s", pod.Namespace, pod.Name)
		evicted = append(evicted, pod)
	}
	for _, pod := range evicted {
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			got, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err) || (err == nil && got.UID != pod.UID), nil
		})
		if err != nil {
			return fmt.Errorf("%s/%s did not go: %w", pod.Namespace, pod.Name, err)
		}
	}
	return nil
}

// evictable: a pod drain moves — not a static (mirror) pod, not a DaemonSet's, not finished.
func evictable(p *corev1.Pod) bool {
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, ref := range p.OwnerReferences {
		if ref.Kind == "DaemonSet" {
			return false
		}
	}
	return true
}
