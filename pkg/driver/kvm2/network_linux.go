//go:build linux && cgo

package kvm2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// ensureNetworks makes sure libvirt's default network (the guest's way out) and mkube's private
// one (the node's address) run.
func ensureNetworks(c *libvirt.Connect) error {
	if err := ensureNetwork(c, DefaultNetwork, defaultNetworkXML); err != nil {
		return err
	}
	return ensureNetwork(c, PrivateNetwork, networkXML)
}

// ensureNetwork defines and starts a network unless it runs. A network of that name that mkube
// did not define is used as it is (attaching a guest changes nothing of it); Delete leaves it.
func ensureNetwork(c *libvirt.Connect, name string, describe func() (string, error)) error {
	net, err := c.LookupNetworkByName(name)
	if isNotFound(err, libvirt.ERR_NO_NETWORK) {
		var x string
		if x, err = describe(); err == nil {
			net, err = c.NetworkDefineXML(x)
		}
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
	mac := macs(d.machine)[1]
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
	ip, err := waitBoot(ctx, 500*time.Millisecond, 5*time.Minute, func() (string, error) { return d.leaseIP(c) }, nil)
	if errors.Is(err, errNoAddress) {
		return "", fmt.Errorf("the VM got no address on %s in 5 minutes; its console log is %s", PrivateNetwork, d.consoleLog())
	}
	return ip, err
}
