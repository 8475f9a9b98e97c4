//go:build linux && cgo

package kvm2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"libvirt.org/go/libvirt"

	"mkube/pkg/cache"
	"mkube/pkg/driver"
	"mkube/pkg/driver/seed"
	"mkube/pkg/ssh"
)

const supported = true

// Driver is one profile's virtual machine.
type Driver struct {
	profile string
	machine string // the node: the profile's name for the primary, <profile>-mNN for the others
	opts    driver.Options
	owner   driver.Owner
	uri     string
	accel   string // auto, kvm or tcg
}

// New makes the driver for a profile, with its Settings (kvm-qemu-uri, kvm-accel).
func New(profile string, opts driver.Options) (driver.Driver, error) {
	owner, err := opts.Owner.ForProfile(profile)
	if err != nil {
		return nil, err
	}
	d := &Driver{profile: profile, machine: cmp.Or(opts.Machine, profile), opts: opts, owner: owner, uri: opts.Settings["kvm-qemu-uri"], accel: opts.Settings["kvm-accel"]}
	if d.uri == "" {
		d.uri = DefaultURI
	}
	switch d.accel {
	case "":
		d.accel = "auto"
	case "auto", "kvm", "tcg":
	default:
		return nil, fmt.Errorf("--kvm-accel must be auto, kvm or tcg, not %q", d.accel)
	}
	return d, nil
}

func (d *Driver) Name() string { return Name }

// Close does nothing: every method opens and closes its own libvirt connection.
func (d *Driver) Close() error { return nil }

// connect opens the libvirt connection; every method opens its own, so none outlives a command.
func (d *Driver) connect() (*libvirt.Connect, error) {
	c, err := libvirt.NewConnect(d.uri)
	if err != nil {
		return nil, fmt.Errorf("connecting to libvirt at %s: %w", d.uri, err)
	}
	return c, nil
}

func isNotFound(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == code
}

// ownedDomain looks the profile's domain up: nil (and no error) when there is none, a
// *driver.NotOwnedError when one of that name exists without this profile's mark. Every method
// that touches the domain goes through here first, so a domain mkube did not create for this
// profile (the user's own "postgres", another home's "minikube") is never started, stopped,
// redefined or undefined.
func (d *Driver) ownedDomain(c *libvirt.Connect) (*libvirt.Domain, error) {
	dom, err := c.LookupDomainByName(d.machine)
	if isNotFound(err, libvirt.ERR_NO_DOMAIN) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	x, err := dom.GetXMLDesc(0)
	if err == nil {
		err = checkDomainOwner(d.owner, d.machine, x)
	}
	if err != nil {
		dom.Free()
		return nil, err
	}
	return dom, nil
}

