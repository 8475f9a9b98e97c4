package cache

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts bound each phase of an exchange with a mirror, so that one that stops answering fails
// with a message instead of holding `mkube start` forever. There is no bound on a whole download:
// an ISO over a slow link may rightly take long, as long as data keeps coming.
type Timeouts struct {
	Dial           time.Duration // TCP connect
	TLSHandshake   time.Duration
	ResponseHeader time.Duration // from the request written to the response's headers
	IdleConn       time.Duration // how long a pooled keep-alive connection is kept
	Stall          time.Duration // a body read making no progress for this long aborts
}

// DefaultTimeouts are what Transport uses.
var DefaultTimeouts = Timeouts{
	Dial:           30 * time.Second,
	TLSHandshake:   30 * time.Second,
	ResponseHeader: 60 * time.Second,
	IdleConn:       90 * time.Second,
	Stall:          60 * time.Second,
}

var shared = sync.OnceValue(func() http.RoundTripper { return NewTransport(DefaultTimeouts) })

// Transport is the one HTTP transport mkube fetches through (binaries, ISOs, checksums, images
// via go-containerregistry's remote.WithTransport), with DefaultTimeouts and the proxy taken from
// the environment (HTTPS_PROXY, NO_PROXY) as before. It is shared, so connections are pooled.
func Transport() http.RoundTripper { return shared() }

// NewTransport makes a transport with the given bounds (tests use short ones). Response bodies
// are guarded: a Read that makes no progress for t.Stall fails with a *StallError naming the URL.
func NewTransport(t Timeouts) http.RoundTripper {
	d := &net.Dialer{Timeout: t.Dial, KeepAlive: 30 * time.Second}
	return &stallGuard{
		base: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   t.TLSHandshake,
			ResponseHeaderTimeout: t.ResponseHeader,
			IdleConnTimeout:       t.IdleConn,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          100,
		},
		stall: t.Stall,
	}
}

// StallError is a response body that stopped delivering data.
type StallError struct {
	URL   string
	After time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("download of %s stalled: no data for %s", e.URL, seconds(e.After))
}

// seconds prints whole seconds as "60s" rather than Duration's "1m0s".
func seconds(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// stallGuard wraps every response body of base in a stallBody.
type stallGuard struct {
	base  http.RoundTripper
	stall time.Duration
}

func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil || g.stall <= 0 || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	resp.Body = newStallBody(resp.Body, req.URL.Redacted(), g.stall)
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pooled connections.
func (g *stallGuard) CloseIdleConnections() {
	if c, ok := g.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// stallBody fails a Read that waits longer than limit for data, by closing the body under it
// (which is what unblocks a Read on a silent connection). Only time spent inside Read counts: a
// caller that is slow between reads (a busy disk, a progress bar) is not the mirror's fault.
type stallBody struct {
	rc    io.ReadCloser
	url   string
	limit time.Duration
	timer *time.Timer

	mu      sync.Mutex
	stalled bool
}

func newStallBody(rc io.ReadCloser, url string, limit time.Duration) *stallBody {
	b := &stallBody{rc: rc, url: url, limit: limit}
	b.timer = time.AfterFunc(limit, b.abort)
	b.timer.Stop() // armed by each Read
	return b
}

func (b *stallBody) abort() {
	b.mu.Lock()
	b.stalled = true
	b.mu.Unlock()
	b.rc.Close()
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	stalled := b.stalled
	b.mu.Unlock()
	if stalled {
		return 0, &StallError{URL: b.url, After: b.limit}
	}
	b.timer.Reset(b.limit)
	n, err := b.rc.Read(p)
	if !b.timer.Stop() {
		// The timer fired during this Read: whatever the closed body returned, the cause is the
		// stall, and it should read as such.
		return n, &StallError{URL: b.url, After: b.limit}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}

// IsStall reports whether err is a stalled body; callers that add their own context use it to
// avoid repeating the URL.
func IsStall(err error) bool {
	var s *StallError
	return errors.As(err, &s)
}

// defaultClient is the default client of a Downloader: the shared transport, and no overall timeout
// (see Timeouts); requests carry the caller's ctx.
var defaultClient = sync.OnceValue(func() *http.Client { return &http.Client{Transport: Transport()} })
