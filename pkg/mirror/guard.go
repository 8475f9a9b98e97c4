package mirror

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
)

// ServerOption changes what NewServer's handler accepts.
type ServerOption func(*guard)

// AllowPush lets clients push to the registry (blob uploads, manifest PUTs, deletes). Without it
// the mirror is read-only: it serves a cache that mkube trusts, and anyone who can reach it could
// otherwise replace what clusters pull.
func AllowPush() ServerOption { return func(g *guard) { g.push = true } }

// AllowHosts adds names (or addresses) a request's Host header may carry besides loopback ones:
// the listen address, or a name the mirror is served under. A port, if given, is ignored.
func AllowHosts(names ...string) ServerOption {
	return func(g *guard) {
		for _, n := range names {
			if h := hostOnly(n); h != "" {
				g.hosts[h] = true
			}
		}
	}
}

// guard is what sits in front of the mirror's handlers: the DNS rebinding check and the
// read-only rule.
type guard struct {
	next  http.Handler
	push  bool
	hosts map[string]bool // lower-case host names without port
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A web page can point its own DNS name at 127.0.0.1 ("DNS rebinding") and have the browser
	// talk to the mirror as same-origin. The browser still sends that name as Host, so only names
	// that mean this machine, or ones the operator listed, are served.
	if !g.allowedHost(r.Host) {
		writeRegistryError(w, http.StatusForbidden, "DENIED",
			"host "+r.Host+" is not served here: use a loopback address or start mkube-mirror serve with --allow-host NAME")
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		g.next.ServeHTTP(w, r)
		return
	}
	if !g.push || !strings.HasPrefix(r.URL.Path, "/v2/") {
		w.Header().Set("Allow", "GET, HEAD")
		writeRegistryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED",
			"this mirror is read-only: start mkube-mirror serve with --allow-push to push to it")
		return
	}
	g.next.ServeHTTP(w, r)
}

func (g *guard) allowedHost(hostport string) bool {
	h := hostOnly(hostport)
	if h == "" {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || g.hosts[h] {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// hostOnly is the lower-case host of a Host header or listen address, without port or brackets.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// writeRegistryError answers in the OCI distribution spec's error format, which registry clients
// (docker, crane, containerd) show to the user.
func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Errors []entry `json:"errors"`
	}{[]entry{{code, msg}}})
}
