package kubeadm

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Wait components, as minikube's --wait names them.
const (
	WaitAPIServer  = "apiserver"
	WaitSystemPods = "system_pods"
	WaitDefaultSA  = "default_sa"
	WaitAppsRun    = "apps_running"
	WaitNodeReady  = "node_ready"
	WaitKubelet    = "kubelet"
)

// AllWait is every component `--wait=all` waits for.
var AllWait = []string{WaitAPIServer, WaitSystemPods, WaitDefaultSA, WaitAppsRun, WaitNodeReady, WaitKubelet}

// DefaultWait is what `mkube start` waits for unless told otherwise: enough that the user's first
// `kubectl create deployment` and `kubectl get nodes` just work.
var DefaultWait = []string{WaitAPIServer, WaitSystemPods, WaitDefaultSA, WaitNodeReady}

// ParseWait turns --wait's value into components: all, none, true, false, or a comma list.
func ParseWait(v string) ([]string, error) {
	switch v {
	case "all", "true":
		return AllWait, nil
	case "none", "false", "":
		return nil, nil
	}
	var out []string
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(AllWait, c) {
			return nil, fmt.Errorf("--wait %q: unknown component %q (use all, none, or a list of %s)", v, c, strings.Join(AllWait, ","))
		}
		out = append(out, c)
	}
	return out, nil
}

// Wait polls until every component is healthy, or the context (--wait-timeout) ends. It asks the
// API; it never sleeps longer than a poll interval.
func Wait(ctx context.Context, client kubernetes.Interface, nodeNames []string, components []string, log func(format string, args ...any)) error {
	checks := map[string]func(context.Context) (bool, string){
		WaitAPIServer: func(ctx context.Context) (bool, string) {
			body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && string(body) == "ok", "the API server is not ready"
		},
		WaitSystemPods: func(ctx context.Context) (bool, string) {
			return podsRunning(ctx, client, "tier=control-plane", 4)
		},
		WaitDefaultSA: func(ctx context.Context) (bool, string) {
			_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, "the default service account does not exist yet"
		},
		WaitAppsRun: func(ctx context.Context) (bool, string) {
			if ok, why := podsReady(ctx, client, "k8s-app=kube-dns"); !ok {
				return false, why
			}
			return podsReady(ctx, client, "k8s-app=kube-proxy")
		},
		WaitNodeReady: func(ctx context.Context) (bool, string) {
			for _, name := range nodeNames {
				n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, "node " + name + " is not registered"
				}
				if !nodeReady(n) {
					return false, "node " + name + " is not Ready"
				}
				// The node lifecycle controller lifts these a moment after Ready: until then
				// the scheduler places nothing there, and a workload started at once would wait.
				if t := notReadyTaint(n); t != "" {
					return false, "node " + name + " is Ready but still tainted " + t
				}
			}
			return true, ""
		},
		WaitKubelet: func(ctx context.Context) (bool, string) {
			for _, name := range nodeNames {
				n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil || n.Status.NodeInfo.KubeletVersion == "" {
					return false, "the kubelet of " + name + " has not registered"
				}
			}
			return true, ""
		},
	}
	for _, c := range components {
		check := checks[c]
		why := ""
		start := time.Now()
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			ok, w := check(attempt)
			why = w
			return ok, nil
		})
		if err != nil {
			return fmt.Errorf("timed out waiting for %s: %s", c, why)
		}
		log("wait %s took %s", c, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func podsRunning(ctx context.Context, client kubernetes.Interface, selector string, want int) (bool, string) {
	pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return false, apiWhy(err)
	}
	var notRunning []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			notRunning = append(notRunning, p.Name)
		}
	}
	if len(pods.Items) < want || len(notRunning) > 0 {
		sort.Strings(notRunning)
		return false, fmt.Sprintf("%d of %d system pods running (waiting for %s)", len(pods.Items)-len(notRunning), want, strings.Join(notRunning, ", "))
	}
	return true, ""
}

func podsReady(ctx context.Context, client kubernetes.Interface, selector string) (bool, string) {
	pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return false, apiWhy(err)
	}
	if len(pods.Items) == 0 {
		return false, "no pods " + selector
	}
	for _, p := range pods.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, "pod " + p.Name + " is not ready"
		}
	}
	return true, ""
}

func apiWhy(err error) string {
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return "not authorized: " + err.Error()
	}
	return err.Error()
}

// notReadyTaint is the taint that keeps pods off a node not (yet) seen Ready, if it has one.
func notReadyTaint(n *corev1.Node) string {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return t.Key + ":" + string(t.Effect)
		}
	}
	return ""
}

// nodeReady says the node's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
