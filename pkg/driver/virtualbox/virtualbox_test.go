package virtualbox

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mkube/internal/golden"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest/fakevm"
)

// fakeEnv puts the fake VBoxManage alone on PATH with its own state and VirtualBox home, and
// returns a machine dir and an ISO file.
func fakeEnv(t *testing.T) (machineDir, iso string) {
	t.Helper()
	fakeTool.Install(t)
	t.Setenv("VBOX_USER_HOME", t.TempDir())
	return t.TempDir(), fakevm.ISO(t)
}

func transcript() string { return fakeTool.Transcript() }

// TestCreateTranscript pins the exact VBoxManage commands a create issues (reviewed against the
// VBoxManage manual), with the machine directory, ISO and SSH port normalized.
func TestCreateTranscript(t *testing.T) {
	dir, iso := fakeEnv(t)
	d, _ := New("mkube", fakevm.Options(dir))
	s := fakevm.Spec(iso)
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
	got := strings.ReplaceAll(strings.ReplaceAll(transcript(), dir, "$MACHINE_DIR"), iso, "$ISO")
	golden.Check(t, "create-stop-delete.txt", []byte(normalize(got)))
}

// TestSecondNode pins what a profile's second node is (--nodes, `node add`): a VM of its own
// name with its own files in the profile's machine directory, deleted without the primary's.
func TestSecondNode(t *testing.T) {
	dir, iso := fakeEnv(t)
	got := fakevm.SecondNode(t, dir, iso, func(profile string, opts driver.Options) (driver.Driver, error) { return New(profile, opts) }, transcript)
	golden.Check(t, "second-node.txt", []byte(normalize(got)))
}

// normalize replaces the SSH port a create picked (a free one) in a transcript.
func normalize(s string) string {
	return regexp.MustCompile(`127\.0\.0\.1,\d+,,22`).ReplaceAllString(s, "127.0.0.1,$$PORT,,22")
}

// TestConformance runs the driver suite's lifecycle against the fake.
func TestConformance(t *testing.T) {
	_, iso := fakeEnv(t)
	fakevm.Conformance(t, iso, func(profile string, opts driver.Options) (driver.Driver, error) { return New(profile, opts) })
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
		d, _ := New("vtx", fakevm.Options(dir))
		s := fakevm.Spec(iso)
		err := d.Create(ctx, s)
		if err == nil || !strings.Contains(err.Error(), "bcdedit /set hypervisorlaunchtype off") {
			t.Errorf("%v", err)
		}
		d.Delete(ctx)
	})
	t.Run("missing ISO is the tool's error", func(t *testing.T) {
		dir, _ := fakeEnv(t)
		d, _ := New("noiso", fakevm.Options(dir))
		s := fakevm.Spec(filepath.Join(dir, "nowhere.iso"))
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
		d, _ := New("again", fakevm.Options(dir))
		s := fakevm.Spec(iso)
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := d.Create(ctx, s); err != nil {
			t.Errorf("second create: %v", err)
		}
		if n := strings.Count(transcript(), "createvm"); n != 1 {
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
		d, _ := New("stubborn", driver.Options{MachineDir: dir, Owner: fakevm.Home, Log: func(f string, a ...any) { logged = append(logged, f) }})
		s := fakevm.Spec(iso)
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Setenv("FAKE_VBOX_IGNORE_ACPI", "1")
		if err := d.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.State(ctx); st != driver.Stopped || !strings.Contains(transcript(), "controlvm stubborn poweroff") || len(logged) == 0 {
			t.Errorf("state %s, logged %v\n%s", st, logged, transcript())
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
