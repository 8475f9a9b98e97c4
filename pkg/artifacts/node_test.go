package artifacts

import (
	"os"
	"path/filepath"
	"testing"
)

// Nodes booted from one image must not share the machine ID that dbus's package left in it.
func TestOneMachineID(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "var/lib/dbus/machine-id")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("2e2e2dbc9f6248088c2b7e99f5e9660d\n"), 0o444)
	if err := oneMachineID(dir); err != nil {
		t.Fatal(err)
	}
	if to, err := os.Readlink(p); err != nil || to != "/etc/machine-id" {
		t.Errorf("/var/lib/dbus/machine-id -> %q (%v), want a link to /etc/machine-id", to, err)
	}
	if err := oneMachineID(t.TempDir()); err != nil {
		t.Errorf("a root file system without dbus's file: %v", err)
	}
}
