package cluster

import (
	"testing"
)

func TestStatusExitCodeAndOutput(t *testing.T) {
	tests := []struct {
		s    Status
		code int
	}{
		{Status{Host: "Running", Kubelet: "Running", APIServer: "Running"}, 0},
		{Status{Host: "Running", Kubelet: "Stopped", APIServer: "Running"}, 2},
		{Status{Host: "Running", Kubelet: "Running", APIServer: "Stopped"}, 4},
		{Status{Host: "Stopped", Kubelet: "Stopped", APIServer: "Stopped"}, 7},
		{Status{Host: "Nonexistent", Kubelet: "Nonexistent", APIServer: "Nonexistent"}, 7},
		// A worker has no API server: minikube's "Irrelevant" sets no bit.
		{Status{Host: "Running", Kubelet: "Running", APIServer: Irrelevant, Worker: true}, 0},
		{Status{Host: "Running", Kubelet: "Stopped", APIServer: Irrelevant, Worker: true}, 2},
	}
	for _, tt := range tests {
		if got := tt.s.ExitCode(); got != tt.code {
			t.Errorf("%+v: exit %d, want %d", tt.s, got, tt.code)
		}
	}
}

// A cluster's exit code has every node's bits: a stopped worker under a running control plane
// still says the host and kubelet are not all running.
func TestClusterExitCode(t *testing.T) {
	cp := Status{Host: "Running", Kubelet: "Running", APIServer: "Running"}
	worker := Status{Host: "Stopped", Kubelet: "Stopped", APIServer: Irrelevant, Worker: true}
	if got := ExitCode([]Status{cp}); got != 0 {
		t.Errorf("one running node: %d", got)
	}
	if got := ExitCode([]Status{cp, worker}); got != 3 {
		t.Errorf("a stopped worker: %d, want 3", got)
	}
}
