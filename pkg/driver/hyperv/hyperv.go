// Package hyperv runs the node as a Hyper-V VM through PowerShell's Hyper-V cmdlets: a generation 1
// VM (mkube's ISO boots with BIOS isolinux) with the ISO and the NoCloud seed in DVD drives, a dynamic
// VHDX data disk, on the virtual switch --hyperv-virtual-switch names (else "Default Switch", else
// the first external one). The guest's KVP daemon reports its address to Get-VM.
package hyperv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/driver/seed"
	"mkube/pkg/ssh"

	"k8s.io/apimachinery/pkg/util/wait"
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
	profile string
	opts    driver.Options
	owner   driver.Owner
}

// Entry registers the driver; Hyper-V exists on Windows only.
func Entry(goos string) driver.Entry {
	return driver.Entry{Name: Name, Priority: 70, Supported: goos == "windows", ISO: true, New: New,
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
	return &Driver{profile: profile, opts: opts, owner: owner}, nil
}

func (d *Driver) Name() string { return Name }

// Close does nothing: every call runs a PowerShell process of its own.
func (d *Driver) Close() error { return nil }

// psError is PowerShell failing, with what it wrote on stderr.
type psError struct {
	script string
	output string
}

func (e *psError) Error() string {
	return fmt.Sprintf("powershell %q: %s", e.script, strings.TrimSpace(e.output))
}

// ps runs one script with Windows PowerShell and returns its output.
func ps(ctx context.Context, script string) (string, error) {
	bin, err := exec.LookPath("powershell")
	if err != nil {
		return "", fmt.Errorf("PowerShell was not found: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, "-NoProfile", "-NonInteractive", "-Command", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return stdout.String(), &psError{script: script, output: stderr.String()}
		}
		return "", err
	}
	return strings.TrimSpace(stdout.String()), nil
}

// quote makes a PowerShell single-quoted string literal, in which nothing ($, `, ;, line breaks)
// is special but the quote itself. PowerShell takes the typographic single quotes ‘ ’ ‚ ‛ for
// quotes too, so each of them is doubled like ' (as PowerShell's own
// CodeGeneration.EscapeSingleQuotedStringContent does); otherwise a name with ’ would end the
// literal and the rest would run as script. Every value from the user (profile, switch name,
// paths) goes into a script through quote; numbers are formatted by %d.
func quote(s string) string { return "'" + singleQuotes.Replace(s) + "'" }

var singleQuotes = strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201a", "\u201a\u201a", "\u201b", "\u201b\u201b")

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

func (d *Driver) dir() string     { return d.opts.MachineDir }
func (d *Driver) disk() string    { return filepath.Join(d.dir(), "disk.vhdx") }
func (d *Driver) seedISO() string { return filepath.Join(d.dir(), "seed.iso") }

// vmInfo is what the driver reads of a VM: Get-VM's State, Path (the VM's folder) and Notes.
type vmInfo struct{ State, Path, Notes string }

// vmScript reads a VM's state, folder and notes in one PowerShell, as JSON: notes are free text
// (any line breaks, anything that looks like another field), JSON keeps them apart. The [string]
// casts make State its name rather than the enum's number. -ErrorAction Stop makes a missing VM
// fail the script.
func vmScript(name string) string {
	return "$vm = Hyper-V\\Get-VM -Name " + quote(name) + " -ErrorAction Stop; @{ State = [string]$vm.State; Path = [string]$vm.Path; Notes = [string]$vm.Notes } | ConvertTo-Json -Compress"
}

// parseVMInfo parses vmScript's output.
func parseVMInfo(out string) (vmInfo, error) {
	var v vmInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return v, fmt.Errorf("reading Get-VM's answer %q: %w", firstLine(out), err)
	}
	v.Notes = strings.TrimSpace(v.Notes)
	return v, nil
}

