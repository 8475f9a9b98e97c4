//go:build linux && cgo

package kvm2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	d := &Driver{profile: profile, opts: opts, owner: owner, uri: opts.Settings["kvm-qemu-uri"], accel: opts.Settings["kvm-accel"]}
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
	dom, err := c.LookupDomainByName(d.profile)
	if isNotFound(err, libvirt.ERR_NO_DOMAIN) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	x, err := dom.GetXMLDesc(0)
	if err == nil {
		err = checkDomainOwner(d.owner, d.profile, x)
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
	if err := ensureNetwork(c, DefaultNetwork, defaultNetworkXML()); err != nil {
		return err
	}
	if err := ensureNetwork(c, PrivateNetwork, networkXML()); err != nil {
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
	raw, err := seed.ISO(seed.Data{Hostname: d.profile, AuthorizedKey: spec.SSHPublicKey})
	if err != nil {
		return err
	}
	seedPath, err := uploadBytes(c, pool, seedVolume(d.profile, d.owner.HomeID), raw)
	if err != nil {
		return fmt.Errorf("writing the user-data seed: %w", err)
	}
	diskPath, err := ensureVolume(pool, diskVolume(d.profile, d.owner.HomeID), "qcow2", uint64(spec.DiskMB)<<20)
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
		if dom, err = d.define(c, domain{Name: d.profile, Type: typ, CPUs: spec.CPUs, MemoryMB: spec.MemoryMB,
			ISO: isoPath, Seed: seedPath, Disk: diskPath, MACs: macs(d.profile), ConsoleLog: d.consoleLog(), Owner: d.owner.Tag()}); err != nil {
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
func (d *Driver) consoleLog() string { return "/var/log/libvirt/qemu/" + d.profile + "-console.log" }

// boot starts the domain unless it runs, falling back from kvm to software emulation when the host
// has /dev/kvm but cannot run guests with it, and waits for the node's address.
func (d *Driver) boot(ctx context.Context, c *libvirt.Connect, dom *libvirt.Domain) error {
	fellBack := false
	if active, err := dom.IsActive(); err != nil || !active {
		if err := dom.Create(); err != nil {
			if d.accel != "auto" || !strings.Contains(err.Error(), "kvm") {
				return fmt.Errorf("starting the VM: %w (its console: %s)", err, d.consoleLog())
			}
			d.opts.Logf("hardware acceleration failed (%v): falling back to software emulation, which is several times slower", firstLine(err))
			if dom, err = d.redefineAs(c, dom, "qemu"); err != nil {
				return err
			}
			defer dom.Free()
			fellBack = true
			if err := dom.Create(); err != nil {
				return fmt.Errorf("starting the VM: %w (its console: %s)", err, d.consoleLog())
			}
		}
	}
	if typ, _ := domainType(dom); typ == "qemu" && d.accel != "tcg" && !fellBack {
		d.opts.Logf("the VM runs under software emulation (no usable /dev/kvm): expect a slow start")
	}
	_, err := d.waitIP(ctx, c)
	return err
}

func (d *Driver) redefineAs(c *libvirt.Connect, dom *libvirt.Domain, typ string) (*libvirt.Domain, error) {
	x, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		return nil, err
	}
	x = strings.Replace(x, "<domain type='kvm'", "<domain type='"+typ+"'", 1)
	x = strings.Replace(x, "<cpu mode='host-passthrough' check='none' migratable='on'/>", "", 1)
	x = strings.Replace(x, "<cpu mode='host-passthrough'/>", "", 1)
	return c.DomainDefineXML(x)
}

func domainType(dom *libvirt.Domain) (string, error) {
	x, err := dom.GetXMLDesc(0)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(x, "<domain type='qemu'") {
		return "qemu", nil
	}
	return "kvm", nil
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
		return fmt.Errorf("libvirt has no domain named %s", d.profile)
	}
	defer dom.Free()
	for _, n := range []struct{ name, xml string }{{DefaultNetwork, defaultNetworkXML()}, {PrivateNetwork, networkXML()}} {
		if err := ensureNetwork(c, n.name, n.xml); err != nil {
			return err
		}
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
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		if active, err := dom.IsActive(); err == nil && !active {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
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
	pool, err := c.LookupStoragePoolByName(Pool)
	switch {
	case err == nil:
		defer pool.Free()
		pool.Refresh(0)
		for _, name := range []string{diskVolume(d.profile, d.owner.HomeID), seedVolume(d.profile, d.owner.HomeID)} {
			if err := deleteVolume(pool, name); err != nil {
				return err
			}
		}
	case isNotFound(err, libvirt.ERR_NO_STORAGE_POOL):
		pool = nil
	default:
		return err
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

// sharedInUse says whether any domain on the host uses mkube's network or pool.
func sharedInUse(c *libvirt.Connect) (network, pool bool, err error) {
	doms, err := c.ListAllDomains(0)
	if err != nil {
		return false, false, err
	}
	for _, dom := range doms {
		n, p := true, true // a domain whose XML cannot be read may use them: keep them
		if x, err := dom.GetXMLDesc(0); err == nil {
			if un, up, err := sharedUse(x); err == nil {
				n, p = un, up
			}
		}
		dom.Free()
		network, pool = network || n, pool || p
	}
	return network, pool, nil
}

// removeNetwork removes mkube's private network if mkube defined it (it carries mkube's mark); a
// network of that name someone else made stays. Best effort: a network left behind is harmless.
func removeNetwork(c *libvirt.Connect) {
	net, err := c.LookupNetworkByName(PrivateNetwork)
	if err != nil {
		return
	}
	defer net.Free()
	if x, err := net.GetXMLDesc(libvirt.NETWORK_XML_INACTIVE); err != nil || !networkCreatedByMkube(x) {
		return
	}
	if active, _ := net.IsActive(); active {
		net.Destroy()
	}
	net.Undefine()
}

// removePool deletes the ISO volumes and then the pool, if it is mkube's (at mkube's path) and
// nothing else is left in it: a storage pool keeps no metadata to mark it, and other homes' disks
// may still be there. Best effort, as removeNetwork.
func removePool(pool *libvirt.StoragePool) {
	if x, err := pool.GetXMLDesc(libvirt.STORAGE_XML_INACTIVE); err != nil || poolPath(x) != PoolPath {
		return
	}
	vols, err := pool.ListAllStorageVolumes(0)
	if err != nil {
		return
	}
	left := 0
	for _, v := range vols {
		if name, err := v.GetName(); err == nil && isISOVolume(name) && v.Delete(0) == nil {
			v.Free()
			continue
		}
		left++
		v.Free()
	}
	if left > 0 {
		return
	}
	pool.Destroy()
	pool.Delete(0)
	pool.Undefine()
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
		return driver.Endpoint{}, fmt.Errorf("libvirt has no domain named %s", d.profile)
	}
	dom.Free()
	ip, err := d.leaseIP(c)
	if err != nil {
		return driver.Endpoint{}, err
	}
	if ip == "" {
		return driver.Endpoint{}, fmt.Errorf("the VM %s has no address on %s yet", d.profile, PrivateNetwork)
	}
	return driver.Endpoint{IP: ip, SSHHost: ip, SSHPort: 22, SSHUser: SSHUser, APIServerHost: ip, APIServerPort: APIServerPort, NodeReachable: true}, nil
}

func (d *Driver) leaseIP(c *libvirt.Connect) (string, error) {
	net, err := c.LookupNetworkByName(PrivateNetwork)
	if err != nil {
		return "", err
	}
	defer net.Free()
	leases, err := net.GetDHCPLeases()
	if err != nil {
		return "", err
	}
	mac := macs(d.profile)[1]
	ip, newest := "", time.Time{}
	for _, l := range leases {
		if strings.EqualFold(l.Mac, mac) && l.Type == libvirt.IP_ADDR_TYPE_IPV4 && !l.ExpiryTime.Before(newest) {
			ip, newest = l.IPaddr, l.ExpiryTime
		}
	}
	return ip, nil
}

// waitIP waits for the guest's DHCP lease: the guest boots, then networkd asks.
func (d *Driver) waitIP(ctx context.Context, c *libvirt.Connect) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		if ip, err := d.leaseIP(c); err == nil && ip != "" {
			return ip, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the VM got no address on %s in 5 minutes; its console log is %s", PrivateNetwork, d.consoleLog())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Runner runs commands over SSH, retrying while the guest's SSH server comes up.
func (d *Driver) Runner(ctx context.Context) (driver.Runner, error) {
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return nil, err
	}
	return ssh.Dial(ctx, ep, filepath.Join(d.opts.MachineDir, "id_ed25519"))
}

// ensureNetwork defines and starts a network unless it runs. A network of that name that mkube
// did not define is used as it is (attaching a guest changes nothing of it); Delete leaves it.
func ensureNetwork(c *libvirt.Connect, name, xml string) error {
	net, err := c.LookupNetworkByName(name)
	if isNotFound(err, libvirt.ERR_NO_NETWORK) {
		net, err = c.NetworkDefineXML(xml)
	}
	if err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	defer net.Free()
	if active, err := net.IsActive(); err == nil && active {
		return nil
	}
	if err := net.Create(); err != nil {
		return fmt.Errorf("starting network %s: %w", name, err)
	}
	return net.SetAutostart(true)
}

func ensurePool(c *libvirt.Connect) (*libvirt.StoragePool, error) {
	pool, err := c.LookupStoragePoolByName(Pool)
	if isNotFound(err, libvirt.ERR_NO_STORAGE_POOL) {
		if pool, err = c.StoragePoolDefineXML(poolXML(), 0); err == nil {
			err = pool.Build(0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", Pool, err)
	}
	if active, _ := pool.IsActive(); !active {
		if err := pool.Create(0); err != nil {
			pool.Free()
			return nil, fmt.Errorf("starting storage pool %s: %w", Pool, err)
		}
	}
	pool.Refresh(0)
	return pool, nil
}

func ensureVolume(pool *libvirt.StoragePool, name, format string, capacity uint64) (string, error) {
	v, err := pool.LookupStorageVolByName(name)
	if isNotFound(err, libvirt.ERR_NO_STORAGE_VOL) {
		v, err = pool.StorageVolCreateXML(volumeXML(name, format, capacity), 0)
	}
	if err != nil {
		return "", err
	}
	defer v.Free()
	return v.GetPath()
}

func deleteVolume(pool *libvirt.StoragePool, name string) error {
	v, err := pool.LookupStorageVolByName(name)
	if isNotFound(err, libvirt.ERR_NO_STORAGE_VOL) {
		return nil
	}
	if err != nil {
		return err
	}
	defer v.Free()
	return v.Delete(0)
}

// uploadFile copies a host file into a raw volume, unless a complete volume of that name is there
// already (names carry the content's digest).
func uploadFile(c *libvirt.Connect, pool *libvirt.StoragePool, name, src string) (string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	// libvirt cannot rename a volume, and a volume has its full capacity from the moment it is
	// created: an upload cut short (Ctrl-C, a crash) would look complete. A small marker volume,
	// made only after the upload finished, says it is; without it the volume is uploaded again.
	done := completeMarker(name)
	if v, err := pool.LookupStorageVolByName(name); err == nil {
		info, ierr := v.GetInfo()
		path, perr := v.GetPath()
		m, merr := pool.LookupStorageVolByName(done)
		if merr == nil {
			m.Free()
		}
		if ierr == nil && perr == nil && merr == nil && info.Capacity == uint64(st.Size()) {
			v.Free()
			return path, nil
		}
		v.Delete(0)
		v.Free()
	}
	if err := deleteVolume(pool, done); err != nil {
		return "", err
	}
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	path, err := upload(c, pool, name, uint64(st.Size()), func(b []byte) (int, error) { return f.Read(b) })
	if err != nil {
		return "", err
	}
	if _, err := uploadBytes(c, pool, done, []byte("complete\n")); err != nil {
		return "", err
	}
	return path, nil
}

func uploadBytes(c *libvirt.Connect, pool *libvirt.StoragePool, name string, data []byte) (string, error) {
	if err := deleteVolume(pool, name); err != nil {
		return "", err
	}
	off := 0
	return upload(c, pool, name, uint64(len(data)), func(b []byte) (int, error) {
		n := copy(b, data[off:])
		off += n
		return n, nil
	})
}

func upload(c *libvirt.Connect, pool *libvirt.StoragePool, name string, size uint64, read func([]byte) (int, error)) (string, error) {
	v, err := pool.StorageVolCreateXML(volumeXML(name, "raw", size), 0)
	if err != nil {
		return "", err
	}
	defer v.Free()
	stream, err := c.NewStream(0)
	if err != nil {
		return "", err
	}
	defer stream.Free()
	if err := v.Upload(stream, 0, size, 0); err != nil {
		return "", err
	}
	if err := stream.SendAll(func(_ *libvirt.Stream, n int) ([]byte, error) {
		buf := make([]byte, n)
		got, err := read(buf)
		if err != nil && got == 0 {
			return nil, nil // end of input
		}
		return buf[:got], nil
	}); err != nil {
		stream.Abort()
		return "", err
	}
	if err := stream.Finish(); err != nil {
		return "", err
	}
	return v.GetPath()
}

func firstLine(err error) string { return strings.SplitN(err.Error(), "\n", 2)[0] }
