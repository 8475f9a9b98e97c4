package virtualbox

// What VirtualBox says about the VM, and whether it is this profile's.

import (
	"context"
	"errors"
	"mkube/pkg/driver"
	"path/filepath"
	"runtime"
	"strings"
)

// info is `showvminfo --machinereadable`, or nil when the VM does not exist.
func (d *Driver) info(ctx context.Context) (map[string]string, error) {
	out, err := run(ctx, "showvminfo", d.machine, "--machinereadable")
	var ce *commandError
	if errors.As(err, &ce) && strings.Contains(ce.output, "Could not find a registered machine") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return machineReadable(out), nil
}

// ownedInfo is info, after checking that the VM (when there is one) is this profile's: a
// *driver.NotOwnedError otherwise, before anything touches it. unmarked says the VM is ours but
// lacks the mark (see vmOwned).
func (d *Driver) ownedInfo(ctx context.Context) (info map[string]string, unmarked bool, err error) {
	info, err = d.info(ctx)
	if err != nil || info == nil {
		return nil, false, err
	}
	out, err := run(ctx, "getextradata", d.machine, ownerKey)
	if err != nil {
		return nil, false, err
	}
	tag := extraDataValue(out)
	if err := vmOwned(d.owner, d.machine, tag, info["CfgFile"], d.dir()); err != nil {
		return nil, false, err
	}
	return info, tag == "", nil
}

// vmOwned decides whether a VM whose mark is tag and whose settings file is cfgFile is owner's.
// The mark decides, with one exception: register sets the mark right after createvm, so a create
// interrupted between the two leaves an unmarked VM; when its settings file is inside this
// profile's machine directory (a directory of this home that only this profile's driver uses) it
// is that VM, and Create finishes it. A VM carrying another mark is never ours, wherever its files are.
func vmOwned(owner driver.Owner, name, tag, cfgFile, machineDir string) error {
	if tag == "" && cfgFile != "" && within(machineDir, cfgFile) {
		return nil
	}
	return owner.CheckTag("VirtualBox VM", name, tag)
}

// within says whether path is inside dir (compared as cleaned paths; without regard to case where
// file systems usually ignore it).
func within(dir, path string) bool {
	dir, path = filepath.Clean(dir), filepath.Clean(path)
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		dir, path = strings.ToLower(dir), strings.ToLower(path)
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// extraDataValue parses `VBoxManage getextradata VM KEY`: "Value: V", or "No value set!" when the
// key is absent.
func extraDataValue(out string) string {
	v, ok := strings.CutPrefix(strings.TrimSpace(out), "Value: ")
	if !ok {
		return ""
	}
	return v
}
