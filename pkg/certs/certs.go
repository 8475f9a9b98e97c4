// Package certs makes the cluster's certificates on the host: one CA (and one front-proxy CA) for
// all profiles, kept across delete and recreate so users trust it once, and per-cluster leaf
// certificates signed by it. kubeadm finds them in /etc/kubernetes/pki and makes only the rest.
package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"mkube/pkg/atomicfile"
)

// Pair is a certificate and its key on disk.
type Pair struct{ Cert, Key string }

// In returns the pair for base name in dir: dir/base.crt, dir/base.key.
func In(dir, base string) Pair {
	return Pair{Cert: filepath.Join(dir, base+".crt"), Key: filepath.Join(dir, base+".key")}
}

// CA is a loaded certificate authority.
type CA struct {
	Pair
	cert *x509.Certificate
	key  crypto.Signer
}

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 3 * 365 * 24 * time.Hour
)

// EnsureCA loads the CA at p, or creates it if it is missing or unusable.
func EnsureCA(p Pair, commonName string) (*CA, error) {
	if ca, err := LoadCA(p); err == nil && time.Until(ca.cert.NotAfter) > 30*24*time.Hour {
		return ca, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	if err := write(p, der, key); err != nil {
		return nil, err
	}
	return LoadCA(p)
}

// LoadCA reads a CA from disk.
func LoadCA(p Pair) (*CA, error) {
	cert, err := ReadCert(p.Cert)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", p.Cert)
	}
	raw, err := os.ReadFile(p.Key)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM key", p.Key)
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Key, err)
	}
	return &CA{Pair: p, cert: cert, key: key}, nil
}

// Request describes a leaf certificate.
type Request struct {
	CommonName    string
	Organizations []string
	DNSNames      []string
	IPs           []net.IP
	Server        bool // server auth (else client auth)
}

// Ensure makes sure p holds a certificate for req signed by ca, reissuing it when it is missing,
// expiring, signed by another CA, or lacks a requested name or address.
func (ca *CA) Ensure(p Pair, req Request) (issued bool, err error) {
	if cert, err := ReadCert(p.Cert); err == nil && ca.satisfies(cert, req) {
		if _, err := os.Stat(p.Key); err == nil {
			return false, nil
		}
	}
	return true, ca.Issue(p, req)
}

func (ca *CA) satisfies(cert *x509.Certificate, req Request) bool {
	if cert.CheckSignatureFrom(ca.cert) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour ||
		cert.Subject.CommonName != req.CommonName || !slices.Equal(cert.Subject.Organization, req.Organizations) {
		return false
	}
	for _, d := range req.DNSNames {
		if !slices.Contains(cert.DNSNames, d) {
			return false
		}
	}
	for _, ip := range req.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// Issue signs a new certificate for req and writes it with a new key.
func (ca *CA) Issue(p Pair, req Request) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	usage := x509.ExtKeyUsageClientAuth
	if req.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organizations},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     req.DNSNames,
		IPAddresses:  req.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	return write(p, der, key)
}

// EnsureKeyPair makes an RSA key pair (the service-account signing keys: sa.key, sa.pub).
func EnsureKeyPair(private, public string) error {
	if _, err := os.Stat(private); err == nil {
		if _, err := os.Stat(public); err == nil {
			return nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writePEM(private, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(public, "PUBLIC KEY", pub, 0o644)
}

// ReadCert parses a PEM certificate file.
func ReadCert(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New(path + " holds no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func write(p Pair, der []byte, key *rsa.PrivateKey) error {
	// Key first: a certificate on disk always has its key beside it.
	if err := writePEM(p.Key, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(p.Cert, "CERTIFICATE", der, 0o644)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return atomicfile.WriteBytes(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}
