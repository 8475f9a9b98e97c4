package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// short are bounds a test can wait out.
var short = Timeouts{Dial: time.Second, TLSHandshake: time.Second, ResponseHeader: 200 * time.Millisecond,
	IdleConn: time.Second, Stall: 200 * time.Millisecond}

// stallingServer serves checksums at once; "/stall" sends headers and a little data then goes
// silent, "/silent" never sends headers, "/trickle" sends a byte every 50ms for a second.
func stallingServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := func() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		switch r.URL.Path {
		case "/stall":
			w.Header().Set("Content-Length", "1000000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			wait()
		case "/silent":
			wait()
		case "/trickle":
			for range 20 {
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
		case "/trickle.sha256":
			w.Write([]byte(sum(bytes.Repeat([]byte("x"), 20))))
		default:
			w.Write([]byte(sum([]byte("anything"))))
		}
	}))
	// Handlers must return before Close can.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv
}

func TestStalledBodyFailsNamingTheURL(t *testing.T) {
	srv := stallingServer(t)
	d := &Downloader{Client: &http.Client{Transport: NewTransport(short)}}
	dst := filepath.Join(t.TempDir(), "bin")
	start := time.Now()
	err := d.File(context.Background(), srv.URL+"/stall", srv.URL+"/stall.sha256", dst, "bin")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a stalled body took %s to fail", took)
	}
	var stall *StallError
	if !errors.As(err, &stall) {
		t.Fatalf("err = %v, want a StallError", err)
	}
	if want := "download of " + srv.URL + "/stall stalled: no data for 200ms"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".bin.download-*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestNoHeadersFailsNamingTheURL(t *testing.T) {
	srv := stallingServer(t)
	d := &Downloader{Client: &http.Client{Transport: NewTransport(short)}}
	start := time.Now()
	_, err := d.Checksum(context.Background(), srv.URL+"/silent")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a server sending no headers took %s to fail", took)
	}
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/silent") || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Errorf("err = %v, want the URL and the header timeout", err)
	}
}

func TestSlowButSteadyIsNotAStall(t *testing.T) {
	// A second in all at a byte per 50ms: five times the stall bound, never a stall.
	srv := stallingServer(t)
	d := &Downloader{Client: &http.Client{Transport: NewTransport(short)}}
	dst := filepath.Join(t.TempDir(), "bin")
	if err := d.File(context.Background(), srv.URL+"/trickle", srv.URL+"/trickle.sha256", dst, "bin"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); len(got) != 20 {
		t.Errorf("got %d bytes", len(got))
	}
}

func TestSlowReaderIsNotAStall(t *testing.T) {
	// Only time inside Read counts: a consumer pausing between reads is not the mirror stalling.
	b := newStallBody(io.NopCloser(strings.NewReader("abc")), "http://mirror/x", 50*time.Millisecond)
	buf := make([]byte, 1)
	for range 3 {
		time.Sleep(120 * time.Millisecond)
		if _, err := b.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Read(buf); err != io.EOF {
		t.Errorf("end: %v, want EOF", err)
	}
	b.Close()
}

func TestTransportDefaults(t *testing.T) {
	g, ok := Transport().(*stallGuard)
	if !ok {
		t.Fatalf("Transport() is %T", Transport())
	}
	tr := g.base.(*http.Transport)
	if tr.Proxy == nil {
		t.Error("the proxy from the environment is no longer honoured")
	}
	if tr.TLSHandshakeTimeout != 30*time.Second || tr.ResponseHeaderTimeout != 60*time.Second ||
		tr.IdleConnTimeout != 90*time.Second || g.stall != 60*time.Second {
		t.Errorf("timeouts: TLS %s, headers %s, idle %s, stall %s", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.IdleConnTimeout, g.stall)
	}
	if Transport() != Transport() {
		t.Error("Transport() is not shared: connections would not be pooled")
	}
	if (&StallError{URL: "u", After: time.Minute}).Error() != "download of u stalled: no data for 60s" {
		t.Error("stall message")
	}
}
