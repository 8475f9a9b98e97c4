package kubeadm

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"mkube/pkg/driver"
	"mkube/pkg/node"
)

// CNIConfig is the node's CNI configuration: a bridge on subnet, addresses from host-local, and
// masquerading by the bridge plugin (one node) or none of its own (more nodes: Masquerade covers
// the whole pod network once). forceAddress: a bridge that still has an older range's address
// takes the new one.
func CNIConfig(subnet string, ipMasq bool) []byte {
	return []byte(fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "mkube",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": %t, "forceAddress": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, ipMasq, subnet))
}

// WriteCNIConfig writes the node's CNI configuration when it differs from what the node has.
func WriteCNIConfig(ctx context.Context, r driver.Runner, subnet string, ipMasq bool) error {
	want := CNIConfig(subnet, ipMasq)
	if have, err := node.Output(ctx, r, "cat", cniConf); err == nil && have == string(want) {
		return nil
	}
	return node.WriteBytes(ctx, r, cniConf, 0o644, want)
}

// masqComment marks mkube's masquerade rule in the node's nat table.
const masqComment = "mkube: pods leaving the pod network"

// Masquerade makes pod traffic to anything outside the cluster's pod network leave with the
// node's address (the host and the outside world have no route back to pod addresses).
func Masquerade(ctx context.Context, r driver.Runner, podCIDR string) error {
	if _, _, err := net.ParseCIDR(podCIDR); err != nil {
		return fmt.Errorf("pod CIDR %q: %w", podCIDR, err)
	}
	rule := fmt.Sprintf("POSTROUTING -s %s ! -d %s -m comment --comment '%s' -j MASQUERADE", podCIDR, podCIDR, masqComment)
	_, err := node.Shell(ctx, r, "iptables -w -t nat -C "+rule+" 2>/dev/null || iptables -w -t nat -A "+rule)
	return err
}

// DropStrayServiceTraffic drops packets to the cluster's service network that no Service port
// claimed: kube-proxy translates those it serves on their way in (nat PREROUTING and OUTPUT), so
// what is still addressed there at POSTROUTING (a port the Service no longer has, an unassigned
// address) would otherwise leave through the node's default route to the host and whatever
// answers beyond it. The mangle table's POSTROUTING runs after those translations and after the
// filter chains kube-proxy and kube-router keep first in line. Like the masquerade rule it lives in
// the node's network namespace, so every start sets it.
func DropStrayServiceTraffic(ctx context.Context, r driver.Runner, serviceCIDR string) error {
	if _, _, err := net.ParseCIDR(serviceCIDR); err != nil {
		return fmt.Errorf("service CIDR %q: %w", serviceCIDR, err)
	}
	rule := fmt.Sprintf("POSTROUTING -d %s -m comment --comment '%s' -j DROP", serviceCIDR, serviceComment)
	_, err := node.Shell(ctx, r, "iptables -w -t mangle -C "+rule+" 2>/dev/null || iptables -w -t mangle -A "+rule)
	return err
}

const serviceComment = "mkube: no Service port claimed this"

// FirstNodeCIDR is the pod range the controller manager gives the first node to register: the
// first /24 of the cluster's pod network (kube-controller-manager's --node-cidr-mask-size).
func FirstNodeCIDR(podCIDR string) (string, error) {
	ip, n, err := net.ParseCIDR(podCIDR)
	if err != nil || ip.To4() == nil {
		return "", fmt.Errorf("pod CIDR %q is not an IPv4 network", podCIDR)
	}
	if ones, _ := n.Mask.Size(); ones > 24 {
		return "", fmt.Errorf("pod CIDR %q is smaller than one node's /24", podCIDR)
	}
	return (&net.IPNet{IP: n.IP.To4(), Mask: net.CIDRMask(24, 32)}).String(), nil
}

// Route is another node's pod range and the node address it is reached through.
type Route struct{ PodCIDR, Via string }

// SetRoutes points each other node's pod range at that node (all nodes share one network), and
// removes routes to pod ranges of nodes that are gone. Like the masquerade rule, the routes live
// in the node's network namespace, so every start sets them again.
func SetRoutes(ctx context.Context, r driver.Runner, podCIDR string, routes []Route) error {
	sort.Slice(routes, func(i, j int) bool { return routes[i].PodCIDR < routes[j].PodCIDR })
	var script strings.Builder
	want := map[string]bool{}
	for _, rt := range routes {
		if _, _, err := net.ParseCIDR(rt.PodCIDR); err != nil {
			return fmt.Errorf("node pod CIDR %q: %w", rt.PodCIDR, err)
		}
		if net.ParseIP(rt.Via) == nil {
			return fmt.Errorf("node address %q is not an IP address", rt.Via)
		}
		want[rt.PodCIDR] = true
		fmt.Fprintf(&script, "ip route replace %s via %s\n", rt.PodCIDR, rt.Via)
	}
	// Routes of removed nodes: a "via" route inside the pod network that is not wanted.
	have, err := node.Output(ctx, r, "ip", "-4", "route", "show", "root", podCIDR)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(have, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" && !want[f[0]] {
			if _, _, err := net.ParseCIDR(f[0]); err == nil {
				fmt.Fprintf(&script, "ip route del %s\n", f[0])
			}
		}
	}
	if script.Len() == 0 {
		return nil
	}
	_, err = node.Shell(ctx, r, script.String())
	return err
}
