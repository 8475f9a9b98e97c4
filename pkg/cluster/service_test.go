package cluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
