// Package hyperv runs the node as a Hyper-V VM through PowerShell's Hyper-V cmdlets: a generation 1
// VM (mkube's ISO boots with BIOS isolinux) with the ISO and the NoCloud seed in DVD drives, a dynamic
// VHDX data disk, on the virtual switch --hyperv-virtual-switch names (else "Default Switch", else
// the first external one). The guest's KVP daemon reports its address to Get-VM.
package hyperv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/driver/seed"
	"mkube/pkg/ssh"
)

// Name of the driver, as minikube's.
const Name = "hyperv"

// Timeouts: the guest's shutdown, and its address after boot.
var (
	stopTimeout = 2 * time.Minute
	ipTimeout   = 5 * time.Minute
	pollEvery   = 500 * time.Millisecond
)

// Driver is one profile's VM. Every VM it creates carries the owner's mark (driver.Owner.Tag) as
// its Notes, and it touches no VM of the profile's name without it.
type Driver struct {
	machine string // the profile's name for the primary, <profile>-mNN for the others
	opts    driver.Options
	owner   driver.Owner
}

// Entry registers the driver; Hyper-V exists on Windows only.
func Entry(goos string) driver.Entry {
	return driver.Entry{Name: Name, Priority: 70, Supported: goos == "windows", MultiNode: true, ISO: true, New: New,
		Options: []driver.Option{{Name: "hyperv-virtual-switch",
			Help: "hyperv: the virtual switch to use (default: \"Default Switch\", else the first external one)"}},
		Health: func(ctx context.Context, _ driver.Settings) driver.Health { return Health(ctx) }}
}

// New makes the driver. Settings["hyperv-virtual-switch"] picks the switch.
func New(profile string, opts driver.Options) (driver.Driver, error) {
	owner, err := opts.Owner.ForProfile(profile)
	if err != nil {
		return nil, err
	}
	return &Driver{machine: cmp.Or(opts.Machine, profile), opts: opts, owner: owner}, nil
}

func (d *Driver) Name() string { return Name }

// Close does nothing: every call runs a PowerShell process of its own.
func (d *Driver) Close() error { return nil }

// Health checks for the Hyper-V module and for the right to use it (Administrators or
// "Hyper-V Administrators", SID S-1-5-32-578).
func Health(ctx context.Context) driver.Health {
	out, err := ps(ctx, `@(Get-Module -ListAvailable Hyper-V).Count`)
	if err != nil {
		return driver.Health{Problem: "PowerShell does not run: " + firstLine(err.Error()), Fix: "the hyperv driver needs Windows PowerShell"}
	}
	if strings.TrimSpace(out) == "0" {
		return driver.Health{Problem: "the Hyper-V PowerShell module is not installed",
			Fix: "enable Hyper-V (as Administrator): Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V -All",
			Doc: "https://learn.microsoft.com/virtualization/hyper-v-on-windows/quick-start/enable-hyper-v"}
	}
	out, err = ps(ctx, `$p = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent(); $p.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator) -or $p.IsInRole([Security.Principal.SecurityIdentifier]::new('S-1-5-32-578'))`)
	if err != nil {
		return driver.Health{Installed: true, Problem: firstLine(err.Error()), Fix: "run mkube from an elevated PowerShell"}
	}
	if !strings.EqualFold(strings.TrimSpace(out), "True") {
		return driver.Health{Installed: true, Running: true, Problem: "you are neither an Administrator nor in the Hyper-V Administrators group",
			Fix: "add yourself (as Administrator): Add-LocalGroupMember -SID S-1-5-32-578 -Member $env:USERNAME, then sign out and in"}
	}
	return driver.Health{Installed: true, Running: true, Healthy: true}
}

// file is one of this node's files in the profile's machine directory.
func (d *Driver) file(name string) string {
	return driver.NodeFile(d.opts.MachineDir, d.owner.Profile, d.machine, name)
}

