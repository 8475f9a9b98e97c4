package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// Nodes are named as minikube names them; a profile from before multi-node has its one node.
func TestNodes(t *testing.T) {
	t.Parallel()
	if got := NodeName("dev", 1) + " " + NodeName("dev", 2) + " " + NodeName("dev", 12); got != "dev dev-m02 dev-m12" {
		t.Errorf("node names %q", got)
	}
	for name, want := range map[string]int{"dev": 1, "dev-m02": 2, "dev-m17": 17, "dev-m1": 0, "dev-m01": 0, "dev-mxx": 0, "other-m02": 0} {
		if got := NodeOrdinal("dev", name); got != want {
			t.Errorf("NodeOrdinal(dev, %s) = %d, want %d", name, got, want)
		}
	}
	nodes := NewNodes("dev", 3)
	want := []Node{{"dev", true, true}, {"dev-m02", false, true}, {"dev-m03", false, true}}
	if !slices.Equal(nodes, want) {
		t.Errorf("NewNodes = %+v", nodes)
	}
	h := Home(t.TempDir())
	dir, _ := h.ProfileDir("old")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"name":"old","driver":"docker"}`), 0o600)
	p, err := h.Load("old")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Nodes, []Node{{"old", true, true}}) {
		t.Errorf("an old profile's nodes: %+v", p.Nodes)
	}
	p.Nodes = NewNodes("old", 2)
	if n, i, ok := p.Node("old-m02"); !ok || i != 2 || n.ControlPlane {
		t.Errorf("Node(old-m02) = %+v, %d, %v", n, i, ok)
	}
	if n, i, ok := p.Node(""); !ok || i != 1 || n.Name != "old" {
		t.Errorf("Node(\"\") = %+v, %d, %v (the primary)", n, i, ok)
	}
	if _, _, ok := p.Node("old-m03"); ok {
		t.Error("a node that is not there was found")
	}
}