// vm reads the profile's VM: nil when there is none, a *driver.NotOwnedError when there is one
// that is not this profile's (see vmOwned), before anything touches it. unmarked says the VM is
// ours but lacks the mark.
func (d *Driver) vm(ctx context.Context) (vm *vmInfo, unmarked bool, err error) {
	out, err := ps(ctx, vmScript(d.profile))
	var pe *psError
	if errors.As(err, &pe) && strings.Contains(pe.output, "unable to find a virtual machine") {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	info, err := parseVMInfo(out)
	if err != nil {
		return nil, false, err
	}
	if err := vmOwned(d.owner, d.profile, info, d.dir()); err != nil {
		return nil, false, err
	}
	return &info, info.Notes == "", nil
}

// vmOwned decides whether a VM is owner's. Its Notes decide, with one exception: Create sets them
// right after New-VM, so a create interrupted between the two leaves a VM without notes; when its
// folder is inside this profile's machine directory (a directory of this home that only this
// profile's driver uses) it is that VM, and Create finishes it. A VM whose notes say anything
// else (another's mark, the user's own text) is never ours, wherever its files are.
func vmOwned(owner driver.Owner, name string, vm vmInfo, machineDir string) error {
	if vm.Notes == "" && vm.Path != "" && within(machineDir, vm.Path) {
		return nil
	}
	return owner.CheckTag("Hyper-V VM", name, vm.Notes)
}

// within says whether path is dir or inside it, without regard to case (as Windows compares
// paths) or to the kind of separator.
func within(dir, path string) bool {
	norm := func(p string) string {
		return strings.TrimRight(strings.ToLower(strings.ReplaceAll(p, "/", "\\")), "\\")
	}
	dir, path = norm(dir), norm(path)
	return dir != "" && !strings.Contains(path, "\\..") && (path == dir || strings.HasPrefix(path, dir+"\\"))
}

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
	raw, err := seed.ISO(seed.Data{Hostname: d.profile, AuthorizedKey: spec.SSHPublicKey})
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
		name := quote(d.profile)
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
		return fmt.Errorf("Hyper-V has no VM named %s", d.profile)
	}
	if vm.State != "Running" {
		if _, err := ps(ctx, "Hyper-V\\Start-VM -Name "+quote(d.profile)); err != nil {
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
		_, err := ps(sctx, "Hyper-V\\Stop-VM -Name "+quote(d.profile))
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
	_, err = ps(ctx, "Hyper-V\\Stop-VM -Name "+quote(d.profile)+" -TurnOff")
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
			if _, err := ps(ctx, "Hyper-V\\Stop-VM -Name "+quote(d.profile)+" -TurnOff"); err != nil {
				return err
			}
		}
		if _, err := ps(ctx, "Hyper-V\\Remove-VM -Name "+quote(d.profile)+" -Force"); err != nil {
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

// ip is the first IPv4 address the guest's KVP daemon reported.
func (d *Driver) ip(ctx context.Context) (string, error) {
	out, err := ps(ctx, "(( Hyper-V\\Get-VM -Name "+quote(d.profile)+" ).NetworkAdapters[0]).IPAddresses")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n") {
		if l = strings.TrimSpace(l); strings.Count(l, ".") == 3 {
			return l, nil
		}
	}
	return "", nil
}

func (d *Driver) waitIP(ctx context.Context) (string, error) {
	var ip string
	err := wait.PollUntilContextTimeout(ctx, pollEvery, ipTimeout, true, func(ctx context.Context) (bool, error) {
		ip, _ = d.ip(ctx)
		return ip != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("Hyper-V reported no address for the VM %s in %s (is its switch connected to a network with DHCP?)", d.profile, ipTimeout)
	}
	return ip, nil
}

// Endpoint: SSH and the API server at the guest's address.
func (d *Driver) Endpoint(ctx context.Context) (driver.Endpoint, error) {
	vm, _, err := d.vm(ctx)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if vm == nil {
		return driver.Endpoint{}, fmt.Errorf("Hyper-V has no VM named %s", d.profile)
	}
	ip, err := d.ip(ctx)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if ip == "" {
		return driver.Endpoint{}, fmt.Errorf("the VM %s has no address yet", d.profile)
	}
	return driver.Endpoint{IP: ip, SSHHost: ip, SSHPort: 22, SSHUser: "docker", APIServerHost: ip, APIServerPort: 8443, NodeReachable: true}, nil
}

// Runner runs commands over SSH.
func (d *Driver) Runner(ctx context.Context) (driver.Runner, error) {
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return nil, err
	}
	return ssh.Dial(ctx, ep, filepath.Join(d.dir(), "id_ed25519"))
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }
