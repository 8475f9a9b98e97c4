// Package dashboard is mkube's web UI: server-rendered pages over the Kubernetes API, so it needs no
// JavaScript build, works in any browser, and is built from this repository by the offline mirror.
//
// Every link is relative to the page it is on, so the UI works at any path prefix: behind
// `mkube dashboard`'s local proxy, the API server's service proxy, or `kubectl proxy`.
package dashboard

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

//go:embed templates/*.html
var templateFS embed.FS

// Server serves the UI.
type Server struct {
	client kubernetes.Interface
	tmpl   *template.Template
	mux    *http.ServeMux
	now    func() time.Time
}

// New builds the UI over a client.
func New(client kubernetes.Interface) *Server {
	s := &Server{client: client, now: time.Now, mux: http.NewServeMux()}
	s.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"age":         s.age,
		"join":        strings.Join,
		"podReady":    podReady,
		"deployReady": deploymentReady,
		// dict hands the shared "pods" table the page's root and the rows.
		"dict": func(root string, pods any) map[string]any { return map[string]any{"Root": root, "Pods": pods} },
	}).ParseFS(templateFS, "templates/*.html"))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	s.mux.HandleFunc("GET /{$}", s.overview)
	s.mux.HandleFunc("GET /ns/{ns}", s.namespace)
	s.mux.HandleFunc("GET /ns/{ns}/pods/{name}", s.pod)
	s.mux.HandleFunc("GET /ns/{ns}/pods/{name}/log", s.podLog)
	s.mux.HandleFunc("GET /ns/{ns}/deployments/{name}", s.deployment)
	s.mux.HandleFunc("GET /ns/{ns}/services/{name}", s.service)
	s.mux.HandleFunc("GET /nodes/{name}", s.node)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// page is what every template gets: Root turns a site path into a link relative to this page.
type page struct {
	Title string
	Root  string
	Data  any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	root := strings.Repeat("../", strings.Count(r.URL.Path, "/")-1)
	if root == "" {
		root = "./"
	}
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, page{Title: title, Root: root, Data: data}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

// fail shows an API error as a page: a missing object is a 404, anything else a 502.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	if apierrors.IsNotFound(err) {
		code = http.StatusNotFound
	}
	w.WriteHeader(code)
	s.render(w, r, "error.html", "Error", err.Error())
}

func (s *Server) age(t metav1.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := s.now().Sub(t.Time)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// podReady is "ready/total" containers.
func podReady(p corev1.Pod) string {
	ready := 0
	for _, c := range p.Status.ContainerStatuses {
		if c.Ready {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
}

// PodStatus is what `kubectl get pods` shows as STATUS.
func PodStatus(p corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Waiting != nil && c.State.Waiting.Reason != "" {
			return c.State.Waiting.Reason
		}
		if c.State.Terminated != nil && c.State.Terminated.Reason != "" && p.Status.Phase != corev1.PodSucceeded {
			return c.State.Terminated.Reason
		}
	}
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	return string(p.Status.Phase)
}

type podRow struct {
	Pod      corev1.Pod
	Status   string
	Restarts int32
}

func podRows(pods []corev1.Pod) []podRow {
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	rows := make([]podRow, 0, len(pods))
	for _, p := range pods {
		var restarts int32
		for _, c := range p.Status.ContainerStatuses {
			restarts += c.RestartCount
		}
		rows = append(rows, podRow{Pod: p, Status: PodStatus(p), Restarts: restarts})
	}
	return rows
}

type nodeRow struct {
	Node    corev1.Node
	Ready   string
	Address string
}

func nodeRows(nodes []corev1.Node) []nodeRow {
	var rows []nodeRow
	for _, n := range nodes {
		row := nodeRow{Node: n, Ready: "Unknown"}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				row.Ready = map[corev1.ConditionStatus]string{corev1.ConditionTrue: "Ready", corev1.ConditionFalse: "NotReady"}[c.Status]
			}
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				row.Address = a.Address
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	nodes, err := s.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	nss, err := s.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pods, err := s.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "overview.html", "Cluster", map[string]any{
		"Nodes": nodeRows(nodes.Items), "Namespaces": nss.Items, "Pods": podRows(pods.Items),
	})
}

func (s *Server) namespace(w http.ResponseWriter, r *http.Request) {
	ctx, ns := r.Context(), r.PathValue("ns")
	if _, err := s.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		s.fail(w, r, err)
		return
	}
	data := map[string]any{"Namespace": ns}
	var errs []string
	note := func(err error) bool {
		if err != nil {
			errs = append(errs, err.Error())
		}
		return err != nil
	}
	if l, err := s.client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); !note(err) {
		data["Deployments"] = l.Items
	}
	if l, err := s.client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{}); !note(err) {
		data["StatefulSets"] = l.Items
	}
	if l, err := s.client.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{}); !note(err) {
		data["DaemonSets"] = l.Items
	}
	if l, err := s.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !note(err) {
		data["Pods"] = podRows(l.Items)
	}
	if l, err := s.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); !note(err) {
		data["Services"] = l.Items
	}
	data["Events"] = s.events(ctx, ns, "")
	data["Errors"] = errs
	s.render(w, r, "namespace.html", "Namespace "+ns, data)
}

