package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func objects() *fake.Clientset {
	return fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "mkube"}, Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.49.2"}},
		}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "default", Labels: map[string]string{"app": "echo"}},
			Spec: corev1.PodSpec{NodeName: "mkube", Containers: []corev1.Container{{Name: "echo", Image: "agnhost"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "echo", Ready: true, RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nope"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "echo"}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "echo"},
				Ports: []corev1.ServicePort{{Port: 8080, NodePort: 30080, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "default"}, Type: "Warning", Reason: "Failed",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "broken"}, Message: "pull access denied"},
	)
}

func TestPages(t *testing.T) {
	srv := New(objects())
	tests := []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{`href="./nodes/mkube"`, "Ready", "192.168.49.2", `href="./ns/default/pods/echo-1"`, "ErrImagePull"}},
		{"/ns/default", 200, []string{`href="../ns/default/deployments/echo"`, "0/1", "8080:30080/TCP", `href="../ns/default/pods/broken"`, "pull access denied"}},
		{"/ns/default/pods/echo-1", 200, []string{"Running", `href="../../../ns/default/pods/echo-1/log?container=echo"`, "app=echo", "previous"}},
		{"/ns/default/pods/broken", 200, []string{"ErrImagePull", "pull access denied"}},
		{"/ns/default/pods/echo-1/log?container=echo", 200, []string{`<pre id="log">fake logs</pre>`}},
		{"/ns/default/deployments/echo", 200, []string{"echo-1"}},
		{"/ns/default/services/echo", 200, []string{"echo-1", "node port 30080"}},
		{"/nodes/mkube", 200, []string{"echo-1", "192.168.49.2"}},
		{"/ns/default/pods/missing", 404, []string{`not found`}},
		{"/ns/nowhere", 404, []string{`not found`}},
		{"/healthz", 200, []string{"ok"}},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.path, rec.Code, tt.code)
		}
		for _, w := range tt.want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("%s: no %q in\n%s", tt.path, w, rec.Body.String())
			}
		}
	}
}
