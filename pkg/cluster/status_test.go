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
	}
	for _, tt := range tests {
		if got := tt.s.ExitCode(); got != tt.code {
			t.Errorf("%+v: exit %d, want %d", tt.s, got, tt.code)
		}
	}
}