// Create makes the networks, pool, volumes and domain that do not exist yet, and boots it. A
// domain of the profile's name that is not this profile's is refused before anything is made.
func (d *Driver) Create(ctx context.Context, spec driver.Spec) error {
	c, err := d.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	dom, err := d.ownedDomain(c)
	if err != nil {
		return err
	}
	if dom != nil {
		defer dom.Free()
	}
	if err := ensureNetworks(c); err != nil {
		return err
	}
	pool, err := ensurePool(c)
	if err != nil {
		return err
	}
	defer pool.Free()
	if spec.Image == "" {
		return errors.New("the kvm2 driver needs the ISO (mkube passes the cached one)")
	}
	sha, err := cache.Digest(spec.Image) // the record the cache wrote when it verified the ISO
	if err != nil {
		return err
	}
	isoPath, err := uploadFile(c, pool, isoVolume(filepath.Base(spec.Image), sha), spec.Image)
	if err != nil {
		return fmt.Errorf("copying the ISO into libvirt's pool: %w", err)
	}
	raw, err := seed.ISO(seed.Data{Hostname: d.machine, AuthorizedKey: spec.SSHPublicKey})
	if err != nil {
		return err
	}
	seedPath, err := uploadBytes(c, pool, seedVolume(d.machine, d.owner.HomeID), raw)
	if err != nil {
		return fmt.Errorf("writing the user-data seed: %w", err)
	}
	diskPath, err := ensureVolume(pool, diskVolume(d.machine, d.owner.HomeID), "qcow2", uint64(spec.DiskMB)<<20)
	if err != nil {
		return fmt.Errorf("creating the data disk: %w", err)
	}
	if dom == nil {
		typ := "qemu"
		if d.accel == "kvm" || (d.accel == "auto" && KVMUsable()) {
			typ = "kvm"
		}
		// The mark is in the definition itself: there is no moment when the domain exists unmarked.
		// Should a domain of this name appear since the check above, libvirt refuses the definition
		// (its UUID differs from the one ours would get) rather than replacing it.
		if dom, err = d.define(c, domain{Name: d.machine, Type: typ, CPUs: spec.CPUs, MemoryMB: spec.MemoryMB,
			ISO: isoPath, Seed: seedPath, Disk: diskPath, MACs: macs(d.machine), ConsoleLog: d.consoleLog(), Owner: d.owner.Tag()}); err != nil {
			return err
		}
		defer dom.Free()
	}
	return d.boot(ctx, c, dom)
}

func (d *Driver) define(c *libvirt.Connect, dm domain) (*libvirt.Domain, error) {
	x, err := domainXML(dm)
	if err != nil {
		return nil, err
	}
	dom, err := c.DomainDefineXML(x)
	if err != nil {
		return nil, fmt.Errorf("defining the domain: %w", err)
	}
	return dom, nil
}

// consoleLog is where libvirt keeps the guest's serial console: boot problems are read there.
func (d *Driver) consoleLog() string { return "/var/log/libvirt/qemu/" + d.machine + "-console.log" }

// boot starts the domain unless it runs, falling back from kvm to software emulation once when the
// host has /dev/kvm but cannot run guests with it, and waits for the node's address. That shows in
// many ways: the start fails, QEMU pauses the guest ("KVM internal error … emulation failure"), the
// guest crashes or shuts off, or it never gets an address (kvmBootWindow).
func (d *Driver) boot(ctx context.Context, c *libvirt.Connect, dom *libvirt.Domain) error {
	fellBack := false
	var redefined *libvirt.Domain // the caller frees dom, boot the domain it redefines
	defer func() {
		if redefined != nil {
			redefined.Free()
		}
	}()
	fallBack := func(why string) error {
		d.opts.Logf("hardware acceleration failed (%s): falling back to software emulation, which is several times slower", why)
		if active, _ := dom.IsActive(); active {
			dom.Destroy() // paused or stuck: it is started again under emulation
		}
		var err error
		if redefined, err = redefineTCG(c, dom); err != nil {
			return err
		}
		dom, fellBack = redefined, true
		if err := dom.Create(); err != nil {
			return fmt.Errorf("starting the VM: %w (its console: %s)", err, d.consoleLog())
		}
		return nil
	}
	started := false
	if active, err := dom.IsActive(); err != nil || !active {
		if err := dom.Create(); err != nil {
			if d.accel != "auto" || !strings.Contains(err.Error(), "kvm") {
				return fmt.Errorf("starting the VM: %w (its console: %s)", err, d.consoleLog())
			}
			if err := fallBack(firstLine(err)); err != nil {
				return err
			}
		}
		started = true
	}
	typ, _ := domainType(dom)
	if typ == "qemu" && d.accel != "tcg" && !fellBack {
		d.opts.Logf("the VM runs under software emulation (no usable /dev/kvm): expect a slow start")
	}
	if started && typ == "kvm" && d.accel == "auto" {
		_, err := waitBoot(ctx, 500*time.Millisecond, kvmBootWindow, func() (string, error) { return d.leaseIP(c) }, domainFailed(dom))
		var g *guestFailure
		switch {
		case err == nil:
			return nil
		case errors.As(err, &g):
			err = fallBack(g.Error())
		case errors.Is(err, errNoAddress):
			err = fallBack(fmt.Sprintf("no address after %s", kvmBootWindow))
		}
		if err != nil {
			return err
		}
	}
	_, err := d.waitIP(ctx, c)
	return err
}

// redefineTCG redefines the (inactive) domain from its own definition as libvirt keeps it, under
// software emulation: the same machine, mark included.
func redefineTCG(c *libvirt.Connect, dom *libvirt.Domain) (*libvirt.Domain, error) {
	x, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		return nil, err
	}
	if x, err = tcgDomainXML(x); err != nil {
		return nil, err
	}
	return c.DomainDefineXML(x)
}

func domainType(dom *libvirt.Domain) (string, error) {
	x, err := dom.GetXMLDesc(0)
	if err != nil {
		return "", err
	}
	return domainTypeOf(x)
}

// Start boots a stopped machine.
func (d *Driver) Start(ctx context.Context) error {
	c, err := d.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	dom, err := d.ownedDomain(c)
	if err != nil {
		return err
	}
	if dom == nil {
		return fmt.Errorf("libvirt has no domain named %s", d.machine)
	}
	defer dom.Free()
	if err := ensureNetworks(c); err != nil {
		return err
	}
	return d.boot(ctx, c, dom)
}

// stopTimeout is how long a guest gets to shut down on ACPI power-off before it is cut.
const stopTimeout = 2 * time.Minute

// Stop shuts the guest down gracefully (ACPI), and forcibly after stopTimeout.
func (d *Driver) Stop(ctx context.Context) error {
	c, err := d.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	dom, err := d.ownedDomain(c)
	if err != nil || dom == nil {
		return err
	}
	defer dom.Free()
	if active, _ := dom.IsActive(); !active {
		return nil
	}
	if err := dom.Shutdown(); err != nil {
		return dom.Destroy()
	}
	// A failed IsActive is not an answer: keep asking until the timeout.
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, stopTimeout, true, func(context.Context) (bool, error) {
		active, err := dom.IsActive()
		return err == nil && !active, nil
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the caller gave up (Ctrl-C), not the guest: leave it shutting down
	}
	d.opts.Logf("the VM did not shut down within %s: powering it off", stopTimeout)
	return dom.Destroy()
}

// Delete removes the domain and this profile's volumes. The shared objects (mkube's network,
// the ISO volumes and the pool) go when no domain left on the host uses them, whichever home or
// application it belongs to, and only when mkube made them.
func (d *Driver) Delete(ctx context.Context) error {
	c, err := d.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	pool, err := c.LookupStoragePoolByName(Pool)
	switch {
	case err == nil:
		defer pool.Free()
		pool.Refresh(0)
	case isNotFound(err, libvirt.ERR_NO_STORAGE_POOL):
		pool = nil
	default:
		return err
	}
	if err := d.deleteMachine(c, pool); err != nil {
		return err
	}
	if d.machine == d.owner.Profile {
		// The primary's delete is the profile's: its other nodes go too, also those a lost
		// profile record no longer names.
		if err := d.deleteOtherNodes(c, pool); err != nil {
			return err
		}
	}
	netUsed, poolUsed, err := sharedInUse(c)
	if err != nil {
		return err
	}
	if !netUsed {
		removeNetwork(c)
	}
	if !poolUsed && pool != nil {
		removePool(pool)
	}
	return nil
}

// deleteMachine removes this node's domain and volumes (pool nil: there are none).
func (d *Driver) deleteMachine(c *libvirt.Connect, pool *libvirt.StoragePool) error {
	dom, err := d.ownedDomain(c)
	if err != nil {
		return err // a foreign domain: its volumes are not ours to judge either, so touch nothing
	}
	if dom != nil {
		if active, _ := dom.IsActive(); active {
			if err := dom.Destroy(); err != nil {
				dom.Free()
				return err
			}
		}
		err = dom.Undefine()
		dom.Free()
		if err != nil {
			return err
		}
	}
	if pool == nil {
		return nil
	}
	for _, name := range []string{diskVolume(d.machine, d.owner.HomeID), seedVolume(d.machine, d.owner.HomeID)} {
		if err := deleteVolume(pool, name); err != nil {
			return err
		}
	}
	return nil
}

// deleteOtherNodes removes the profile's other nodes (<profile>-mNN) that carry its mark, and
// their volumes, which carry this home's ID in their names; another's domain of such a name stays.
func (d *Driver) deleteOtherNodes(c *libvirt.Connect, pool *libvirt.StoragePool) error {
	names := map[string]bool{}
	doms, err := c.ListAllDomains(0)
	if err != nil {
		return err
	}
	for _, dom := range doms {
		if name, err := dom.GetName(); err == nil && isOtherNode(d.owner.Profile, name) {
			names[name] = true
		}
		dom.Free()
	}
	if pool != nil {
		vols, err := pool.ListAllStorageVolumes(0)
		if err != nil {
			return err
		}
		for _, v := range vols {
			if name, err := v.GetName(); err == nil {
				if m, ok := volumeMachine(name, d.owner.HomeID); ok && isOtherNode(d.owner.Profile, m) {
					names[m] = true
				}
			}
			v.Free()
		}
	}
	for name := range names {
		o := *d
		o.machine = name
		if err := o.deleteMachine(c, pool); err != nil && !errors.Is(err, driver.ErrNotOwned) {
			return err
		}
	}
	return nil
}

// State maps libvirt's domain state to mkube's.
func (d *Driver) State(ctx context.Context) (driver.State, error) {
	c, err := d.connect()
	if err != nil {
		return driver.Error, err
	}
	defer c.Close()
	dom, err := d.ownedDomain(c)
	if err != nil {
		// Another's domain of this name is not this profile's machine in any state: saying
		// Nonexistent would invite `mkube start` to create over it.
		return driver.Error, err
	}
	if dom == nil {
		return driver.Nonexistent, nil
	}
	defer dom.Free()
	st, _, err := dom.GetState()
	if err != nil {
		return driver.Error, err
	}
	switch st {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED:
		return driver.Running, nil
	case libvirt.DOMAIN_PAUSED, libvirt.DOMAIN_PMSUSPENDED:
		return driver.Paused, nil
	case libvirt.DOMAIN_SHUTOFF, libvirt.DOMAIN_SHUTDOWN, libvirt.DOMAIN_CRASHED:
		return driver.Stopped, nil
	default:
		return driver.Error, nil
	}
}

// Endpoint is the node's address on mkube's private network; SSH and the API server answer there.
func (d *Driver) Endpoint(ctx context.Context) (driver.Endpoint, error) {
	c, err := d.connect()
	if err != nil {
		return driver.Endpoint{}, err
	}
	defer c.Close()
	dom, err := d.ownedDomain(c)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if dom == nil {
		return driver.Endpoint{}, fmt.Errorf("libvirt has no domain named %s", d.machine)
	}
	dom.Free()
	ip, err := d.leaseIP(c)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if ip == "" {
		return driver.Endpoint{}, fmt.Errorf("the VM %s has no address on %s yet", d.machine, PrivateNetwork)
	}
	return driver.Endpoint{IP: ip, SSHHost: ip, SSHPort: 22, SSHUser: SSHUser, APIServerHost: ip, APIServerPort: APIServerPort, NodeReachable: true}, nil
}

// Runner runs commands over SSH, retrying while the guest's SSH server comes up.
func (d *Driver) Runner(ctx context.Context) (driver.Runner, error) {
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return nil, err
	}
	return ssh.DialNode(ctx, ep, d.opts.MachineDir, d.profile, d.machine)
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }
