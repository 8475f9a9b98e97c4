// Package fakevm helps test the drivers of hypervisors that cannot run on the build machine
// (Hyper-V, VirtualBox) against fakes of their command-line tools: it puts the test binary on PATH
// as the tool, keeps the fake's state and transcript, and holds the ownership cases every such
// driver passes (a VM named like the profile that is not the profile's is refused by every method
// and left as it was; a VM the driver creates carries the profile's mark).
package fakevm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
)

// Tool is a fake command-line tool played by the test binary.
type Tool struct {
	Name     string // the command's name on PATH ("powershell", "VBoxManage")
	StateEnv string // the environment variable naming the fake's state directory
}

// Main runs fake in place of the tests when the test binary was started as the tool (TestMain).
func (tl Tool) Main(m *testing.M, fake func(args []string) int) {
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == tl.Name {
		os.Exit(fake(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// Install makes the test binary, as the tool, the only command on PATH, with a fresh state.
func (tl Tool) Install(t *testing.T) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(bin, tl.Name)
	if err := os.Link(self, dst); err != nil {
		raw, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, raw, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	t.Setenv(tl.StateEnv, state)
}

// Dir is the fake's state directory.
func (tl Tool) Dir() string { return os.Getenv(tl.StateEnv) }

// Load reads the fake's state into v; with no state yet, v stays as it is.
func (tl Tool) Load(v any) {
	if raw, err := os.ReadFile(filepath.Join(tl.Dir(), "state.json")); err == nil {
		json.Unmarshal(raw, v)
	}
}

// Save writes the fake's state.
func (tl Tool) Save(v any) {
	raw, _ := json.MarshalIndent(v, "", "  ")
	os.WriteFile(filepath.Join(tl.Dir(), "state.json"), raw, 0o644)
}

// StateFile is the fake's state as it keeps it, to see whether anything changed.
func (tl Tool) StateFile(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(tl.Dir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// Record appends one invocation to the transcript.
func (tl Tool) Record(line string) {
	f, _ := os.OpenFile(filepath.Join(tl.Dir(), "transcript"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	fmt.Fprintln(f, line)
	f.Close()
}

// Transcript is every invocation so far, one a line.
func (tl Tool) Transcript() string {
	raw, _ := os.ReadFile(filepath.Join(tl.Dir(), "transcript"))
	return string(raw)
}

// ISO makes a stand-in for the node ISO.
func ISO(t *testing.T) string {
	t.Helper()
	iso := filepath.Join(t.TempDir(), "mkube-v0.1.0-amd64.iso")
	if err := os.WriteFile(iso, []byte("iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	return iso
}

// Home is the mkube home the tests' drivers work for; OtherHome is another home on the machine.
var (
	Home      = driver.Owner{HomeID: "5f0c2a9e41d84b7c"}
	OtherHome = driver.Owner{HomeID: "0ther0ther0ther0"}
)

// Options are a driver's options for a machine directory of Home.
func Options(machineDir string) driver.Options {
	return driver.Options{MachineDir: machineDir, Owner: Home}
}

// Spec is the machine the tests create, booting iso.
func Spec(iso string) driver.Spec {
	return driver.Spec{Name: "mkube", CPUs: 2, MemoryMB: 4096, DiskMB: 20000, APIServerPort: 8443, SSHPublicKey: "ssh-ed25519 AAAA test", Image: iso}
}

// Conformance runs drivertest's suite against the fake, with an intruder from OtherHome.
func Conformance(t *testing.T, iso string, newDriver func(profile string, opts driver.Options) (driver.Driver, error)) {
	drivertest.Run(t, drivertest.Config{
		New: func(dir string) (driver.Driver, error) { return newDriver("conformance", Options(dir)) },
		Intruder: func(dir string) (driver.Driver, error) {
			return newDriver("conformance", driver.Options{MachineDir: dir, Owner: OtherHome})
		},
		Spec:    Spec(iso),
		Timeout: time.Minute,
		NoGuest: true,
	})
}

// Profile is the profile the ownership cases run as, and the name of the VMs they put in the fake.
const Profile = "postgres"

// Marks the ownership cases use: Profile's of Home, of OtherHome, and another profile's of Home.
const (
	OwnMark          = "mkube-owner:5f0c2a9e41d84b7c/postgres"
	OtherHomeMark    = "mkube-owner:0ther0ther0ther0/postgres"
	OtherProfileMark = "mkube-owner:5f0c2a9e41d84b7c/mysql"
)

// Foreign is a VM named Profile that the profile's driver must refuse.
type Foreign struct {
	Name     string // the subtest's
	Mark     string // the owner mark it carries, "" for none
	UserData bool   // it carries the user's own data where mkube keeps its mark (notes, other extradata)
	Here     bool   // its files are in the profile's machine directory
	Other    string // whose the driver says it is: driver.NotOwnedError.Other
}

// ForeignVMs are the VMs every such driver refuses.
var ForeignVMs = []Foreign{
	{Name: "the user's own VM"},
	{Name: "the user's VM with data of its own", UserData: true},
	{Name: "another home's VM", Mark: OtherHomeMark, Other: "another mkube home"},
	// Files in this profile's machine directory do not outweigh another's mark.
	{Name: "another home's mark, files here", Mark: OtherHomeMark, Here: true, Other: "another mkube home"},
	{Name: "another profile's VM", Mark: OtherProfileMark, Other: "another profile of this mkube home"},
}

// Ownership is how to run the ownership cases against one driver and its fake.
type Ownership struct {
	Tool Tool
	Kind string // driver.NotOwnedError.Kind, e.g. "Hyper-V VM"
	// Env installs a fresh fake and returns a machine directory and an ISO.
	Env func(t *testing.T) (machineDir, iso string)
	// New builds Profile's driver for machineDir with Options.
	New func(machineDir string) (driver.Driver, error)
	// Put makes a running VM named Profile in the fake as someone else would have, as f says:
	// its files in machineDir when f.Here, elsewhere otherwise.
	Put func(t *testing.T, machineDir string, f Foreign)
	// Query says whether a transcript line only asks about the VM, all a refusal may run.
	Query func(line string) bool
	// Mark is the owner mark the fake holds on the VM named Profile.
	Mark func(t *testing.T) string
}

// Run refuses each of ForeignVMs and extra by every method, leaving the fake's state as it was
// and asking questions only; then a fresh create marks its VM, which the driver then runs and
// deletes.
func (o Ownership) Run(t *testing.T, extra ...Foreign) {
	ctx := context.Background()
	for _, f := range append(ForeignVMs[:len(ForeignVMs):len(ForeignVMs)], extra...) {
		t.Run(f.Name, func(t *testing.T) {
			dir, iso := o.Env(t)
			o.Put(t, dir, f)
			before := o.Tool.StateFile(t)
			d, err := o.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				var ne *driver.NotOwnedError
				if !errors.As(err, &ne) || ne.Kind != o.Kind || ne.Name != Profile || ne.Other != f.Other {
					t.Errorf("%s: %#v", what, err)
				}
			}
			st, err := d.State(ctx)
			check("State", err)
			if st == driver.Nonexistent {
				t.Errorf("State says %s", st)
			}
			check("Create", d.Create(ctx, Spec(iso)))
			check("Start", d.Start(ctx))
			check("Stop", d.Stop(ctx))
			check("Delete", d.Delete(ctx))
			_, err = d.Endpoint(ctx)
			check("Endpoint", err)
			if after := o.Tool.StateFile(t); after != before {
				t.Errorf("the foreign VM changed:\n%s\nwas\n%s", after, before)
			}
			for _, line := range strings.Split(strings.TrimSpace(o.Tool.Transcript()), "\n") {
				if !o.Query(line) {
					t.Errorf("ran %s", line)
				}
			}
		})
	}

	t.Run("a fresh create marks the VM", func(t *testing.T) {
		dir, iso := o.Env(t)
		d, err := o.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Create(ctx, Spec(iso)); err != nil {
			t.Fatal(err)
		}
		if mark := o.Mark(t); mark != OwnMark {
			t.Errorf("mark %q", mark)
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
}

// SecondNode checks what a multi-node driver does for a profile's second node, in the machine
// directory the primary uses: both machines run side by side, with their own names, addresses,
// SSH endpoints and files (its seed names it as the guest's hostname); deleting the second
// leaves the primary running with its files. It returns the fake's transcript of the second
// node's create and delete, with dir and iso normalized, for the driver's golden file.
func SecondNode(t *testing.T, dir, iso string, newDriver func(profile string, opts driver.Options) (driver.Driver, error), transcript func() string) string {
	t.Helper()
	ctx := context.Background()
	const profile, second = "mkube", "mkube-m02"
	primary, err := newDriver(profile, Options(dir))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options(dir)
	opts.Machine = second
	node, err := newDriver(profile, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := primary.Create(ctx, Spec(iso)); err != nil {
		t.Fatal(err)
	}
	before := len(transcript())
	spec := Spec(iso)
	spec.Ordinal = 2
	if err := node.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	pep, err := primary.Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nep, err := node.Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pep.IP == "" || pep.IP == nep.IP || (pep.SSHHost == nep.SSHHost && pep.SSHPort == nep.SSHPort) {
		t.Errorf("the nodes share an address: primary %+v, second %+v", pep, nep)
	}
	seed, err := os.ReadFile(filepath.Join(dir, second+"-seed.iso"))
	if err != nil || !strings.Contains(string(seed), "local-hostname: "+second+"\n") {
		t.Errorf("the second node's seed does not name it (%v)", err)
	}
	if err := node.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	got := transcript()[before:]
	if st, err := primary.State(ctx); err != nil || st != driver.Running {
		t.Errorf("the primary after the second node's delete: %s %v", st, err)
	}
	if st, err := node.State(ctx); err != nil || st != driver.Nonexistent {
		t.Errorf("the second node after its delete: %s %v", st, err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), second) {
			left = append(left, e.Name())
		}
	}
	if len(left) > 0 {
		t.Errorf("the second node's delete left %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "seed.iso")); err != nil {
		t.Errorf("the primary's seed went with the second node: %v", err)
	}
	if err := primary.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(strings.ReplaceAll(got, dir, "$MACHINE_DIR"), iso, "$ISO")
}
