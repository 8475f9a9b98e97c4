package certs

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestCAKeptAndLeavesReissuedOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir()
	caPair := In(dir, "ca")
	ca, err := EnsureCA(caPair, "mkubeCA")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(caPair.Cert)
	if _, err := EnsureCA(caPair, "mkubeCA"); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(caPair.Cert)
	if string(first) != string(again) {
		t.Error("EnsureCA replaced a valid CA")
	}
	if st, _ := os.Stat(caPair.Key); st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", st.Mode().Perm())
	}

	leaf := In(dir, "apiserver")
	req := Request{CommonName: "kube-apiserver", DNSNames: []string{"localhost", "control-plane.mkube.internal"},
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.168.49.2")}, Server: true}
	tests := []struct {
		name       string
		change     func(*Request)
		wantIssued bool
	}{
		{"new", func(*Request) {}, true},
		{"unchanged", func(*Request) {}, false},
		{"subset of names", func(r *Request) { r.DNSNames = r.DNSNames[:1] }, false},
		{"new IP", func(r *Request) { r.IPs = append(r.IPs, net.ParseIP("10.0.0.5")) }, true},
		{"new name", func(r *Request) { r.DNSNames = append(r.DNSNames, "my.host") }, true},
	}
	for _, tt := range tests {
		r := req
		r.DNSNames = append([]string(nil), req.DNSNames...)
		r.IPs = append([]net.IP(nil), req.IPs...)
		tt.change(&r)
		issued, err := ca.Ensure(leaf, r)
		if err != nil || issued != tt.wantIssued {
			t.Errorf("%s: issued=%v err=%v, want issued=%v", tt.name, issued, err, tt.wantIssued)
		}
		if tt.wantIssued {
			req = r
		}
	}
	cert, err := ReadCert(leaf.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(first)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "my.host"}); err != nil {
		t.Errorf("leaf does not verify against the CA: %v", err)
	}
	if st, _ := os.Stat(leaf.Key); st.Mode().Perm() != 0o600 {
		t.Errorf("leaf key mode %v", st.Mode().Perm())
	}

	// A leaf signed by another CA is replaced.
	other, _ := EnsureCA(In(t.TempDir(), "ca"), "other")
	if issued, _ := other.Ensure(leaf, req); !issued {
		t.Error("leaf signed by a different CA was kept")
	}
}

func TestClientCertAndKeyPair(t *testing.T) {
	dir := t.TempDir()
	ca, _ := EnsureCA(In(dir, "ca"), "mkubeCA")
	p := In(dir, "client")
	if _, err := ca.Ensure(p, Request{CommonName: "mkube-user", Organizations: []string{"system:masters"}}); err != nil {
		t.Fatal(err)
	}
	c, _ := ReadCert(p.Cert)
	if c.Subject.Organization[0] != "system:masters" || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("client cert: %+v", c.Subject)
	}
	if err := EnsureKeyPair(filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")); err != nil {
		t.Fatal(err)
	}
	k1, _ := os.ReadFile(filepath.Join(dir, "sa.key"))
	EnsureKeyPair(filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub"))
	k2, _ := os.ReadFile(filepath.Join(dir, "sa.key"))
	if string(k1) != string(k2) {
		t.Error("service account key replaced")
	}
}