func (d *Driver) dir() string     { return d.opts.MachineDir }
func (d *Driver) disk() string    { return d.file("disk.vhdx") }
func (d *Driver) seedISO() string { return d.file("seed.iso") }

// switchName is the switch to use: the chosen one (which must exist), else "Default Switch", else
// the first external switch.
func (d *Driver) switchName(ctx context.Context) (string, error) {
	out, err := ps(ctx, "Hyper-V\\Get-VMSwitch | Select-Object -ExpandProperty Name")
	if err != nil {
		return "", err
	}
	names := strings.Split(strings.ReplaceAll(strings.TrimSpace(out), "\r", ""), "\n")
	want := d.opts.Settings["hyperv-virtual-switch"]
	for _, n := range names {
		if want != "" && n == want {
			return n, nil
		}
	}
	if want != "" {
		return "", fmt.Errorf("there is no Hyper-V virtual switch named %q (switches: %s)", want, strings.Join(names, ", "))
	}
	for _, n := range names {
		if n == "Default Switch" {
			return n, nil
		}
	}
	out, err = ps(ctx, "Hyper-V\\Get-VMSwitch -SwitchType External | Select-Object -First 1 -ExpandProperty Name")
	if err != nil || strings.TrimSpace(out) == "" {
		return "", fmt.Errorf("no Hyper-V virtual switch to use: create an external one in Hyper-V Manager and pass --hyperv-virtual-switch NAME")
	}
	return strings.TrimSpace(out), nil
}

// Create makes the VM unless it exists, and boots it. A VM of the profile's name that is not this
// profile's is refused before anything is made.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) error {
	if spec.Image == "" {
		return errors.New("the hyperv driver needs the ISO (mkube passes the cached one)")
	}
	if err := os.MkdirAll(d.dir(), 0o755); err != nil {
		return err
	}
	raw, err := seed.ISO(seed.Data{Hostname: d.machine, AuthorizedKey: spec.SSHPublicKey})
	if err != nil {
		return err
	}
	vm, unmarked, err := d.vm(ctx)
	if err != nil {
		return err
	}
	// An unmarked VM of ours is one a create left right after New-VM: the other steps have not
	// run either.
	if vm == nil || unmarked {
		if err := os.WriteFile(d.seedISO(), raw, 0o644); err != nil {
			return err
		}
		sw, err := d.switchName(ctx)
		if err != nil {
			return err
		}
		name := quote(d.machine)
		var steps []string
		if vm == nil {
			steps = append(steps, fmt.Sprintf("Hyper-V\\New-VM -Name %s -Path %s -Generation 1 -MemoryStartupBytes %dMB -SwitchName %s", name, quote(d.dir()), spec.MemoryMB, quote(sw)))
		}
		steps = append(steps,
			// The mark goes on first, so that whatever an interrupted create leaves is recognizably ours.
			fmt.Sprintf("Hyper-V\\Set-VM -Name %s -Notes %s", name, quote(d.owner.Tag())),
			fmt.Sprintf("Hyper-V\\Set-VMProcessor -VMName %s -Count %d", name, spec.CPUs),
			fmt.Sprintf("Hyper-V\\Set-VMMemory -VMName %s -DynamicMemoryEnabled $false -StartupBytes %dMB", name, spec.MemoryMB),
			fmt.Sprintf("Hyper-V\\Set-VMDvdDrive -VMName %s -ControllerNumber 1 -ControllerLocation 0 -Path %s", name, quote(spec.Image)),
			fmt.Sprintf("Hyper-V\\Add-VMDvdDrive -VMName %s -ControllerNumber 1 -ControllerLocation 1 -Path %s", name, quote(d.seedISO())),
		)
		if _, err := os.Stat(d.disk()); errors.Is(err, os.ErrNotExist) {
			steps = append(steps, fmt.Sprintf("Hyper-V\\New-VHD -Path %s -SizeBytes %dMB -Dynamic", quote(d.disk()), spec.DiskMB))
		}
		steps = append(steps,
			fmt.Sprintf("Hyper-V\\Add-VMHardDiskDrive -VMName %s -ControllerNumber 0 -ControllerLocation 0 -Path %s", name, quote(d.disk())),
			fmt.Sprintf("Hyper-V\\Set-VMBios -VMName %s -StartupOrder @('CD', 'IDE', 'LegacyNetworkAdapter', 'Floppy')", name))
		for _, s := range steps {
			if _, err := ps(ctx, s); err != nil {
				return err
			}
		}
	}
	return d.Start(ctx)
}

