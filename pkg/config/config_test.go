package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProfileRoundTripAndList(t *testing.T) {
	h := Home(t.TempDir())
	if names, err := h.List(); err != nil || len(names) != 0 {
		t.Fatalf("empty home lists %v, %v", names, err)
	}
	for _, n := range []string{"b", "a"} {
		if err := h.Save(&Profile{Name: n, Driver: "docker", KubernetesVersion: "v1.34.4", CPUs: 2}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := h.Load("a")
	if err != nil || p.Driver != "docker" || p.CPUs != 2 {
		t.Fatalf("Load = %+v, %v", p, err)
	}
	if names, _ := h.List(); len(names) != 2 || names[0] != "a" {
		t.Errorf("List = %v", names)
	}
	if _, err := h.Load("nosuch"); !errors.Is(err, ErrNoProfile) {
		t.Errorf("missing profile: %v", err)
	}
	if st, err := os.Stat(filepath.Join(string(h), "profiles", "a", "config.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode: %v, %v", st, err)
	}
	os.WriteFile(filepath.Join(string(h), "profiles", "a", "config.json"), []byte("{broken"), 0o644)
	if _, err := h.Load("a"); err == nil || errors.Is(err, ErrNoProfile) {
		t.Errorf("corrupt profile: %v", err)
	}
	machine := filepath.Join(string(h), "machines", "b")
	os.MkdirAll(machine, 0o700)
	if err := h.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(machine); !os.IsNotExist(err) {
		t.Error("machine dir kept")
	}
}

func TestValidateProfileName(t *testing.T) {
	long := "a"
	for len(long) < 64 {
		long += "b"
	}
	for name, ok := range map[string]bool{"mkube": true, "dev-2": true, "a": true, long[:63]: true,
		"Bad": false, "a_b": false, "-a": false, "a-": false, "": false, "a/b": false, "..": false, "../..": false, ".": false,
		"/etc": false, "a\x00b": false, "a\nb": false, long: false, "ünï": false, "a b": false, "$(id)": false} {
		if err := ValidateProfileName(name); (err == nil) != ok {
			t.Errorf("%q: err = %v", name, err)
		}
	}
}

func TestDefaultHome(t *testing.T) {
	t.Setenv("MKUBE_HOME", "/tmp/x")
	if h, _ := DefaultHome(); h != "/tmp/x" {
		t.Errorf("MKUBE_HOME ignored: %s", h)
	}
	t.Setenv("MKUBE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if h, _ := DefaultHome(); h != "/home/u/.mkube" {
		t.Errorf("default home %s", h)
	}
}

func TestPathsRefuseHostileNames(t *testing.T) {
	h := Home(filepath.Join(t.TempDir(), "a", "b", "home"))
	for _, bad := range []string{"..", "../..", ".", "", "x/../..", "/abs", "a\x00", "a\\b"} {
		if p, err := h.ProfileDir(bad); err == nil {
			t.Errorf("ProfileDir(%q) = %s", bad, p)
		}
		if p, err := h.MachineDir(bad); err == nil {
			t.Errorf("MachineDir(%q) = %s", bad, p)
		}
		if err := h.Remove(bad); err == nil {
			t.Errorf("Remove(%q) was allowed", bad)
		}
		if err := h.Save(&Profile{Name: bad}); err == nil {
			t.Errorf("Save(%q) was allowed", bad)
		}
	}
}

// TestLegacyDriverSettingsMigrate: profiles written before driver options kept kvm2's and
// Hyper-V's settings in fields of their own; Load moves them into DriverOptions.
func TestLegacyDriverSettingsMigrate(t *testing.T) {
	t.Parallel()
	h := Home(t.TempDir())
	dir, err := h.ProfileDir("old")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o700)
	raw := `{"name":"old","driver":"kvm2","kvmQemuURI":"qemu+ssh://h/system","kvmAccel":"tcg","driverOptions":{"kvm-accel":"kvm"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := h.Load("old")
	if err != nil {
		t.Fatal(err)
	}
	if p.DriverOptions["kvm-qemu-uri"] != "qemu+ssh://h/system" || p.DriverOptions["kvm-accel"] != "kvm" || p.LegacyKVMQemuURI != "" {
		t.Errorf("migrated: %+v (a value given in driverOptions wins)", p.DriverOptions)
	}
	if err := h.Save(p); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if strings.Contains(string(saved), "kvmQemuURI") {
		t.Errorf("the old field is written again: %s", saved)
	}
}
