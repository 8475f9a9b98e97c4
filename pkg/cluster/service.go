package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"mkube/pkg/reason"
)

// DefaultServiceFormat is minikube's --format for service URLs.
const DefaultServiceFormat = "http://{{.IP}}:{{.Port}}"

// ServiceOptions are `mkube service`'s flags.
type ServiceOptions struct {
	Namespace string
	Format    string // Go template with .IP, .Port, .Name
	HTTPS     bool
	Wait      time.Duration // for a ready pod behind each service
	// Tunnel forces reaching node ports through an SSH tunnel on 127.0.0.1 even where the host
	// reaches the node's address (MKUBE_SERVICE_TUNNEL=true: firewalled bridges, and tests).
	Tunnel bool
}

// ServiceTarget is one service and the URLs it answers on.
type ServiceTarget struct {
	Namespace, Name string
	URLs            []string
	Note            string // e.g. why a service has no URL, or how a LoadBalancer is reached
}

// Services returns the URLs of the named services (all of the namespace's when names is empty) at
// the node's address, waiting for a ready endpoint behind each so a user never gets a dead URL.
// Where the host cannot reach the node (Docker Desktop, a remote engine) each node port is
// forwarded from 127.0.0.1 through SSH, and the returned tunnel must be kept open (closed by ctx).
func (m *Manager) Services(ctx context.Context, profile string, names []string, o ServiceOptions) ([]ServiceTarget, *Tunnel, error) {
	client, ep, err := m.runningClient(ctx, profile)
	if err != nil {
		return nil, nil, err
	}
	all := len(names) == 0
	var svcs []corev1.Service
	if all {
		l, err := client.CoreV1().Services(o.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, nil, reason.New(reason.Service, err, "")
		}
		svcs = l.Items
	}
	for _, name := range names {
		svc, err := client.CoreV1().Services(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil, reason.Errorf(reason.Service, "see `mkube service list`", "service %q was not found in namespace %q", name, o.Namespace)
		}
		if err != nil {
			return nil, nil, reason.New(reason.Service, err, "")
		}
		svcs = append(svcs, *svc)
	}
	format := o.Format
	if o.HTTPS {
		format = strings.Replace(format, "http://", "https://", 1)
	}
	var tunnel *Tunnel
	if !ep.NodeReachable || o.Tunnel {
		if tunnel, err = m.openTunnel(ctx, profile, ep); err != nil {
			return nil, nil, err
		}
	}
	var targets []ServiceTarget
	for i := range svcs {
		svc := &svcs[i]
		t := ServiceTarget{Namespace: svc.Namespace, Name: svc.Name}
		if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			if !all {
				tunnel.Close()
				return nil, nil, reason.Errorf(reason.Service, "expose it with --type=NodePort, or use `mkube kubectl -- port-forward`",
					"service %s/%s has no node port (type %s)", svc.Namespace, svc.Name, svc.Spec.Type)
			}
			t.Note = fmt.Sprintf("service %s/%s has no node port", svc.Namespace, svc.Name)
			targets = append(targets, t)
			continue
		}
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			t.Note = fmt.Sprintf("service %s/%s is a LoadBalancer: mkube reaches it at its node port; its EXTERNAL-IP stays <pending> (no load balancer runs in the cluster)", svc.Namespace, svc.Name)
		}
		if err := waitEndpoints(ctx, client, svc.Namespace, svc.Name, o.Wait); err != nil {
			tunnel.Close()
			return nil, nil, err
		}
		if err := waitNodePorts(ctx, tunnel, ep.IP, svc, o.Wait); err != nil {
			if ctx.Err() != nil {
				tunnel.Close()
				return nil, nil, err
			}
			// The URL is still the service's (as minikube, which never checks): say why it may not
			// answer yet instead of failing.
			t.Note = strings.TrimSpace(t.Note + " " + err.Error())
		}
		ip, local := ep.IP, map[int32]int32{}
		for _, p := range svc.Spec.Ports {
			local[p.NodePort] = p.NodePort
			if tunnel != nil && p.NodePort != 0 {
				ip = "127.0.0.1"
				if local[p.NodePort], err = tunnel.Forward(ctx, ep.IP, p.NodePort); err != nil {
					tunnel.Close()
					return nil, nil, err
				}
			}
		}
		if t.URLs, err = formatServiceURLs(svc, ip, format, func(p int32) int32 { return local[p] }); err != nil {
			tunnel.Close()
			return nil, nil, err
		}
		targets = append(targets, t)
	}
	return targets, tunnel, nil
}

// FormatServiceURLs renders format ({{.IP}}, {{.Port}}, {{.Name}}) for each node port of svc.
func FormatServiceURLs(svc *corev1.Service, ip, format string) ([]string, error) {
	return formatServiceURLs(svc, ip, format, func(p int32) int32 { return p })
}

// formatServiceURLs is FormatServiceURLs with each node port mapped to where the host reaches it.
func formatServiceURLs(svc *corev1.Service, ip, format string, port func(int32) int32) ([]string, error) {
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
		}{ip, port(p.NodePort), p.Name}); err != nil {
			return nil, reason.New(reason.Usage, fmt.Errorf("--format: %w", err), "the template knows .IP, .Port and .Name")
		}
		urls = append(urls, b.String())
	}
	return urls, nil
}

// waitEndpoints waits until the service has a ready endpoint, or says why there is none.
func waitEndpoints(ctx context.Context, client kubernetes.Interface, namespace, name string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		slices, err := client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
		if err != nil {
			return false, nil
		}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					return true, nil
				}
			}
		}
		return false, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return reason.Errorf(reason.Service, "check its pods: mkube kubectl -- get pods -n "+namespace+" (or wait longer with --wait=SECONDS)",
			"service %s/%s has no running pod behind it", namespace, name)
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

// waitNodePorts waits until the node accepts connections on each of the service's node ports:
// kube-proxy programs a new service a moment after its endpoints are ready, and a URL printed
// before that answers with a reset. Through the tunnel when there is one, as the user's
// connections will go.
func waitNodePorts(ctx context.Context, tunnel *Tunnel, nodeIP string, svc *corev1.Service, timeout time.Duration) error {
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	if tunnel != nil {
		dial = func(_ context.Context, addr string) (net.Conn, error) { return tunnel.client.Dial("tcp", addr) }
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		addr := net.JoinHostPort(nodeIP, fmt.Sprint(p.NodePort))
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			conn, err := dial(actx, addr)
			if err != nil {
				return false, nil
			}
			conn.Close()
			return true, nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("service %s/%s: the node does not answer on node port %d yet (kube-proxy programs it; see `mkube logs` if it stays so)", svc.Namespace, svc.Name, p.NodePort)
		}
	}
	return nil
}
