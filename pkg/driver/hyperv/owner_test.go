package hyperv

import (
	"context"
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
		name, notes string
		here        bool // its folder is in this profile's machine directory
		other       string
	}{
		{"the user's own VM", "", false, ""},
		{"the user's VM with notes", "postgres 16 for the billing team", false, ""},
		{"the user's notes, files here", "postgres 16 for the billing team", true, ""},
		{"another home's VM", "mkube-owner:0ther0ther0ther0/postgres", false, "another mkube home"},
		{"another home's mark, files here", "mkube-owner:0ther0ther0ther0/postgres", true, "another mkube home"},
		{"another profile's VM", "mkube-owner:5f0c2a9e41d84b7c/mysql", false, "another profile of this mkube home"},
	}
	for _, tt := range foreign {
		t.Run(tt.name, func(t *testing.T) {
			dir, iso := fakeEnv(t)
			folder := `C:\ProgramData\Microsoft\Windows\Hyper-V\postgres`
			if tt.here {
				folder = filepath.Join(dir, "postgres")
			}
			putVM(t, "postgres", &fakeVM{State: "Running", Path: folder, Switch: "Default Switch", Notes: tt.notes, Settings: map[string]string{}})
			before := stateFile(t)
			d, err := New("postgres", opts(dir))
			if err != nil {
				t.Fatal(err)
			}
			s := spec
			s.Image = iso
			check := func(what string, err error) {
				t.Helper()
				var ne *driver.NotOwnedError
				if !errors.As(err, &ne) || ne.Kind != "Hyper-V VM" || ne.Name != "postgres" || ne.Other != tt.other {
					t.Errorf("%s: %#v", what, err)
				}
			}
			st, err := d.State(ctx)
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
			for _, line := range strings.Split(strings.TrimSpace(transcript()), "\n") {
				if line != vmScript("postgres") {
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
		if notes := loadFake().VMs["postgres"].Notes; notes != "mkube-owner:5f0c2a9e41d84b7c/postgres" {
			t.Errorf("notes %q", notes)
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
		if _, err := ps(ctx, `Hyper-V\New-VM -Name 'postgres' -Path `+quote(dir)+` -Generation 1 -MemoryStartupBytes 4096MB -SwitchName 'Default Switch'`); err != nil {
			t.Fatal(err)
		}
		d, _ := New("postgres", opts(dir))
		s := spec
		s.Image = iso
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		vm := loadFake().VMs["postgres"]
		if vm.Notes != "mkube-owner:5f0c2a9e41d84b7c/postgres" || vm.Settings["Add-VMHardDiskDrive/0/0"] == "" {
			t.Errorf("not finished: %+v", vm)
		}
		if n := strings.Count(transcript(), "New-VM "); n != 1 {
			t.Errorf("New-VM ran %d times", n)
		}
		if err := d.Delete(ctx); err != nil {
			t.Error(err)
		}
	})
}

func TestParseVMInfo(t *testing.T) {
	// As Windows PowerShell 5.1's ConvertTo-Json writes it (it escapes ' and <>& as \u00XX).
	got, err := parseVMInfo(`{"Notes":"mkube-owner:h/dev","State":"Running","Path":"C:\\mkube\\machines\\dev\\dev"}`)
	if err != nil || got != (vmInfo{State: "Running", Path: `C:\mkube\machines\dev\dev`, Notes: "mkube-owner:h/dev"}) {
		t.Errorf("%+v %v", got, err)
	}
	// The user's notes may span lines and look like anything.
	got, err = parseVMInfo(`{"Path":"C:\\VMs\\db","State":"Off","Notes":"line one\r\nPath: C:\\mkube\u0027s\r\n"}`)
	if err != nil || got.Notes != "line one\r\nPath: C:\\mkube's" || got.Path != `C:\VMs\db` {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := parseVMInfo("Running"); err == nil {
		t.Error("not JSON accepted")
	}
}

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		dir, path string
		in        bool
	}{
		{`C:\Users\u\.mkube\machines\dev`, `C:\Users\u\.mkube\machines\dev\dev`, true},
		{`C:\Users\u\.mkube\machines\dev`, `c:\users\U\.MKUBE\machines\dev\dev`, true},
		{`C:\Users\u\.mkube\machines\dev\`, `C:/Users/u/.mkube/machines/dev/dev`, true},
		{`C:\Users\u\.mkube\machines\dev`, `C:\Users\u\.mkube\machines\dev2\dev2`, false},
		{`C:\Users\u\.mkube\machines\dev`, `C:\Users\u\.mkube\machines\dev\..\prod`, false},
		{`C:\Users\u\.mkube\machines\dev`, `C:\ProgramData\Microsoft\Windows\Hyper-V`, false},
		{``, `C:\anything`, false},
	} {
		if got := within(tt.dir, tt.path); got != tt.in {
			t.Errorf("within(%q, %q) = %v", tt.dir, tt.path, got)
		}
	}
}

// TestQuote: every PowerShell single quote character is doubled, nothing else changes.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               "'plain'",
		"it's":                "'it''s'",
		"it\u2019s":           "'it\u2019\u2019s'",
		"\u2018a\u201a\u201b": "'\u2018\u2018a\u201a\u201a\u201b\u201b'",
		"$(x); `y` \"z\"\n":   "'$(x); `y` \"z\"\n'",
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %q, want %q", in, got, want)
		}
		if tk := tokens(quote(in)); len(tk) != 1 || tk[0] != in {
			t.Errorf("tokens(quote(%q)) = %q", in, tk)
		}
	}
}

// TestHostileValuesStayData: a profile, switch name and paths built to break out of their quotes
// (with ' and with PowerShell's typographic quotes), to run $() or a second statement, reach the
// cmdlets as the values they are.
func TestHostileValuesStayData(t *testing.T) {
	ctx := context.Background()
	const bad = "x'; Hyper-V\\Remove-VM -Name 'victim' -Force; '\u2019; $(Stop-Computer) `n & <b> \"q\"\nStart-VM victim"
	dir, _ := fakeEnv(t)
	putVM(t, "victim", &fakeVM{State: "Running", Path: `C:\VMs\victim`, Settings: map[string]string{}})
	// Get-VMSwitch lists one name a line, so a switch name has no line break.
	badSwitch := strings.ReplaceAll(bad, "\n", " ")
	t.Setenv("FAKE_PS_SWITCHES", "Default Switch,"+badSwitch)
	// The name is a file name too (the ISO, the machine directory): no slash in it.
	safe := strings.ReplaceAll(bad, "\\", "_")
	iso := filepath.Join(t.TempDir(), safe+".iso")
	if err := os.WriteFile(iso, []byte("iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	machineDir := filepath.Join(dir, safe)
	d, err := New(bad, driver.Options{MachineDir: machineDir, Owner: home, Settings: driver.Settings{"hyperv-virtual-switch": badSwitch}})
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
	if vm == nil || len(st.VMs) != 2 {
		t.Fatalf("VMs: %+v", st.VMs)
	}
	if vm.Switch != badSwitch || vm.Notes != "mkube-owner:5f0c2a9e41d84b7c/"+bad || vm.Path != filepath.Join(machineDir, bad) ||
		vm.Settings["Set-VMDvdDrive/1/0"] != iso || vm.Settings["Add-VMDvdDrive/1/1"] != filepath.Join(machineDir, "seed.iso") {
		t.Errorf("values changed: %+v", vm)
	}
	if v := st.VMs["victim"]; v.State != "Running" {
		t.Errorf("the victim was touched: %+v", v)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if v := loadFake().VMs["victim"]; v == nil || v.State != "Running" {
		t.Errorf("the victim was touched: %+v", v)
	}
}
