package cluster

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"mkube/pkg/reason"
)

// DefaultServiceFormat is minikube's --format for service URLs.
const DefaultServiceFormat = "http://{{.IP}}:{{.Port}}"

// ServiceURLs returns the URLs a NodePort or LoadBalancer service answers on at the node's
// address, waiting up to wait for a ready endpoint so a user never gets a dead URL.
func (m *Manager) ServiceURLs(ctx context.Context, profile, namespace, name, format string, https bool, wait time.Duration) ([]string, error) {
	client, ep, err := m.runningClient(ctx, profile)
	if err != nil {
		return nil, err
	}
	svc, err := client.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, reason.Errorf(reason.Service, "see `mkube service list`", "service %q was not found in namespace %q", name, namespace)
	}
	if err != nil {
		return nil, reason.New(reason.Service, err, "")
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil, reason.Errorf(reason.Service, "expose it with --type=NodePort, or use `mkube kubectl -- port-forward`",
			"service %s/%s has no node port (type %s)", namespace, name, svc.Spec.Type)
	}
	if err := waitEndpoints(ctx, client, namespace, name, wait); err != nil {
		return nil, err
	}
	if https {
		format = strings.Replace(format, "http://", "https://", 1)
	}
	return FormatServiceURLs(svc, ep.IP, format)
}

// FormatServiceURLs renders format ({{.IP}}, {{.Port}}, {{.Name}}) for each node port of svc.
func FormatServiceURLs(svc *corev1.Service, ip, format string) ([]string, error) {
	t, err := template.New("url").Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, reason.New(reason.Usage, fmt.Errorf("--format: %w", err), "e.g. --format=http://{{.IP}}:{{.Port}}")
	}
	var urls []string
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		var b bytes.Buffer
		if err := t.Execute(&b, struct {
			IP   string
			Port int32
			Name string
		}{ip, p.NodePort, p.Name}); err != nil {
			return nil, reason.New(reason.Usage, fmt.Errorf("--format: %w", err), "the template knows .IP, .Port and .Name")
		}
		urls = append(urls, b.String())
	}
	return urls, nil
}

// waitEndpoints waits until the service has a ready endpoint, or says why there is none.
func waitEndpoints(ctx context.Context, client kubernetes.Interface, namespace, name string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		slices, err := client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
		if err == nil {
			for _, s := range slices.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready == nil || *e.Conditions.Ready {
						return nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return reason.Errorf(reason.Service, "check its pods: mkube kubectl -- get pods -n "+namespace+" (or wait longer with --wait=SECONDS)",
				"service %s/%s has no running pod behind it", namespace, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ServiceRow is one line of `mkube service list`.
type ServiceRow struct{ Namespace, Name, Target, URL string }

// ServiceList lists services (of one namespace, or all with ""), with node-port URLs where they have one.
func (m *Manager) ServiceList(ctx context.Context, profile, namespace string) ([]ServiceRow, error) {
	client, ep, err := m.runningClient(ctx, profile)
	if err != nil {
		return nil, err
	}
	svcs, err := client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, reason.New(reason.Service, err, "")
	}
	var rows []ServiceRow
	for i := range svcs.Items {
		s := &svcs.Items[i]
		row := ServiceRow{Namespace: s.Namespace, Name: s.Name, Target: "No node port"}
		var ports []string
		for _, p := range s.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d", p.Port))
		}
		if len(ports) > 0 {
			row.Target = strings.Join(ports, ",")
		}
		if urls, err := FormatServiceURLs(s, ep.IP, DefaultServiceFormat); err == nil && len(urls) > 0 {
			row.URL = strings.Join(urls, "\n")
		}
		rows = append(rows, row)
	}
	return rows, nil
}
