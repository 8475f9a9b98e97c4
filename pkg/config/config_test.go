package config

import (
	"errors"
	"os"
	"path/filepath"
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
	os.WriteFile(filepath.Join(h.ProfileDir("a"), "config.json"), []byte("{broken"), 0o644)
	if _, err := h.Load("a"); err == nil || errors.Is(err, ErrNoProfile) {
		t.Errorf("corrupt profile: %v", err)
	}
	os.MkdirAll(h.MachineDir("b"), 0o700)
	if err := h.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.MachineDir("b")); !os.IsNotExist(err) {
		t.Error("machine dir kept")
	}
}

func TestValidateProfileName(t *testing.T) {
	for name, ok := range map[string]bool{"mkube": true, "dev-2": true, "a": true, "Bad": false, "a_b": false, "-a": false, "a-": false, "": false, "a/b": false} {
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
