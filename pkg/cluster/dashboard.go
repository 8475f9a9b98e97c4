package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"mkube/pkg/addons"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

// The dashboard addon's service, as minikube names it.
const (
	dashboardNamespace = "kubernetes-dashboard"
	dashboardService   = "kubernetes-dashboard"
)

// DashboardOptions are `mkube dashboard`'s flags.
type DashboardOptions struct {
	Port int           // local port; 0 picks a free one
	Wait time.Duration // how long to wait for the dashboard's pod to be ready
	// Ready is called with the URL once the dashboard answers through the proxy.
	Ready func(url string)
}

// Dashboard enables the dashboard addon if needed, waits until its pod is ready, and serves it on
// 127.0.0.1 through a proxy that authenticates to the API server with the profile's Credentials
// (the API server's service proxy does the rest). It runs until ctx ends (Ctrl-C).
func (m *Manager) Dashboard(ctx context.Context, profile string, o DashboardOptions) error {
	mc, err := m.Running(ctx, profile)
	if err != nil {
		return err
	}
	p, ep := mc.Profile, mc.Endpoint
	mc.Close() // the dashboard needs only the API server's address
	if on := addons.Enabled(p.Addons); !containsAddon(on, "dashboard") {
		if err := m.AddonEnable(ctx, profile, "dashboard"); err != nil {
			return err
		}
	}
	cfg := m.RestConfig(profile, ep)
	client, err := m.Client(profile, ep)
	if err != nil {
		return err
	}
	m.Out.Step(out.Verify, "Verifying dashboard health ...")
	if err := waitEndpoints(ctx, client, dashboardNamespace, dashboardService, o.Wait); err != nil {
		return reason.New(reason.Service, errors.New("the dashboard's pod did not become ready"),
			"see `mkube kubectl -- -n kubernetes-dashboard describe pods`")
	}
	handler, err := dashboardProxy(cfg, o.Port)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.Port))
	if err != nil {
		return reason.Errorf(reason.Usage, "pick another --port, or leave it out to use a free one", "cannot listen on 127.0.0.1:%d: %v", o.Port, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()
	u := fmt.Sprintf("http://%s/", ln.Addr())

	m.Out.Step(out.Verify, "Verifying proxy health ...")
	if err := waitHTTP(ctx, u+"healthz", o.Wait); err != nil {
		return reason.New(reason.Service, err, "see `mkube logs -p "+profile+"`")
	}
	if o.Ready != nil {
		o.Ready(u)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-served:
		return err
	}
}

func containsAddon(list []addons.Addon, name string) bool {
	for _, a := range list {
		if a.Name == name {
			return true
		}
	}
	return false
}

// dashboardProxy forwards every request to the dashboard service through the API server's service
// proxy. Only requests addressed to the loopback listener are served: a web page the user visits
// cannot reach the cluster through it by rebinding a DNS name to 127.0.0.1.
func dashboardProxy(cfg *rest.Config, port int) (http.Handler, error) {
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	prefix := "/api/v1/namespaces/" + dashboardNamespace + "/services/http:" + dashboardService + ":http/proxy"
	rp := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = target.Scheme, target.Host
			r.Out.URL.Path = prefix + r.In.URL.Path
			r.Out.URL.RawPath = ""
			r.Out.Host = target.Host
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if host != "127.0.0.1" && host != "localhost" {
			http.Error(w, "the mkube dashboard proxy only answers to http://127.0.0.1", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		rp.ServeHTTP(w, r)
	}), nil
}

// waitHTTP polls url until it answers 200: right after the pod turns ready the API server's proxy
// may still answer 503 for a moment.
func waitHTTP(ctx context.Context, u string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("the dashboard does not answer through the proxy: %s", strings.TrimSpace(last))
	}
	return nil
}
