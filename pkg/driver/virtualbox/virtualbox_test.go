package virtualbox

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mkube/internal/golden"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
)

// fakeEnv puts the fake VBoxManage first on PATH with its own state, and returns a machine dir and
// an ISO file.
func fakeEnv(t *testing.T) (machineDir, iso string) {
	t.Helper()
	bin, state, home := t.TempDir(), t.TempDir(), t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(self, filepath.Join(bin, "VBoxManage")); err != nil {
		raw, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(bin, "VBoxManage"), raw, 0o755)
	}
	t.Setenv("PATH", bin)
	t.Setenv("FAKE_VBOX_DIR", state)
	t.Setenv("VBOX_USER_HOME", home)
	iso = filepath.Join(t.TempDir(), "mkube-v0.1.0-amd64.iso")
	os.WriteFile(iso, []byte("iso"), 0o644)
	return t.TempDir(), iso
}

func transcript(t *testing.T) string {
	raw, _ := os.ReadFile(filepath.Join(os.Getenv("FAKE_VBOX_DIR"), "transcript"))
	return string(raw)
}

// home is the test's mkube home; the drivers mark and check with it.
var home = driver.Owner{HomeID: "5f0c2a9e41d84b7c"}

func opts(dir string) driver.Options { return driver.Options{MachineDir: dir, Owner: home} }

var spec = driver.Spec{Name: "mkube", CPUs: 2, MemoryMB: 4096, DiskMB: 20000, APIServerPort: 8443, SSHPublicKey: "ssh-ed25519 AAAA test"}

// TestCreateTranscript pins the exact VBoxManage commands a create issues (reviewed against the
// VBoxManage manual), with the machine directory, ISO and SSH port normalized.
func TestCreateTranscript(t *testing.T) {
	dir, iso := fakeEnv(t)
	d, _ := New("mkube", opts(dir))
	s := spec
	s.Image = iso
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	ep, err := d.Endpoint(context.Background())
	if err != nil || ep.IP != "192.168.59.100" || ep.SSHHost != "127.0.0.1" || ep.SSHPort == 0 || ep.APIServerHost != ep.IP {
		t.Errorf("endpoint %+v %v", ep, err)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(strings.ReplaceAll(transcript(t), dir, "$MACHINE_DIR"), iso, "$ISO")
	got = regexp.MustCompile(`127\.0\.0\.1,\d+,,22`).ReplaceAllString(got, "127.0.0.1,$$PORT,,22")
	golden.Check(t, "create-stop-delete.txt", []byte(got))
}

// TestConformance runs the driver suite's lifecycle against the fake.
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
	t.Run("VBoxManage missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		t.Setenv("VBOX_MSI_INSTALL_PATH", "")
		if h := Health(ctx); h.Installed || h.Healthy || !strings.Contains(h.Fix, "install VirtualBox") {
			t.Errorf("%+v", h)
		}
	})
	t.Run("too old", func(t *testing.T) {
		fakeEnv(t)
		t.Setenv("FAKE_VBOX_VERSION", "6.0.24r139119")
		if h := Health(ctx); h.Healthy || !strings.Contains(h.Problem, "6.0 is too old") {
			t.Errorf("%+v", h)
		}
		t.Setenv("FAKE_VBOX_VERSION", "6.1.50r161033")
		if h := Health(ctx); !h.Healthy {
			t.Errorf("6.1: %+v", h)
		}
	})
	t.Run("VT-x taken by Hyper-V", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		t.Setenv("FAKE_VBOX_NO_VTX", "1")
		d, _ := New("vtx", opts(dir))
		s := spec
		s.Image = iso
		err := d.Create(ctx, s)
		if err == nil || !strings.Contains(err.Error(), "bcdedit /set hypervisorlaunchtype off") {
			t.Errorf("%v", err)
		}
		d.Delete(ctx)
	})
	t.Run("missing ISO is the tool's error", func(t *testing.T) {
		dir, _ := fakeEnv(t)
		d, _ := New("noiso", opts(dir))
		s := spec
		s.Image = filepath.Join(dir, "nowhere.iso")
		err := d.Create(ctx, s)
		if err == nil || !strings.Contains(err.Error(), "VERR_FILE_NOT_FOUND") {
			t.Errorf("%v", err)
		}
		if err := d.Delete(ctx); err != nil {
			t.Errorf("delete after a failed create: %v", err)
		}
	})
	t.Run("create resumes when the VM exists", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		d, _ := New("again", opts(dir))
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := d.Create(ctx, s); err != nil {
			t.Errorf("second create: %v", err)
		}
		if n := strings.Count(transcript(t), "createvm"); n != 1 {
			t.Errorf("createvm ran %d times", n)
		}
		d.Stop(ctx)
		d.Delete(ctx)
	})
	t.Run("ACPI ignored: forced power-off after the timeout", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		old := stopTimeout
		stopTimeout, pollEvery = 300*time.Millisecond, 50*time.Millisecond
		defer func() { stopTimeout, pollEvery = old, 500*time.Millisecond }()
		var logged []string
		d, _ := New("stubborn", driver.Options{MachineDir: dir, Owner: home, Log: func(f string, a ...any) { logged = append(logged, f) }})
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Setenv("FAKE_VBOX_IGNORE_ACPI", "1")
		if err := d.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.State(ctx); st != driver.Stopped || !strings.Contains(transcript(t), "controlvm stubborn poweroff") || len(logged) == 0 {
			t.Errorf("state %s, logged %v\n%s", st, logged, transcript(t))
		}
		d.Delete(ctx)
	})
	t.Run("unknown option is rejected like the real tool", func(t *testing.T) {
		fakeEnv(t)
		_, err := run(ctx, "modifyvm", "x", "--bogus", "1")
		if err == nil {
			t.Fatal("accepted")
		}
	})
}
