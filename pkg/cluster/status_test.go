package cluster

import (
	"bytes"
	"encoding/json"
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
	s := Status{Name: "mkube", Host: "Running", Kubelet: "Running", APIServer: "Running", Kubeconfig: "Configured"}
	var b bytes.Buffer
	PrintStatus(&b, s, "text")
	want := "mkube\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\nkubeconfig: Configured\n\n"
	if b.String() != want {
		t.Errorf("text:\n%s", b.String())
	}
	b.Reset()
	PrintStatus(&b, s, "json")
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["APIServer"] != "Running" || m["Worker"] != false {
		t.Errorf("json: %s", b.String())
	}
	if err := PrintStatus(&b, s, "xml"); err == nil {
		t.Error("unknown format accepted")
	}
}
