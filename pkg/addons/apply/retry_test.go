package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
)

var deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}

// netErr is what client-go returns when the API server's port is closed or drops the connection.
func netErr(errno syscall.Errno) error {
	return &url.Error{Op: "Patch", URL: "https://192.168.49.2:8443/apis/apps/v1",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}}
}

// failing makes the fake answer the first n applies of deployments with err (n < 0: all of them)
// and counts the applies.
func failing(e *env, n int, err error) *int {
	calls := 0
	e.dyn.PrependReactor("patch", "deployments", func(clienttesting.Action) (bool, runtime.Object, error) {
		calls++
		if n < 0 || calls <= n {
			return true, nil, err
		}
		return false, nil, nil
	})
	return &calls
}

func TestTransientErrorsRetried(t *testing.T) {
	t.Parallel()
	terminating := apierrors.NewForbidden(deployments, "app", errors.New("namespace demo is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"ServiceUnavailable", apierrors.NewServiceUnavailable("starting")},
		{"TooManyRequests", apierrors.NewTooManyRequests("slow down", 0)},
		{"InternalError", apierrors.NewInternalError(errors.New("etcd"))},
		{"ServerTimeout", apierrors.NewServerTimeout(deployments, "patch", 0)},
		{"Timeout", apierrors.NewTimeoutError("timeout", 0)},
		{"connection refused", netErr(syscall.ECONNREFUSED)},
		{"connection reset", netErr(syscall.ECONNRESET)},
		{"EOF", &url.Error{Op: "Patch", URL: "https://192.168.49.2:8443", Err: io.EOF}},
		{"namespace terminating", terminating},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			calls := failing(e, 1, tc.err)
			if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
				t.Fatal(err)
			}
			if *calls != 2 {
				t.Errorf("deployment applied %d times, want 2", *calls)
			}
			if e.get(t, demoObjects["deploy"].gk, "demo", "app") == nil {
				t.Error("deployment missing after the retry")
			}
			if !strings.Contains(e.log.String(), "Deployment demo/app") || !strings.Contains(e.log.String(), "retrying") {
				t.Errorf("retry not logged:\n%s", e.log)
			}
		})
	}
}

func TestNonTransientErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	gk := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
	}{
		{"Invalid", apierrors.NewInvalid(gk, "app", field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), -1, "must be >= 0")}), apierrors.IsInvalid},
		{"Forbidden", apierrors.NewForbidden(deployments, "app", errors.New("no")), apierrors.IsForbidden},
		{"BadRequest", apierrors.NewBadRequest("bad"), apierrors.IsBadRequest},
		{"Conflict", apierrors.NewConflict(deployments, "app", errors.New("owned by another")), apierrors.IsConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.a.Backoff = DefaultBackoff // a retry would take 200ms; there must be none
			calls := failing(e, -1, tc.err)
			// The deadline only keeps a regression from hanging the test.
			c, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := e.a.Apply(c, "demo", demo())
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			if !tc.is(err) || !strings.Contains(err.Error(), "Deployment demo/app") || !strings.Contains(err.Error(), "addon demo") {
				t.Errorf("err = %v; want a %s naming the addon and Deployment demo/app", err, tc.name)
			}
			if *calls != 1 || time.Since(start) > 150*time.Millisecond {
				t.Errorf("applied %d times in %v; want once, at once", *calls, time.Since(start))
			}
			if e.count("delete", "") != 0 {
				t.Error("a failed apply went on to prune")
			}
		})
	}
}

func TestDeadlineEndsRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.a.Backoff = DefaultBackoff
	calls := failing(e, -1, apierrors.NewServiceUnavailable("never ready"))
	c, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.a.Apply(c, "demo", demo())
	if elapsed := time.Since(start); elapsed < 600*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Errorf("gave up after %v; want at the 700ms deadline", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !apierrors.IsServiceUnavailable(err) {
		t.Errorf("err = %v; want the last error and the deadline", err)
	}
	// 200ms, 400ms, then the deadline: the backoff grows.
	if *calls < 2 || *calls > 4 {
		t.Errorf("%d tries in 700ms", *calls)
	}
}

// staleMapper does not know Deployments until reset, as a discovery cache filled while the API
// server was still starting may not.
type staleMapper struct {
	meta.RESTMapper
	stale  bool
	resets int
}

func (m *staleMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	if m.stale && gk.Kind == "Deployment" {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

func (m *staleMapper) Reset() { m.stale, m.resets = false, m.resets+1 }

func TestNoKindMatchResetsMapper(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := &staleMapper{RESTMapper: e.a.Mapper, stale: true}
	e.a.Mapper = m
	if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	if m.resets != 1 {
		t.Errorf("mapper reset %d times, want 1", m.resets)
	}
}

// After a disable, an enable may patch the Namespace while it is still terminating; it is applied
// again once gone, not left to vanish.
func TestTerminatingObjectAppliedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	calls := 0
	e.dyn.PrependReactor("patch", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
		if calls++; calls > 1 {
			return false, nil, nil
		}
		ns := obj("v1", "Namespace", "", "demo", nil)
		now := metav1.Now()
		ns.SetDeletionTimestamp(&now)
		return true, ns, nil
	})
	if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("namespace applied %d times, want 2", calls)
	}
}

func TestRemoveRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	lists, deletes := 0, 0
	e.dyn.PrependReactor("list", "services", func(clienttesting.Action) (bool, runtime.Object, error) {
		if lists++; lists == 1 {
			return true, nil, netErr(syscall.ECONNREFUSED)
		}
		return false, nil, nil
	})
	e.dyn.PrependReactor("delete", "deployments", func(clienttesting.Action) (bool, runtime.Object, error) {
		if deletes++; deletes == 1 {
			return true, nil, apierrors.NewTooManyRequests("busy", 0)
		}
		return false, nil, nil
	})
	if err := e.a.Remove(testCtx(t), "demo", demo()); err != nil {
		t.Fatal(err)
	}
	if lists < 2 || deletes != 2 {
		t.Errorf("lists %d, deletes %d: not retried", lists, deletes)
	}
	if e.get(t, demoObjects["deploy"].gk, "demo", "app") != nil || e.get(t, demoObjects["svc"].gk, "demo", "app") != nil {
		t.Error("objects left after retried Remove")
	}
}

// Through New's real clients: an API server whose port is closed (restarting) is waited for until
// the deadline, and the error says both what happened and that time ran out.
func TestNewWaitsForAPIServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a, err := New(&rest.Config{Host: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	a.Logf = func(f string, args ...any) { fmt.Fprintf(&log, f+"\n", args...) }
	c, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = a.Apply(c, "demo", demo())
	if !errors.Is(err, context.DeadlineExceeded) || !utilnet.IsConnectionRefused(err) {
		t.Errorf("err = %v; want connection refused and the deadline", err)
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("no retry logged:\n%s", log.String())
	}
}
