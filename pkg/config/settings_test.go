package config

import (
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	h := Home(t.TempDir())
	if s, err := h.Settings(); err != nil || len(s) != 0 {
		t.Fatalf("%v %v", s, err)
	}
	if err := h.SetSetting("driver", "kvm2"); err != nil {
		t.Fatal(err)
	}
	if err := h.SetSetting("cpus", "4"); err != nil {
		t.Fatal(err)
	}
	if err := h.SetSetting("nosuch", "1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown key: %v", err)
	}
	s, _ := h.Settings()
	if got := strings.Join(SortedSettings(s), "\n"); got != "- cpus: 4\n- driver: kvm2" {
		t.Errorf("view: %q", got)
	}
	h.SetSetting("cpus", "")
	if s, _ := h.Settings(); len(s) != 1 {
		t.Errorf("unset: %v", s)
	}
}
