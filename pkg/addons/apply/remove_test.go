package apply

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
)

// TestRemoveWaitsUntilGone: like `kubectl delete`, Remove returns once the objects are gone, not
// while a namespace is still Terminating; a deadline ends the wait with the object named.
func TestRemoveWaitsUntilGone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		lingering int // Gets of a deleted namespace that still find it
		deadline  time.Duration
		wantErr   string
	}{
		{"gone after a while", 3, time.Minute, ""},
		{"never gone", 1 << 30, 300 * time.Millisecond, "Namespace demo is still being deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if err := e.a.Apply(testCtx(t), "demo", demo()); err != nil {
				t.Fatal(err)
			}
			ns := e.get(t, schema.GroupKind{Kind: "Namespace"}, "", "demo")
			if ns == nil {
				t.Fatal("no namespace demo in the demo manifest")
			}
			var gets atomic.Int64
			var deleted atomic.Bool
			e.dyn.PrependReactor("delete", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
				deleted.Store(true)
				return false, nil, nil
			})
			e.dyn.PrependReactor("get", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
				if !deleted.Load() || gets.Add(1) > int64(tc.lingering) {
					return false, nil, nil
				}
				return true, ns, nil // still Terminating
			})
			ctx, cancel := context.WithTimeout(testCtx(t), tc.deadline)
			defer cancel()
			err := e.a.Remove(ctx, "demo", demo())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && gets.Load() <= int64(tc.lingering):
				t.Errorf("Remove returned after %d looks, before the namespace was gone", gets.Load())
			}
		})
	}
}
