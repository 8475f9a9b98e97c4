package virtualbox

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mkube/pkg/driver"
)

// putVM puts a VM into the fake's state as if someone had made it outside this test's driver.
func putVM(t *testing.T, name string, vm *fakeVM) {
	t.Helper()
	s := loadFake()
	s.VMs[name] = vm
	s.save()
}

func stateFile(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fakeDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestOwnership: a VM of the profile's name that is not this profile's is refused by every method
// and left exactly as it was; this profile's own VM works.
func TestOwnership(t *testing.T) {
	ctx := context.Background()
	foreign := []struct {
		name  string
		extra map[string]string
		cfg   string // settings file; "" puts it in the user's VirtualBox VMs folder
		other string
	}{
		{"the user's own VM", nil, "", ""},
		{"the user's VM with other extradata", map[string]string{"GUI/LastNormalWindowPosition": "0,0,800,600"}, "", ""},
		{"another home's VM", map[string]string{ownerKey: "mkube-owner:0ther0ther0ther0/postgres"}, "", "another mkube home"},
		{"another profile's VM", map[string]string{ownerKey: "mkube-owner:5f0c2a9e41d84b7c/mysql"}, "", "another profile of this mkube home"},
		// A settings file in this profile's machine directory does not outweigh another's mark.
		{"another home's mark, files here", map[string]string{ownerKey: "mkube-owner:0ther0ther0ther0/postgres"}, "$DIR", "another mkube home"},
	}
	for _, tt := range foreign {
		t.Run(tt.name, func(t *testing.T) {
			dir, iso := fakeEnv(t)
			cfg := filepath.Join(t.TempDir(), "VirtualBox VMs", "postgres", "postgres.vbox")
			if tt.cfg == "$DIR" {
				cfg = filepath.Join(dir, "postgres", "postgres.vbox")
			}
			putVM(t, "postgres", &fakeVM{State: "running", Extra: tt.extra, Media: map[string]string{},
				Settings: map[string]string{"cfgfile": cfg, "--hostonlyadapter2": "vboxnet0", "--macaddress2": "080027AABBCC", "--natpf1": "ssh,tcp,127.0.0.1,2222,,22"}})
			before := stateFile(t)
			d, err := New("postgres", opts(dir))
			if err != nil {
				t.Fatal(err)
			}
			s := spec
			s.Image = iso
			st, err := d.State(ctx)
			check := func(what string, err error) {
				t.Helper()
				var ne *driver.NotOwnedError
				if !errors.As(err, &ne) || ne.Kind != "VirtualBox VM" || ne.Name != "postgres" || ne.Other != tt.other {
					t.Errorf("%s: %#v", what, err)
				}
			}
			check("State", err)
			if st == driver.Nonexistent {
				t.Errorf("State says %s", st)
			}
			check("Create", d.Create(ctx, s))
			check("Start", d.Start(ctx))
			check("Stop", d.Stop(ctx))
			check("Delete", d.Delete(ctx))
			_, err = d.Endpoint(ctx)
			check("Endpoint", err)
			if after := stateFile(t); after != before {
				t.Errorf("the foreign VM changed:\n%s\nwas\n%s", after, before)
			}
			// Only questions were asked: no host-only network made, nothing set on the VM.
			for _, line := range strings.Split(strings.TrimSpace(transcript(t)), "\n") {
				if !strings.HasPrefix(line, "VBoxManage showvminfo postgres ") && !strings.HasPrefix(line, "VBoxManage getextradata postgres ") {
					t.Errorf("ran %s", line)
				}
			}
		})
	}

	t.Run("a fresh create marks the VM", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		d, _ := New("postgres", opts(dir))
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if tag := loadFake().VMs["postgres"].Extra[ownerKey]; tag != "mkube-owner:5f0c2a9e41d84b7c/postgres" {
			t.Errorf("mark %q", tag)
		}
		if out, err := run(ctx, "getextradata", "postgres", ownerKey); err != nil || extraDataValue(out) != "mkube-owner:5f0c2a9e41d84b7c/postgres" {
			t.Errorf("getextradata: %q %v", out, err)
		}
		for _, f := range []func(context.Context) error{d.Stop, d.Start, d.Stop, d.Delete} {
			if err := f(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if st, err := d.State(ctx); st != driver.Nonexistent || err != nil {
			t.Errorf("after delete: %s %v", st, err)
		}
	})

	t.Run("create finishes an unmarked VM an interrupted create left in the machine directory", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		if _, err := run(ctx, "createvm", "--name", "postgres", "--ostype", "Linux_64", "--basefolder", dir, "--register"); err != nil {
			t.Fatal(err)
		}
		d, _ := New("postgres", opts(dir))
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if tag := loadFake().VMs["postgres"].Extra[ownerKey]; tag != "mkube-owner:5f0c2a9e41d84b7c/postgres" {
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
	d, err := New(bad, opts(machineDir))
	if err != nil {
		t.Fatal(err)
	}
	s := spec
	s.Image = iso
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