// Start boots the VM unless it runs, and waits for its address.
func (d *Driver) Start(ctx context.Context) error {
	vm, _, err := d.vm(ctx)
	if err != nil {
		return err
	}
	if vm == nil {
		return fmt.Errorf("Hyper-V has no VM named %s", d.machine)
	}
	if vm.State != "Running" {
		if _, err := ps(ctx, "Hyper-V\\Start-VM -Name "+quote(d.machine)); err != nil {
			return err
		}
	}
	_, err = d.waitIP(ctx)
	return err
}

// Stop shuts the guest down and turns it off after stopTimeout.
func (d *Driver) Stop(ctx context.Context) error {
	vm, _, err := d.vm(ctx)
	if err != nil || vm == nil || vm.State == "Off" {
		return err
	}
	done := make(chan error, 1)
	sctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	go func() {
		_, err := ps(sctx, "Hyper-V\\Stop-VM -Name "+quote(d.machine))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
	case <-sctx.Done():
	}
	d.opts.Logf("the VM did not shut down within %s: turning it off", stopTimeout)
	_, err = ps(ctx, "Hyper-V\\Stop-VM -Name "+quote(d.machine)+" -TurnOff")
	return err
}

// Delete turns the VM off, removes it, and deletes its disk and seed.
func (d *Driver) Delete(ctx context.Context) error {
	vm, _, err := d.vm(ctx)
	if err != nil {
		return err
	}
	if vm != nil {
		if vm.State != "Off" {
			if _, err := ps(ctx, "Hyper-V\\Stop-VM -Name "+quote(d.machine)+" -TurnOff"); err != nil {
				return err
			}
		}
		if _, err := ps(ctx, "Hyper-V\\Remove-VM -Name "+quote(d.machine)+" -Force"); err != nil {
			return err
		}
	}
	for _, f := range []string{d.disk(), d.seedISO()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// State maps Hyper-V's VM states to mkube's.
func (d *Driver) State(ctx context.Context) (driver.State, error) {
	vm, _, err := d.vm(ctx)
	if err != nil {
		// Another's VM of this name is not this profile's machine in any state: saying
		// Nonexistent would invite `mkube start` to create over it.
		return driver.Error, err
	}
	if vm == nil {
		return driver.Nonexistent, nil
	}
	switch vm.State {
	case "Running":
		return driver.Running, nil
	case "Starting":
		return driver.Starting, nil
	case "Paused":
		return driver.Paused, nil
	case "Off", "Saved":
		return driver.Stopped, nil
	default:
		return driver.Error, nil
	}
}

// Endpoint: SSH and the API server at the guest's address.
func (d *Driver) Endpoint(ctx context.Context) (driver.Endpoint, error) {
	vm, _, err := d.vm(ctx)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if vm == nil {
		return driver.Endpoint{}, fmt.Errorf("Hyper-V has no VM named %s", d.machine)
	}
	ip, err := d.ip(ctx)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if ip == "" {
		return driver.Endpoint{}, fmt.Errorf("the VM %s has no address yet", d.machine)
	}
	return driver.Endpoint{IP: ip, SSHHost: ip, SSHPort: 22, SSHUser: "docker", APIServerHost: ip, APIServerPort: 8443, NodeReachable: true}, nil
}

// Runner runs commands over SSH.
func (d *Driver) Runner(ctx context.Context) (driver.Runner, error) {
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return nil, err
	}
	return ssh.DialNode(ctx, ep, d.opts.MachineDir, d.owner.Profile, d.machine)
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }
