// Package virtualbox runs the node as a VirtualBox VM through VBoxManage: mkube's ISO in a DVD
// drive, the NoCloud seed in a second one, a VDI data disk, NIC 1 on NAT with SSH forwarded from
// 127.0.0.1, NIC 2 on a host-only network whose DHCP lease is the node's address.
package virtualbox

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/driver/seed"
	"mkube/pkg/ssh"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Name of the driver, as minikube's.
const Name = "virtualbox"

// The host-only network mkube uses (minikube's subnet for VirtualBox).
const (
	hostOnlyIP   = "192.168.59.1"
	hostOnlyMask = "255.255.255.0"
	dhcpServerIP = "192.168.59.2"
	dhcpLower    = "192.168.59.100"
	dhcpUpper    = "192.168.59.254"
	storageCtl   = "SATA"
	sshUser      = "docker"
	apiPort      = 8443
	minMajor     = 6
	minMinor     = 1
)

// Timeouts: the guest's ACPI shutdown, and its DHCP lease after boot.
var (
	stopTimeout = 2 * time.Minute
	ipTimeout   = 5 * time.Minute
	pollEvery   = 500 * time.Millisecond
)

// ownerKey is the extradata key that holds the owner's mark (driver.Owner.Tag) on every VM mkube
// creates: VirtualBox keeps extradata with the VM's settings and shows it to nobody else.
const ownerKey = "mkube/owner"

// Driver is one node's VM: the profile's name for the primary, <profile>-mNN for the others.
type Driver struct {
	machine string
	opts    driver.Options
	owner   driver.Owner
}

// Entry registers the driver; VirtualBox exists for Windows, macOS (Intel) and Linux.
func Entry(goos, goarch string) driver.Entry {
	supported := goos == "windows" || goos == "linux" || (goos == "darwin" && goarch == "amd64")
	return driver.Entry{Name: Name, Priority: 60, Supported: supported, MultiNode: true, ISO: true, New: New,
		Health: func(ctx context.Context, _ driver.Settings) driver.Health { return Health(ctx) }}
}

// New makes the driver for a profile.
func New(profile string, opts driver.Options) (driver.Driver, error) {
	owner, err := opts.Owner.ForProfile(profile)
	if err != nil {
		return nil, err
	}
	// The VM's name is a positional argument of most VBoxManage commands: one starting with '-'
	// would be read as an option (mkube's profile names never do; this keeps it so).
	machine := cmp.Or(opts.Machine, profile)
	if profile == "" || strings.HasPrefix(machine, "-") {
		return nil, fmt.Errorf("the virtualbox driver cannot name a VM %q", machine)
	}
	return &Driver{machine: machine, opts: opts, owner: owner}, nil
}

func (d *Driver) Name() string { return Name }

// Close does nothing: every call runs a VBoxManage process of its own.
func (d *Driver) Close() error { return nil }

// Health checks that VBoxManage exists and is new enough.
func Health(ctx context.Context) driver.Health {
	if _, err := vboxManage(); err != nil {
		return driver.Health{Problem: "VirtualBox is not installed (VBoxManage not found)",
			Fix: "install VirtualBox 6.1 or newer from virtualbox.org, or pick another --driver", Doc: "https://www.virtualbox.org/wiki/Downloads"}
	}
	out, err := run(ctx, "--version")
	if err != nil {
		return driver.Health{Installed: true, Problem: "VBoxManage does not work: " + firstLine(err.Error()),
			Fix: "reinstall VirtualBox; on Linux check that its kernel module is loaded (sudo /sbin/vboxconfig)"}
	}
	major, minor, err := version(out)
	if err != nil {
		return driver.Health{Installed: true, Problem: err.Error(), Fix: "reinstall VirtualBox"}
	}
	if major < minMajor || (major == minMajor && minor < minMinor) {
		return driver.Health{Installed: true, Running: true,
			Problem: fmt.Sprintf("VirtualBox %d.%d is too old: mkube needs %d.%d or newer", major, minor, minMajor, minMinor),
			Fix:     "upgrade VirtualBox from virtualbox.org"}
	}
	return driver.Health{Installed: true, Running: true, Healthy: true}
}

// file is one of this node's files in the profile's machine directory.
func (d *Driver) file(name string) string {
	return driver.NodeFile(d.opts.MachineDir, d.owner.Profile, d.machine, name)
}

func (d *Driver) dir() string        { return d.opts.MachineDir }
func (d *Driver) disk() string       { return d.file("disk.vdi") }
func (d *Driver) seedISO() string    { return d.file("seed.iso") }
func (d *Driver) consoleLog() string { return d.file("console.log") }

// mac is NIC 2's address (VirtualBox's 08:00:27 prefix), derived from the node's name so its DHCP
// lease stays put.
func (d *Driver) mac() string {
	h := sha256.Sum256([]byte("mkube/virtualbox/" + d.machine))
	return fmt.Sprintf("080027%02X%02X%02X", h[0], h[1], h[2])
}

// Create registers and boots the VM; steps already done by an interrupted create are skipped. A VM
// of the profile's name that is not this profile's is refused before anything is made.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) error {
	if spec.Image == "" {
		return errors.New("the virtualbox driver needs the ISO (mkube passes the cached one)")
	}
	info, unmarked, err := d.ownedInfo(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir(), 0o755); err != nil {
		return err
	}
	hostIf, err := d.hostOnlyNetwork(ctx)
	if err != nil {
		return err
	}
	raw, err := seed.ISO(seed.Data{Hostname: d.machine, AuthorizedKey: spec.SSHPublicKey})
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.seedISO(), raw, 0o644); err != nil {
		return err
	}
	// An unmarked VM of ours is one a create left right after createvm: the rest of register has
	// not run either.
	if info == nil || unmarked {
		if err := d.register(ctx, spec, hostIf, info != nil); err != nil {
			return err
		}
	}
	return d.Start(ctx)
}

// register creates the VM (unless exists says createvm already ran), its controller, disk and drives.
func (d *Driver) register(ctx context.Context, spec driver.Spec, hostIf string, exists bool) error {
	sshPort, err := freePort()
	if err != nil {
		return err
	}
	// Every value is one argv element of VBoxManage, run without a shell: a name or path can hold
	// any character without becoming another option or command.
	steps := [][]string{
		{"createvm", "--name", d.machine, "--ostype", "Linux_64", "--basefolder", d.dir(), "--register"},
		// The mark goes on first, so that whatever an interrupted create leaves is recognizably ours.
		{"setextradata", d.machine, ownerKey, d.owner.Tag()},
		{"modifyvm", d.machine,
			"--cpus", strconv.Itoa(spec.CPUs), "--memory", strconv.Itoa(spec.MemoryMB),
			"--paravirtprovider", "default", "--acpi", "on", "--ioapic", "on", "--rtcuseutc", "on",
			"--boot1", "dvd", "--boot2", "disk", "--boot3", "none", "--boot4", "none",
			"--nic1", "nat", "--nictype1", "virtio", "--natpf1", fmt.Sprintf("ssh,tcp,127.0.0.1,%d,,22", sshPort),
			"--nic2", "hostonly", "--hostonlyadapter2", hostIf, "--nictype2", "virtio", "--macaddress2", d.mac(),
			"--uart1", "0x3F8", "4", "--uartmode1", "file", d.consoleLog(),
			"--usb", "off"},
		{"storagectl", d.machine, "--name", storageCtl, "--add", "sata", "--controller", "IntelAhci", "--portcount", "3", "--hostiocache", "on"},
		{"storageattach", d.machine, "--storagectl", storageCtl, "--port", "0", "--device", "0", "--type", "dvddrive", "--medium", spec.Image},
		{"storageattach", d.machine, "--storagectl", storageCtl, "--port", "1", "--device", "0", "--type", "dvddrive", "--medium", d.seedISO()},
	}
	if exists {
		steps = steps[1:]
	}
	for _, args := range steps {
		if _, err := run(ctx, args...); err != nil {
			return err
		}
	}
	if _, err := os.Stat(d.disk()); errors.Is(err, os.ErrNotExist) {
		if _, err := run(ctx, "createmedium", "disk", "--filename", d.disk(), "--size", strconv.Itoa(spec.DiskMB), "--format", "VDI"); err != nil {
			return err
		}
	}
	_, err = run(ctx, "storageattach", d.machine, "--storagectl", storageCtl, "--port", "2", "--device", "0", "--type", "hdd", "--medium", d.disk())
	return err
}

// Start boots the VM headless unless it runs, and waits for its address.
func (d *Driver) Start(ctx context.Context) error {
	info, _, err := d.ownedInfo(ctx)
	if err != nil {
		return err
	}
	if info == nil {
		return fmt.Errorf("VirtualBox has no VM named %s", d.machine)
	}
	if info["VMState"] != "running" {
		if _, err := run(ctx, "startvm", d.machine, "--type", "headless"); err != nil {
			return startAdvice(err)
		}
	}
	_, err = d.waitIP(ctx)
	return err
}

// startAdvice explains the classic failure: VT-x taken by Hyper-V (Windows) or missing.
func startAdvice(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "VERR_VMX_NO_VMX") || strings.Contains(msg, "VT-x is not available"):
		return fmt.Errorf("VirtualBox cannot use VT-x: on Windows Hyper-V holds it (turn it off: bcdedit /set hypervisorlaunchtype off, then reboot) or enable virtualization in the firmware settings: %s", firstLine(msg))
	case strings.Contains(msg, "VERR_SVM_DISABLED") || strings.Contains(msg, "AMD-V is disabled"):
		return fmt.Errorf("AMD-V is disabled: enable virtualization (SVM) in the firmware settings: %s", firstLine(msg))
	}
	return err
}

// Stop presses the ACPI power button and powers off after stopTimeout.
func (d *Driver) Stop(ctx context.Context) error {
	info, _, err := d.ownedInfo(ctx)
	if err != nil || info == nil || info["VMState"] != "running" {
		return err
	}
	if _, err := run(ctx, "controlvm", d.machine, "acpipowerbutton"); err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, pollEvery, stopTimeout, true, func(ctx context.Context) (bool, error) {
		info, err := d.info(ctx)
		return err == nil && info != nil && info["VMState"] != "running" && info["VMState"] != "stopping", nil
	})
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	d.opts.Logf("the VM did not shut down within %s: powering it off", stopTimeout)
	_, err = run(ctx, "controlvm", d.machine, "poweroff")
	return err
}

// Delete powers the VM off and unregisters it with its disk; the seed goes with the machine directory.
func (d *Driver) Delete(ctx context.Context) error {
	info, _, err := d.ownedInfo(ctx)
	if err != nil || info == nil {
		return err
	}
	if st := info["VMState"]; st == "running" || st == "paused" || st == "stopping" {
		if _, err := run(ctx, "controlvm", d.machine, "poweroff"); err != nil {
			return err
		}
	}
	if _, err := run(ctx, "unregistervm", d.machine, "--delete"); err != nil {
		return err
	}
	// --delete takes the disk; the seed and the console log are this node's files in the
	// profile's machine directory, which the profile's other nodes share.
	for _, f := range []string{d.seedISO(), d.consoleLog()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// State maps VirtualBox's VMState to mkube's.
func (d *Driver) State(ctx context.Context) (driver.State, error) {
	info, _, err := d.ownedInfo(ctx)
	if err != nil {
		// Another's VM of this name is not this profile's machine in any state: saying
		// Nonexistent would invite `mkube start` to create over it.
		return driver.Error, err
	}
	if info == nil {
		return driver.Nonexistent, nil
	}
	switch info["VMState"] {
	case "running", "stopping":
		return driver.Running, nil
	case "starting", "restoring":
		return driver.Starting, nil
	case "paused":
		return driver.Paused, nil
	case "poweroff", "saved", "aborted":
		return driver.Stopped, nil
	default:
		return driver.Error, nil
	}
}

// Endpoint: SSH through the NAT forward on 127.0.0.1, the API server on the host-only address.
func (d *Driver) Endpoint(ctx context.Context) (driver.Endpoint, error) {
	info, _, err := d.ownedInfo(ctx)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if info == nil {
		return driver.Endpoint{}, fmt.Errorf("VirtualBox has no VM named %s", d.machine)
	}
	ip, err := d.ip(ctx, info)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if ip == "" {
		return driver.Endpoint{}, fmt.Errorf("the VM %s has no address on its host-only network yet", d.machine)
	}
	port := 0
	for k, v := range info {
		if strings.HasPrefix(k, "Forwarding(") && strings.HasPrefix(v, "ssh,") {
			f := strings.Split(v, ",")
			if len(f) == 6 {
				port, _ = strconv.Atoi(f[3])
			}
		}
	}
	if port == 0 {
		return driver.Endpoint{}, fmt.Errorf("the VM %s has no SSH port forward", d.machine)
	}
	return driver.Endpoint{IP: ip, SSHHost: "127.0.0.1", SSHPort: port, SSHUser: sshUser,
		APIServerHost: ip, APIServerPort: apiPort, NodeReachable: true}, nil
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
