package cluster

import (
	"errors"
	"strings"
	"testing"

	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/reason"
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

// The node commands act on one node, never the cluster's primary (the whole cluster's commands do
// that), except stopping an --ha cluster's primary; only an --ha cluster's other control planes
// are deleted.
func TestOtherNode(t *testing.T) {
	p := &config.Profile{Name: "c", Nodes: config.NewNodes("c", 2)}
	twoCP := &config.Profile{Name: "t", Nodes: []config.Node{{Name: "t", ControlPlane: true}, {Name: "t-m02", ControlPlane: true}}}
	ha := &config.Profile{Name: "h", HA: true, Nodes: config.NewHANodes("h", 4)}
	for _, tc := range []struct {
		p          *config.Profile
		node, verb string
		code       int // 0: allowed
	}{
		{p, "c-m02", "delete", 0},
		{p, "c-m02", "stop", 0},
		{p, "c", "delete", 14},
		{p, "c", "stop", 14},
		{p, "c-m03", "stop", 85},
		{p, "", "stop", 85},
		{ha, "h", "stop", 0},
		{ha, "h", "delete", 14},
		{ha, "h-m02", "delete", 0},
		{ha, "h-m04", "delete", 0},
		{twoCP, "t-m02", "delete", 14},
	} {
		_, err := otherNode(tc.p, tc.node, tc.verb)
		if got := reason.ExitCode(err); (err == nil) != (tc.code == 0) || (err != nil && got != tc.code) {
			t.Errorf("%s %s of %s: exit %d (%v), want %d", tc.verb, tc.node, tc.p.Name, got, err, tc.code)
		}
	}
}

// A driver that runs one node per cluster is refused for more, with the drivers here that run
// more named: supported ones only.
func TestCheckMultiNode(t *testing.T) {
	m := &Manager{Drivers: driver.NewRegistry(
		driver.Entry{Name: "docker", Priority: 100, Supported: true, MultiNode: true},
		driver.Entry{Name: "kvm2", Priority: 80, Supported: true, MultiNode: true},
		driver.Entry{Name: "hyperv", Priority: 70, MultiNode: true},
		driver.Entry{Name: "ssh", Priority: 10, Supported: true},
	)}
	if err := m.CheckMultiNode(driver.Entry{Name: "docker", MultiNode: true}); err != nil {
		t.Errorf("docker: %v", err)
	}
	err := m.CheckMultiNode(driver.Entry{Name: "ssh"})
	if reason.ExitCode(err) != 14 || !strings.Contains(err.Error(), "the ssh driver runs one node per cluster") {
		t.Errorf("ssh: exit %d, %v", reason.ExitCode(err), err)
	}
	var re *reason.Error
	if !errors.As(err, &re) || re.Advice != "drivers that run more than one node here: docker, kvm2" {
		t.Errorf("advice: %+v", re)
	}
}
