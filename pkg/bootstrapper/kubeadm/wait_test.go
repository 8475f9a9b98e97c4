package kubeadm

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// node_ready waits for a node the scheduler can use: Ready, and the not-ready taint lifted.
func TestWaitNodeReadyNeedsTheTaintLifted(t *testing.T) {
	ready := corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
	for _, tc := range []struct {
		name string
		node corev1.Node
		want string // "" when the wait succeeds, else part of its error
	}{
		{"ready", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: ready}, ""},
		{"not ready", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, "is not Ready"},
		{"ready, still tainted", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: ready,
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}}}}, "still tainted node.kubernetes.io/not-ready:NoExecute"},
		{"another taint is the user's business", corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: ready,
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			err := Wait(ctx, fake.NewSimpleClientset(&tc.node), []string{"n"}, []string{WaitNodeReady}, func(string, ...any) {})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Wait: %v, want %q", err, tc.want)
			}
		})
	}
}
