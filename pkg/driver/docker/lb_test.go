package docker

import (
	"testing"

	"mkube/internal/golden"
	"mkube/pkg/driver"
)

// The load balancer's configuration: every control plane, health-checked on /readyz; a name or
// address that could change the file's structure is refused.
func TestHAProxyConfig(t *testing.T) {
	cfg, err := HAProxyConfig(8443, []driver.LBBackend{{Name: "ha", IP: "192.168.49.2"}, {Name: "ha-m02", IP: "192.168.49.3"}, {Name: "ha-m03", IP: "192.168.49.4"}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "haproxy.cfg", cfg)
	for _, bad := range []driver.LBBackend{{Name: "x\n  bind :80", IP: "192.168.49.2"}, {Name: "x", IP: "192.168.49.2 backup"}, {Name: "", IP: "192.168.49.2"}} {
		if _, err := HAProxyConfig(8443, []driver.LBBackend{bad}); err == nil {
			t.Errorf("backend %+v accepted", bad)
		}
	}
}
