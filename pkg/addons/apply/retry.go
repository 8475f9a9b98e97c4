package apply

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultBackoff starts at 200ms and doubles up to 2s, where it stays (wait.Backoff keeps returning
// the capped delay once its steps are spent), the pace the in-node kubectl retry had.
var DefaultBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 2 * time.Second, Steps: math.MaxInt32}

// retry runs op until it succeeds, fails with an error that is not transient, or ctx ends. The
// error names the object (what is asked only when needed: the namespace may be settled by op) and
// wraps both the last error and, when it gave up, the context's, so callers can tell them apart.
func (a *Applier) retry(ctx context.Context, what func() string, op func(context.Context) error) error {
	b := a.Backoff
	if b.Duration == 0 {
		b = DefaultBackoff
	}
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", what(), err, context.Cause(ctx))
		}
		if !a.transient(err) {
			return fmt.Errorf("%s: %w", what(), err)
		}
		delay := b.Step()
		a.logf("%s: %v; retrying in %v", what(), err, delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up: %w)", what(), err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// transient tells errors worth waiting out: the API server overloaded, restarting or not yet ready,
// and the mapper's discovery cache older than the server's kinds (it is reset here so the next try
// asks the server again). Anything else, such as Invalid, Forbidden or a Conflict, fails at once.
func (a *Applier) transient(err error) bool {
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsTimeout(err):
		return true
	// While the API server restarts its port refuses connections, and ones already open are reset or
	// cut mid-response (EOF, an HTTP/2 connection lost).
	case utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err),
		utilnet.IsHTTP2ConnectionLost(err), utilnet.IsTimeout(err), isNetTimeout(err):
		return true
	// A namespace deleted by a disable just before refuses new content until it is gone.
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause), errors.Is(err, errTerminating):
		return true
	case meta.IsNoMatchError(err):
		meta.MaybeResetRESTMapper(a.Mapper)
		return true
	}
	return false
}

// isNetTimeout is a dial or TLS handshake that timed out: a slow machine's API server coming up.
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "TLS handshake timeout")
}
