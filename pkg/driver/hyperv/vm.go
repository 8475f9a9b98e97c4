package hyperv

// What Hyper-V says about the VM: state, ownership, address.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mkube/pkg/driver"
	"strings"

	"k8s.io/apimachinery/pkg/util/wait"
)

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
	out, err := ps(ctx, vmScript(d.machine))
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
	if err := vmOwned(d.owner, d.machine, info, d.dir()); err != nil {
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

// ip is the first IPv4 address the guest's KVP daemon reported.
func (d *Driver) ip(ctx context.Context) (string, error) {
	out, err := ps(ctx, "(( Hyper-V\\Get-VM -Name "+quote(d.machine)+" ).NetworkAdapters[0]).IPAddresses")
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
		return "", fmt.Errorf("Hyper-V reported no address for the VM %s in %s (is its switch connected to a network with DHCP?)", d.machine, ipTimeout)
	}
	return ip, nil
}
