package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RegistryRef parses a reference to something in a registry: HOST[:PORT]/PATH/REPO:TAG,
// …/REPO@sha256:… or …/REPO:TAG@sha256:… (the digest decides; the tag is only a reminder), with
// an optional http:// or https:// in front. It is the one place of the plain-HTTP rule: a registry
// on loopback, or one written http://HOST (a mirror the user listed in --insecure-registry), is
// spoken to over plain HTTP; https://HOST means the same as HOST.
//
// Parsing is go-containerregistry's usual one (a name without a host is on Docker Hub, one without
// a tag is :latest), so that image references and mirrors keep the meaning they had.
func RegistryRef(ref string) (name.Reference, error) {
	bare, plain := strings.CutPrefix(ref, "http://")
	bare = strings.TrimPrefix(bare, "https://")
	var opts []name.Option
	if plain || Loopback(bare) {
		opts = append(opts, name.Insecure) // a local or trusted registry speaks plain HTTP
	}
	r, err := name.ParseReference(bare, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry reference %q: %w", ref, err)
	}
	return r, nil
}

// Loopback reports whether the host of a reference, a repository or a bare host[:port] is a loopback name or
// address: localhost, 127.0.0.0/8, ::1.
func Loopback(ref string) bool {
	host := strings.SplitN(ref, "/", 2)[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// retryCodes are the statuses go-containerregistry's remote package retries by default; a
// transport handed to it already authenticated (as blobSource's is) is used as it is, so the
// retries are added here.
var retryCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// blobSource is a repository to pull from and a client authenticated for pulling from it: one
// handshake (ping, token) serves the manifest (remote.WithTransport(rt)) and every blob.
type blobSource struct {
	repo   name.Repository
	rt     http.RoundTripper
	client *http.Client // rt, following redirects (registries send blobs to a CDN)
}

// newBlobSource authenticates with the user's registry credentials (authn.DefaultKeychain: the
// Docker config) through Transport(), with pull scope on repo.
func newBlobSource(ctx context.Context, repo name.Repository) (*blobSource, error) {
	auth, err := authn.Resolve(ctx, authn.DefaultKeychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	inner := transport.NewRetry(Transport(), transport.WithRetryStatusCodes(retryCodes...))
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, inner, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("reaching %s: %w", repo.RegistryStr(), err)
	}
	return &blobSource{repo: repo, rt: rt, client: &http.Client{Transport: rt}}, nil
}

// Unreachable reports whether err means the registry could not be reached at all (no connection,
// a stalled one, a gateway in front of it failing), as opposed to an answer from it (not found,
// unauthorized, a manifest refused): only then may a verified local copy stand in for it. A
// cancelled ctx is the caller's doing, not the registry's.
func Unreachable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode >= http.StatusInternalServerError
	}
	var ne net.Error // *url.Error is one: every failed round trip
	return errors.As(err, &ne) || IsStall(err)
}