// events are the namespace's events (about one object when name is set), newest first.
func (s *Server) events(ctx context.Context, ns, name string) []corev1.Event {
	opts := metav1.ListOptions{}
	if name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("involvedObject.name", name).String()
	}
	l, err := s.client.CoreV1().Events(ns).List(ctx, opts)
	if err != nil {
		return nil
	}
	ev := l.Items
	sort.Slice(ev, func(i, j int) bool { return eventTime(ev[i]).After(eventTime(ev[j])) })
	if len(ev) > 50 {
		ev = ev[:50]
	}
	return ev
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func (s *Server) pod(w http.ResponseWriter, r *http.Request) {
	ctx, ns, name := r.Context(), r.PathValue("ns"), r.PathValue("name")
	p, err := s.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "pod.html", "Pod "+ns+"/"+name, map[string]any{
		"Pod": p, "Status": PodStatus(*p), "Events": s.events(ctx, ns, name),
	})
}

func (s *Server) podLog(w http.ResponseWriter, r *http.Request) {
	ctx, ns, name := r.Context(), r.PathValue("ns"), r.PathValue("name")
	p, err := s.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	container := r.URL.Query().Get("container")
	if container == "" && len(p.Spec.Containers) > 0 {
		container = p.Spec.Containers[0].Name
	}
	tail := int64(1000)
	opts := &corev1.PodLogOptions{Container: container, TailLines: &tail, Previous: r.URL.Query().Get("previous") == "true"}
	raw, err := s.client.CoreV1().Pods(ns).GetLogs(name, opts).DoRaw(ctx)
	data := map[string]any{"Pod": p, "Container": container, "Log": string(raw), "Previous": opts.Previous}
	if err != nil {
		data["Log"], data["Error"] = "", err.Error()
	}
	s.render(w, r, "log.html", "Logs of "+ns+"/"+name, data)
}

func (s *Server) deployment(w http.ResponseWriter, r *http.Request) {
	ctx, ns, name := r.Context(), r.PathValue("ns"), r.PathValue("name")
	d, err := s.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := map[string]any{"Deployment": d, "Events": s.events(ctx, ns, name)}
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		if l, err := s.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()}); err == nil {
			data["Pods"] = podRows(l.Items)
		}
	}
	s.render(w, r, "deployment.html", "Deployment "+ns+"/"+name, data)
}

func (s *Server) service(w http.ResponseWriter, r *http.Request) {
	ctx, ns, name := r.Context(), r.PathValue("ns"), r.PathValue("name")
	svc, err := s.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := map[string]any{"Service": svc, "Events": s.events(ctx, ns, name)}
	if len(svc.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(svc.Spec.Selector).String()
		if l, err := s.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel}); err == nil {
			data["Pods"] = podRows(l.Items)
		}
	}
	s.render(w, r, "service.html", "Service "+ns+"/"+name, data)
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("name")
	n, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := map[string]any{"Node": n, "Row": nodeRows([]corev1.Node{*n})[0], "Events": s.events(ctx, "default", name)}
	if l, err := s.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name}); err == nil {
		data["Pods"] = podRows(l.Items)
	}
	s.render(w, r, "node.html", "Node "+name, data)
}

// deploymentReady is "ready/desired" replicas.
func deploymentReady(d appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want)
}
