package start

import (
	"strings"
	"testing"

	"mkube/pkg/config"
	"mkube/pkg/reason"
)

func TestCheckMirrorTransport(t *testing.T) {
	tests := []struct {
		name         string
		binary, repo string
		mirror       string
		insecure     []string
		wantRepo     string // as stored in the profile
		wantMirror   string
		wantErr      string // a piece of the one-line refusal; "" for accepted
	}{
		{name: "defaults"},
		{name: "https mirror", binary: "https://mirror.corp/release", repo: "mirror.corp:5000/k8s", wantRepo: "mirror.corp:5000/k8s"},
		{name: "loopback mirror", binary: "http://127.0.0.1:5080/release", repo: "127.0.0.1:5080", wantRepo: "127.0.0.1:5080"},
		{name: "127/8 and localhost", binary: "http://127.1.2.3/release", repo: "localhost:5080", wantRepo: "localhost:5080"},
		{name: "ipv6 loopback", binary: "http://[::1]:5080/release", repo: "[::1]:5080", wantRepo: "[::1]:5080"},
		{name: "file mirror", binary: "file:///srv/mirror/release"},
		{name: "plain http binary mirror", binary: "http://mirror.corp/release",
			wantErr: "--binary-mirror http://mirror.corp/release is plain HTTP to another machine, where anyone on the way can replace the binaries: use https, or --insecure-registry mirror.corp if"},
		{name: "plain http binary mirror, listed", binary: "http://mirror.corp:8080/release", insecure: []string{"mirror.corp"}},
		{name: "plain http binary mirror, listed with port", binary: "http://10.0.0.5:8080/release", insecure: []string{"10.0.0.5:8080"}},
		{name: "listed with another port", binary: "http://10.0.0.5:8080/release", insecure: []string{"10.0.0.5:9090"},
			wantErr: "--insecure-registry 10.0.0.5:8080"},
		{name: "listed by CIDR", binary: "http://10.0.0.5/release", repo: "10.0.0.5:5000", insecure: []string{"10.0.0.0/24"},
			wantRepo: "http://10.0.0.5:5000"},
		{name: "a lookalike of localhost", binary: "http://localhost.attacker.example/release",
			wantErr: "--insecure-registry localhost.attacker.example"},
		// go-containerregistry falls back to plain HTTP for private addresses and *.localhost.
		{name: "private address registry", repo: "192.168.1.5:5000",
			wantErr: "--image-repository 192.168.1.5:5000 would be pulled over plain HTTP from another machine, where anyone on the way can replace the images: serve it over https under a name, or pass --insecure-registry 192.168.1.5:5000 if"},
		{name: "private address registry, listed", repo: "192.168.1.5:5000/k8s", insecure: []string{"192.168.1.5"},
			wantRepo: "http://192.168.1.5:5000/k8s"},
		{name: "named registry, listed", repo: "mirror.lan:5000", insecure: []string{"Mirror.LAN:5000"}, wantRepo: "http://mirror.lan:5000"},
		{name: "explicit http registry", repo: "http://mirror.corp", wantErr: "--insecure-registry mirror.corp"},
		{name: "explicit https registry", repo: "https://mirror.corp/k8s", wantRepo: "mirror.corp/k8s"},
		{name: "dot-localhost registry", repo: "reg.localhost:5000", wantErr: "--insecure-registry reg.localhost:5000"},
		{name: "not a registry", repo: "/k8s", wantErr: "does not start with a registry host"},
		{name: "HTTP in capitals", binary: "HTTP://mirror.corp/release", wantErr: "--insecure-registry mirror.corp"},
		{name: "https mirror registry", mirror: "harbor.corp/mkube", wantMirror: "harbor.corp/mkube"},
		{name: "loopback mirror registry", mirror: "127.0.0.1:5000/mkube", wantMirror: "127.0.0.1:5000/mkube"},
		{name: "private address mirror registry", mirror: "10.0.0.5:5000/mkube",
			wantErr: "--mirror 10.0.0.5:5000/mkube would be pulled over plain HTTP from another machine"},
		{name: "private address mirror registry, listed", mirror: "10.0.0.5:5000/mkube", insecure: []string{"10.0.0.5"},
			wantMirror: "http://10.0.0.5:5000/mkube"},
		{name: "explicit http mirror registry", mirror: "http://harbor.corp/mkube", wantErr: "--insecure-registry harbor.corp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &config.Profile{BinaryMirror: tt.binary, ImageRepository: tt.repo, Mirror: tt.mirror}
			err := checkMirrorTransport(p, tt.insecure, false)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.ImageRepository != tt.wantRepo || p.Mirror != tt.wantMirror {
					t.Errorf("stored repository %q and mirror %q, want %q and %q", p.ImageRepository, p.Mirror, tt.wantRepo, tt.wantMirror)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("not one line: %q", err)
			}
			if e, ok := reason.As(err); !ok || e.Kind != reason.Usage {
				t.Errorf("not a usage error: %#v", err)
			}
		})
	}

	// An existing profile keeps what it was created with: start flags do not change it.
	p := &config.Profile{BinaryMirror: "http://mirror.corp/release"}
	if err := checkMirrorTransport(p, nil, true); err != nil {
		t.Errorf("existing profile re-validated: %v", err)
	}
}
