package virtualbox

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest/fakevm"
)

// putVM puts a VM into the fake's state as if someone had made it outside this test's driver.
func putVM(t *testing.T, name string, vm *fakeVM) {
	t.Helper()
	s := loadFake()
	s.VMs[name] = vm
	s.save()
}

// TestOwnership: fakevm's ownership cases, with the mark in the VM's extradata, and a create that
// finds the VM an interrupted create left.
func TestOwnership(t *testing.T) {
	ctx := context.Background()
	fakevm.Ownership{
		Tool: fakeTool,
		Kind: "VirtualBox VM",
		Env:  fakeEnv,
		New:  func(dir string) (driver.Driver, error) { return New(fakevm.Profile, fakevm.Options(dir)) },
		Put: func(t *testing.T, dir string, f fakevm.Foreign) {
			cfg := filepath.Join(t.TempDir(), "VirtualBox VMs", "postgres", "postgres.vbox")
			if f.Here {
				cfg = filepath.Join(dir, "postgres", "postgres.vbox")
			}
			var extra map[string]string
			if f.UserData || f.Mark != "" {
				extra = map[string]string{}
			}
			if f.UserData {
				extra["GUI/LastNormalWindowPosition"] = "0,0,800,600"
			}
			if f.Mark != "" {
				extra[ownerKey] = f.Mark
			}
			putVM(t, fakevm.Profile, &fakeVM{State: "running", Extra: extra, Media: map[string]string{},
				Settings: map[string]string{"cfgfile": cfg, "--hostonlyadapter2": "vboxnet0", "--macaddress2": "080027AABBCC", "--natpf1": "ssh,tcp,127.0.0.1,2222,,22"}})
		},
		// Only questions: no host-only network made, nothing set on the VM.
		Query: func(line string) bool {
			return strings.HasPrefix(line, "VBoxManage showvminfo postgres ") || strings.HasPrefix(line, "VBoxManage getextradata postgres ")
		},
		// The mark the fake holds, which getextradata reads back as the driver does.
		Mark: func(t *testing.T) string {
			tag := loadFake().VMs[fakevm.Profile].Extra[ownerKey]
			if out, err := run(ctx, "getextradata", fakevm.Profile, ownerKey); err != nil || extraDataValue(out) != tag {
				t.Errorf("getextradata: %q %v, want %q", out, err, tag)
			}
			return tag
		},
	}.Run(t)

	t.Run("create finishes an unmarked VM an interrupted create left in the machine directory", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		if _, err := run(ctx, "createvm", "--name", "postgres", "--ostype", "Linux_64", "--basefolder", dir, "--register"); err != nil {
			t.Fatal(err)
		}
		d, _ := New("postgres", fakevm.Options(dir))
		s := fakevm.Spec(iso)
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if tag := loadFake().VMs["postgres"].Extra[ownerKey]; tag != fakevm.OwnMark {
			t.Errorf("mark %q", tag)
		}
		d.Stop(ctx)
		if err := d.Delete(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("getextradata answers No value set! when the key is missing", func(t *testing.T) {
		fakeEnv(t)
		putVM(t, "x", &fakeVM{State: "poweroff", Settings: map[string]string{}, Media: map[string]string{}})
		if out, err := run(ctx, "getextradata", "x", ownerKey); err != nil || strings.TrimSpace(out) != "No value set!" || extraDataValue(out) != "" {
			t.Errorf("%q %v", out, err)
		}
	})
}

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		dir, path string
		in        bool
	}{
		{"/h/machines/dev", "/h/machines/dev/dev/dev.vbox", true},
		{"/h/machines/dev", "/h/machines/dev2/dev2/dev2.vbox", false},
		{"/h/machines/dev", "/h/machines/dev/../prod/prod.vbox", false},
		{"/h/machines/dev", "/h/machines", false},
		{"/h/machines/dev", "relative/dev.vbox", false},
	} {
		if got := within(tt.dir, tt.path); got != tt.in {
			t.Errorf("within(%q, %q) = %v", tt.dir, tt.path, got)
		}
	}
}

// TestHostileValuesStayData: names and paths with quotes, $(), ;, &, < and line breaks reach
// VBoxManage as the argv elements they are (no shell in between) and come back unchanged.
func TestHostileValuesStayData(t *testing.T) {
	ctx := context.Background()
	dir, _ := fakeEnv(t)
	// No slash: the name is also a file name (the ISO's, the VM's settings folder).
	const bad = `it's "x"; $(touch pwned) & <b> ` + "`id`" + ` | rm -rf ~ --register` + "\nline2"
	isoDir := t.TempDir()
	iso := filepath.Join(isoDir, bad+".iso")
	if err := os.WriteFile(iso, []byte("iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	machineDir := filepath.Join(dir, bad)
	d, err := New(bad, fakevm.Options(machineDir))
	if err != nil {
		t.Fatal(err)
	}
	s := fakevm.Spec(iso)
	if err := d.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	st := loadFake()
	vm := st.VMs[bad]
	if len(st.VMs) != 1 || vm == nil {
		raw, _ := json.Marshal(st.VMs)
		t.Fatalf("VMs: %s", raw)
	}
	if vm.Extra[ownerKey] != "mkube-owner:5f0c2a9e41d84b7c/"+bad || vm.Media["0/dvddrive"] != iso ||
		vm.Settings["--uartmode1"] != "file "+filepath.Join(machineDir, "console.log") || vm.Media["2/hdd"] != filepath.Join(machineDir, "disk.vdi") {
		t.Errorf("values changed: %+v", vm)
	}
	if stt, err := d.State(ctx); err != nil || stt != driver.Running {
		t.Errorf("state %s %v", stt, err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a command in a name ran")
	}
}
