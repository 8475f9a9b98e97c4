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
	"mkube/pkg/driver/drivertest/fakevm"
)

// fakeEnv installs the fake PowerShell with a fresh state and returns a machine dir and an ISO.
func fakeEnv(t *testing.T) (machineDir, iso string) {
	t.Helper()
	fakeTool.Install(t)
	return t.TempDir(), fakevm.ISO(t)
}

func transcript() string { return fakeTool.Transcript() }

// TestTranscript pins the exact cmdlets a create, stop and delete issue (reviewed against the
// Hyper-V cmdlet reference).
func TestTranscript(t *testing.T) {
	dir, iso := fakeEnv(t)
	d, _ := New("mkube", fakevm.Options(dir))
	s := fakevm.Spec(iso)
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

// TestSecondNode pins what a profile's second node is (--nodes, `node add`): a VM of its own
// name with its own files in the profile's machine directory, deleted without the primary's.
func TestSecondNode(t *testing.T) {
	dir, iso := fakeEnv(t)
	got := fakevm.SecondNode(t, dir, iso, func(profile string, opts driver.Options) (driver.Driver, error) { return New(profile, opts) }, transcript)
	golden.Check(t, "second-node.txt", []byte(got))
}

func TestConformance(t *testing.T) {
	_, iso := fakeEnv(t)
	fakevm.Conformance(t, iso, func(profile string, opts driver.Options) (driver.Driver, error) { return New(profile, opts) })
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
		d, _ := New("sw", driver.Options{MachineDir: dir, Owner: fakevm.Home, Settings: driver.Settings{"hyperv-virtual-switch": "External LAN"}})
		s := fakevm.Spec(iso)
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
		d, _ := New("ext", fakevm.Options(dir))
		s := fakevm.Spec(iso)
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
		d, _ := New("noiso", fakevm.Options(dir))
		s := fakevm.Spec(filepath.Join(dir, "nowhere.iso"))
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
		d, _ := New("stubborn", fakevm.Options(dir))
		s := fakevm.Spec(iso)
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
