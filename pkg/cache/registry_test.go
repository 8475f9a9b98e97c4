package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestRegistryRef(t *testing.T) {
	const dig = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		ref            string
		want, scheme   string // want "" = refused
		repo, registry string
	}{
		{ref: "mirror.corp:5000/mkube/iso:v0.1.0", want: "mirror.corp:5000/mkube/iso:v0.1.0", scheme: "https", repo: "mkube/iso", registry: "mirror.corp:5000"},
		{ref: "https://mirror.corp/mkube/iso:v0.1.0", want: "mirror.corp/mkube/iso:v0.1.0", scheme: "https", repo: "mkube/iso", registry: "mirror.corp"},
		{ref: "http://mirror.corp/mkube/iso:v0.1.0", want: "mirror.corp/mkube/iso:v0.1.0", scheme: "http", repo: "mkube/iso", registry: "mirror.corp"},
		{ref: "127.0.0.1:5080/node:v1", want: "127.0.0.1:5080/node:v1", scheme: "http", repo: "node", registry: "127.0.0.1:5080"},
		{ref: "localhost:5080/node:v1", want: "localhost:5080/node:v1", scheme: "http", repo: "node", registry: "localhost:5080"},
		{ref: "[::1]:5080/node:v1", want: "[::1]:5080/node:v1", scheme: "http", repo: "node", registry: "[::1]:5080"},
		{ref: "ghcr.io/mkube/node@" + dig, want: "ghcr.io/mkube/node@" + dig, scheme: "https", repo: "mkube/node", registry: "ghcr.io"},
		{ref: "ghcr.io/mkube/node:v1@" + dig, want: "ghcr.io/mkube/node@" + dig, scheme: "https", repo: "mkube/node", registry: "ghcr.io"},
		{ref: "http://10.0.0.1:5000/k/node:v1@" + dig, want: "10.0.0.1:5000/k/node@" + dig, scheme: "http", repo: "k/node", registry: "10.0.0.1:5000"},
		{ref: "ghcr.io/mkube/node@sha256:short"},
		{ref: "ghcr.io/Mkube/node:v1"},
		{ref: "http://"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := RegistryRef(tt.ref)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("RegistryRef(%q) = %v, want refusal", tt.ref, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := got.Context()
			if got.Name() != tt.want || c.Registry.Scheme() != tt.scheme || c.RepositoryStr() != tt.repo || c.RegistryStr() != tt.registry {
				t.Errorf("RegistryRef(%q) = %s over %s (repo %s, registry %s); want %s over %s (repo %s, registry %s)",
					tt.ref, got.Name(), c.Registry.Scheme(), c.RepositoryStr(), c.RegistryStr(), tt.want, tt.scheme, tt.repo, tt.registry)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestUnreachable(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"network", context.Background(), fmt.Errorf("GET: %w", timeoutErr{}), true},
		{"stall", context.Background(), &StallError{URL: "u"}, true},
		{"gateway", context.Background(), &transport.Error{StatusCode: http.StatusBadGateway}, true},
		{"not found", context.Background(), &transport.Error{StatusCode: http.StatusNotFound}, false},
		{"unauthorized", context.Background(), &transport.Error{StatusCode: http.StatusUnauthorized}, false},
		{"refused manifest", context.Background(), errors.New("manifest digest does not match"), false},
		{"cancelled", cancelled, fmt.Errorf("GET: %w", timeoutErr{}), false},
		{"no error", context.Background(), nil, false},
	}
	for _, tt := range tests {
		if got := Unreachable(tt.ctx, tt.err); got != tt.want {
			t.Errorf("%s: unreachable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
