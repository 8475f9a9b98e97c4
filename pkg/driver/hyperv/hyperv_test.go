package hyperv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mkube/internal/golden"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
)

func fakeEnv(t *testing.T) (machineDir, iso string) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "powershell"), raw, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	t.Setenv("FAKE_PS_DIR", state)
	iso = filepath.Join(t.TempDir(), "mkube-v0.1.0-amd64.iso")
	os.WriteFile(iso, []byte("iso"), 0o644)
	return t.TempDir(), iso
}

func transcript() string {
	raw, _ := os.ReadFile(filepath.Join(os.Getenv("FAKE_PS_DIR"), "transcript"))
	return string(raw)
}

// home is the test's mkube home; the drivers mark and check with it.
var home = driver.Owner{HomeID: "5f0c2a9e41d84b7c"}

func opts(dir string) driver.Options { return driver.Options{MachineDir: dir, Owner: home} }

var spec = driver.Spec{Name: "mkube", CPUs: 2, MemoryMB: 4096, DiskMB: 20000, APIServerPort: 8443, SSHPublicKey: "ssh-ed25519 AAAA test"}

// TestTranscript pins the exact cmdlets a create, stop and delete issue (reviewed against the
// Hyper-V cmdlet reference).
func TestTranscript(t *testing.T) {
	dir, iso := fakeEnv(t)
	d, _ := New("mkube", opts(dir))
	s := spec
	s.Image = iso
	ctx := context.Background()
	if err := d.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if ep, err := d.Endpoint(ctx); err != nil || ep.IP != "172.29.112.5" || ep.SSHPort != 22 {
		t.Errorf("endpoint %+v %v", ep, err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(strings.ReplaceAll(transcript(), dir, "$MACHINE_DIR"), iso, "$ISO")
	golden.Check(t, "create-stop-delete.txt", []byte(got))
	if _, err := os.Stat(filepath.Join(dir, "disk.vhdx")); err == nil {
		t.Error("delete left the disk")
	}
}

func TestConformance(t *testing.T) {
	_, iso := fakeEnv(t)
	s := spec
	s.Image = iso
	drivertest.Run(t, drivertest.Config{
		New: func(dir string) (driver.Driver, error) { return New("conformance", opts(dir)) },
		Intruder: func(dir string) (driver.Driver, error) {
			return New("conformance", driver.Options{MachineDir: dir, Owner: driver.Owner{HomeID: "0ther0ther0ther0"}})
		},
		Spec:    s,
		Timeout: time.Minute,
		NoGuest: true,
	})
}

func TestFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("no PowerShell", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if h := Health(ctx); h.Installed || h.Healthy {
			t.Errorf("%+v", h)
		}
	})
	t.Run("no Hyper-V module", func(t *testing.T) {
		fakeEnv(t)
		t.Setenv("FAKE_PS_NO_HYPERV", "1")
		if h := Health(ctx); h.Healthy || !strings.Contains(h.Fix, "Enable-WindowsOptionalFeature") {
			t.Errorf("%+v", h)
		}
	})
	t.Run("not an administrator", func(t *testing.T) {
		fakeEnv(t)
		t.Setenv("FAKE_PS_NOT_ADMIN", "1")
		if h := Health(ctx); h.Healthy || !strings.Contains(h.Fix, "S-1-5-32-578") {
			t.Errorf("%+v", h)
		}
		t.Setenv("FAKE_PS_NOT_ADMIN", "")
		if h := Health(ctx); !h.Healthy {
			t.Errorf("admin: %+v", h)
		}
	})
	t.Run("chosen switch missing", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		d, _ := New("sw", driver.Options{MachineDir: dir, Owner: home, Settings: driver.Settings{"hyperv-virtual-switch": "External LAN"}})
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err == nil || !strings.Contains(err.Error(), `no Hyper-V virtual switch named "External LAN"`) {
			t.Errorf("%v", err)
		}
		if strings.Contains(transcript(), "New-VM") {
			t.Error("a VM was created anyway")
		}
	})
	t.Run("external switch when there is no Default Switch", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		t.Setenv("FAKE_PS_SWITCHES", "LAN")
		t.Setenv("FAKE_PS_EXTERNAL", "LAN")
		d, _ := New("ext", opts(dir))
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(transcript(), "-SwitchName 'LAN'") {
			t.Errorf("switch: %s", transcript())
		}
		d.Delete(ctx)
	})
	t.Run("missing ISO is PowerShell's error", func(t *testing.T) {
		dir, _ := fakeEnv(t)
		d, _ := New("noiso", opts(dir))
		s := spec
		s.Image = filepath.Join(dir, "nowhere.iso")
		if err := d.Create(ctx, s); err == nil || !strings.Contains(err.Error(), "cannot find the file") {
			t.Errorf("%v", err)
		}
		if err := d.Delete(ctx); err != nil {
			t.Errorf("delete after a failed create: %v", err)
		}
		if st, _ := d.State(ctx); st != driver.Nonexistent {
			t.Errorf("state after delete: %s", st)
		}
	})
	t.Run("shutdown ignored: turned off after the timeout", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		old := stopTimeout
		stopTimeout = 500 * time.Millisecond
		defer func() { stopTimeout = old }()
		d, _ := New("stubborn", opts(dir))
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Setenv("FAKE_PS_HANG_STOP", "1")
		if err := d.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.State(ctx); st != driver.Stopped || !strings.Contains(transcript(), "-TurnOff") {
			t.Errorf("state %s\n%s", st, transcript())
		}
		d.Delete(ctx)
	})
	t.Run("unknown parameter is rejected like PowerShell", func(t *testing.T) {
		fakeEnv(t)
		if _, err := ps(ctx, `Hyper-V\New-VM -Name 'x' -Bogus 1`); err == nil || !strings.Contains(err.Error(), "A parameter cannot be found that matches parameter name 'Bogus'") {
			t.Errorf("%v", err)
		}
	})
}
