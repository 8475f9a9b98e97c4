package cache

import (
	"testing"
)

func TestImageSource(t *testing.T) {
	tests := []struct{ ref, repo, want string }{
		{"registry.k8s.io/pause:3.10.1", "", "registry.k8s.io/pause:3.10.1"},
		{"registry.k8s.io/coredns/coredns:v1.12.1", "127.0.0.1:5080", "127.0.0.1:5080/coredns/coredns:v1.12.1"},
		{"registry.k8s.io/kube-apiserver:v1.34.4", "mirror.corp:5000/k8s/", "mirror.corp:5000/k8s/kube-apiserver:v1.34.4"},
		{"mkube.local/storage-provisioner:v0.1.0", "localhost:5080", "localhost:5080/storage-provisioner:v0.1.0"},
	}
	for _, tt := range tests {
		got, err := ImageSource(tt.ref, tt.repo)
		if err != nil || got.String() != tt.want {
			t.Errorf("ImageSource(%q, %q) = %v, %v; want %s", tt.ref, tt.repo, got, err, tt.want)
		}
	}
	if !Loopback("127.0.0.1:5080") || !Loopback("localhost:1") || Loopback("mirror.corp:5000") {
		t.Error("loopback detection")
	}

	// Plain HTTP only for loopback and for repositories stored as http:// (--insecure-registry).
	for _, tt := range []struct {
		repo   string
		scheme string
		want   string
	}{
		{"localhost:5080", "http", "localhost:5080/pause:3.10.1"},
		{"http://10.1.2.3:5000/k8s", "http", "10.1.2.3:5000/k8s/pause:3.10.1"},
		{"http://mirror.corp:5000", "http", "mirror.corp:5000/pause:3.10.1"},
		{"https://mirror.corp:5000", "https", "mirror.corp:5000/pause:3.10.1"},
		{"mirror.corp", "https", "mirror.corp/pause:3.10.1"},
	} {
		got, err := ImageSource("registry.k8s.io/pause:3.10.1", tt.repo)
		if err != nil || got.String() != tt.want || got.Context().Registry.Scheme() != tt.scheme {
			t.Errorf("ImageSource(_, %q) = %v (%s), %v; want %s over %s", tt.repo, got, got.Context().Registry.Scheme(), err, tt.want, tt.scheme)
		}
	}
}
