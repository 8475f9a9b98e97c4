package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

func TestFormatServiceURLs(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 80, NodePort: 31000}, {Name: "metrics", Port: 9090, NodePort: 31001}, {Name: "internal", Port: 1}}}}
	tests := []struct {
		format  string
		want    string
		wantErr bool
	}{
		{DefaultServiceFormat, "http://192.168.49.2:31000 http://192.168.49.2:31001", false},
		{"{{.IP}}:{{.Port}}", "192.168.49.2:31000 192.168.49.2:31001", false},
		{"{{.Name}}={{.Port}}", "http=31000 metrics=31001", false},
		{"{{.Nope}}", "", true},
		{"{{", "", true},
	}
	for _, tt := range tests {
		got, err := FormatServiceURLs(svc, "192.168.49.2", tt.format)
		if (err != nil) != tt.wantErr || strings.Join(got, " ") != tt.want {
			t.Errorf("%q: %v, %v; want %q", tt.format, got, err, tt.want)
		}
	}
}

func TestDashboardProxyOnlyAnswersLoopbackReads(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	defer api.Close()
	h, err := dashboardProxy(&rest.Config{Host: api.URL}, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, host, path string
		code               int
		body               string
	}{
		{"GET", "127.0.0.1:4000", "/ns/default", 200, "/api/v1/namespaces/kubernetes-dashboard/services/http:kubernetes-dashboard:http/proxy/ns/default"},
		{"GET", "localhost:4000", "/", 200, "/api/v1/namespaces/kubernetes-dashboard/services/http:kubernetes-dashboard:http/proxy/"},
		{"GET", "evil.example:4000", "/", 403, ""},
		{"POST", "127.0.0.1:4000", "/", 405, ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.code || (tt.body != "" && rec.Body.String() != tt.body) {
			t.Errorf("%s %s%s: %d %q", tt.method, tt.host, tt.path, rec.Code, rec.Body.String())
		}
	}
}
