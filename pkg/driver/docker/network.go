package docker

// The profile's network and volume.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

func (d *Driver) ensureVolume(ctx context.Context) error {
	v, err := d.cli.VolumeInspect(ctx, d.volume(), client.VolumeInspectOptions{})
	if err == nil {
		if !d.owner.OwnsLabels(v.Volume.Labels) {
			return d.notOurs(d.eng.Title+" volume", d.volume(), v.Volume.Labels)
		}
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return err
	}
	_, err = d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: d.volume(), Labels: d.labels()})
	return err
}

// ensureNetwork creates the profile's network on a free private /24 and returns the node's
// address in it (.2), or finds the existing one.
func (d *Driver) ensureNetwork(ctx context.Context) (*net.IPNet, error) {
	existing, err := d.cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, err
	}
	var taken []*net.IPNet
	for _, n := range existing.Items {
		if n.Name == d.network() && !d.owner.OwnsLabels(n.Labels) {
			return nil, d.notOurs(d.eng.Title+" network", n.Name, n.Labels)
		}
		for _, c := range n.IPAM.Config {
			if !c.Subnet.IsValid() {
				continue
			}
			if _, sn, err := net.ParseCIDR(c.Subnet.String()); err == nil {
				if n.Name == d.network() {
					return sn, nil
				}
				taken = append(taken, sn)
			}
		}
	}
	taken = append(taken, hostSubnets()...)
	taken = append(taken, d.peerSubnets(ctx)...)
	for _, sn := range candidateSubnets() {
		if overlaps(sn, taken) {
			continue
		}
		subnet, err := netip.ParsePrefix(sn.String())
		if err != nil {
			return nil, err
		}
		gw, err := netip.ParseAddr(gateway(sn))
		if err != nil {
			return nil, err
		}
		_, err = d.cli.NetworkCreate(ctx, d.network(), client.NetworkCreateOptions{
			Driver: "bridge",
			Labels: d.labels(),
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gw}}},
			Options: map[string]string{
				"com.docker.network.driver.mtu": "1500",
			},
		})
		if err != nil {
			// Another process may have taken it in the meantime: try the next one. Docker says the
			// pool overlaps, Podman (netavark) that the subnet is already used.
			if subnetTaken(err) {
				continue
			}
			return nil, fmt.Errorf("creating %s network %s: %w", d.eng.Title, d.network(), err)
		}
		return sn, nil
	}
	return nil, fmt.Errorf("no free private subnet for the %s network %s", d.eng.Title, d.network())
}

func subnetTaken(err error) bool {
	return strings.Contains(err.Error(), "overlap") || strings.Contains(err.Error(), "already used")
}

// peerSubnets are the subnets of the networks the engine's peers hold (Docker's, for a Podman
// profile, and Podman's for a Docker one), so two engines on one host never route the same
// subnet. A peer that is absent, down or not ours to use holds nothing we could see: it is
// skipped, each within a few seconds. (Asked only when a profile's network is created; a
// socket-activated Podman starts its service for that question and stops again when idle.)
func (d *Driver) peerSubnets(ctx context.Context) []*net.IPNet {
	if d.eng.Peers == nil {
		return nil
	}
	var out []*net.IPNet
	for _, peer := range d.eng.Peers() {
		out = append(out, engineSubnets(ctx, peer)...)
	}
	return out
}

func engineSubnets(parent context.Context, eng Engine) []*net.IPNet {
	cli, err := eng.Connect()
	if err != nil {
		return nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(parent, 3*time.Second)
	defer cancel()
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil
	}
	var out []*net.IPNet
	for _, n := range ns.Items {
		for _, c := range n.IPAM.Config {
			if _, sn, err := net.ParseCIDR(c.Subnet.String()); c.Subnet.IsValid() && err == nil {
				out = append(out, sn)
			}
		}
	}
	return out
}

// candidateSubnets are 192.168.49.0/24, 192.168.58.0/24, … (minikube's sequence).
func candidateSubnets() []*net.IPNet {
	var out []*net.IPNet
	for third := 49; third <= 254; third += 9 {
		_, sn, _ := net.ParseCIDR(fmt.Sprintf("192.168.%d.0/24", third))
		out = append(out, sn)
	}
	return out
}

// hostSubnets are the networks of this host's own interfaces, read locally.
func hostSubnets() []*net.IPNet {
	addrs, _ := net.InterfaceAddrs()
	var out []*net.IPNet
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			out = append(out, n)
		}
	}
	return out
}

func overlaps(sn *net.IPNet, taken []*net.IPNet) bool {
	for _, t := range taken {
		if t.Contains(sn.IP) || sn.Contains(t.IP) {
			return true
		}
	}
	return false
}

func gateway(sn *net.IPNet) string { return offset(sn, 1) }

// nodeIP is the address of the ordinal-th node (1-based; 0 is the primary too): .2, .3, ….
func nodeIP(sn *net.IPNet, ordinal int) string { return offset(sn, byte(1+max(ordinal, 1))) }

func offset(sn *net.IPNet, n byte) string {
	ip := sn.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+n).String()
}

// bridgeReachable tells whether the host routes to containers' addresses: only when the engine
// runs on this Linux host. Docker Desktop (macOS, Windows) and remote engines keep them in a VM
// or on another machine, where only published ports reach them.
func (d *Driver) bridgeReachable() bool {
	return runtime.GOOS == "linux" && strings.HasPrefix(d.cli.DaemonHost(), "unix://")
}
