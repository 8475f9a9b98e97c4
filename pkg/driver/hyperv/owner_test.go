package hyperv

import (
	"context"
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

// TestOwnership: fakevm's ownership cases, with the Hyper-V VM's notes as the mark, and a
// create that finds the VM an interrupted create left.
func TestOwnership(t *testing.T) {
	ctx := context.Background()
	fakevm.Ownership{
		Tool: fakeTool,
		Kind: "Hyper-V VM",
		Env:  fakeEnv,
		New:  func(dir string) (driver.Driver, error) { return New(fakevm.Profile, fakevm.Options(dir)) },
		Put: func(t *testing.T, dir string, f fakevm.Foreign) {
			folder := `C:\ProgramData\Microsoft\Windows\Hyper-V\postgres`
			if f.Here {
				folder = filepath.Join(dir, "postgres")
			}
			notes := f.Mark // the notes hold the mark, or the user's own notes
			if f.UserData {
				notes = "postgres 16 for the billing team"
			}
			putVM(t, fakevm.Profile, &fakeVM{State: "Running", Path: folder, Switch: "Default Switch", Notes: notes, Settings: map[string]string{}})
		},
		Query: func(line string) bool { return line == vmScript(fakevm.Profile) },
		Mark:  func(*testing.T) string { return loadFake().VMs[fakevm.Profile].Notes },
	}.Run(t,
		// Notes that are not a mark make the VM the user's, wherever its files are.
		fakevm.Foreign{Name: "the user's notes, files here", UserData: true, Here: true},
	)

	t.Run("create finishes an unmarked VM an interrupted create left in the machine directory", func(t *testing.T) {
		dir, iso := fakeEnv(t)
		if _, err := ps(ctx, `Hyper-V\New-VM -Name 'postgres' -Path `+quote(dir)+` -Generation 1 -MemoryStartupBytes 4096MB -SwitchName 'Default Switch'`); err != nil {
			t.Fatal(err)
		}
		d, _ := New("postgres", fakevm.Options(dir))
		s := fakevm.Spec(iso)
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		vm := loadFake().VMs["postgres"]
		if vm.Notes != fakevm.OwnMark || vm.Settings["Add-VMHardDiskDrive/0/0"] == "" {
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
	d, err := New(bad, driver.Options{MachineDir: machineDir, Owner: fakevm.Home, Settings: driver.Settings{"hyperv-virtual-switch": badSwitch}})
	if err != nil {
		t.Fatal(err)
	}
	s := fakevm.Spec(iso)
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
