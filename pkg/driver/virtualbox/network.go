package virtualbox

// The VM's networks: the host-only network and its DHCP server, and the address the VM gets there.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/wait"
)

// hostOnlyNetwork finds (or creates) the host-only interface on mkube's subnet, with its DHCP server.
// An interface already on that subnet is used whoever made it; mkube never removes host-only
// interfaces or DHCP servers (Delete leaves them), so it cannot take away one that is not its own.
func (d *Driver) hostOnlyNetwork(ctx context.Context) (string, error) {
	out, err := run(ctx, "list", "hostonlyifs")
	if err != nil {
		return "", err
	}
	for _, h := range parseHostOnlyIfs(out) {
		if h.IP == hostOnlyIP {
			return h.Name, d.dhcpServer(ctx, h.Name)
		}
	}
	out, err = run(ctx, "hostonlyif", "create")
	if err != nil {
		return "", err
	}
	name := between(out, "Interface '", "' was successfully created")
	if name == "" {
		return "", fmt.Errorf("VBoxManage hostonlyif create did not name the interface: %q", strings.TrimSpace(out))
	}
	if _, err := run(ctx, "hostonlyif", "ipconfig", name, "--ip", hostOnlyIP, "--netmask", hostOnlyMask); err != nil {
		return "", err
	}
	return name, d.dhcpServer(ctx, name)
}

// dhcpServer adds the interface's DHCP server unless it has one.
func (d *Driver) dhcpServer(ctx context.Context, ifname string) error {
	out, err := run(ctx, "list", "dhcpservers")
	if err != nil {
		return err
	}
	if strings.Contains(out, "HostInterfaceNetworking-"+ifname) {
		return nil
	}
	_, err = run(ctx, "dhcpserver", "add", "--interface="+ifname, "--server-ip="+dhcpServerIP, "--netmask="+hostOnlyMask,
		"--lower-ip="+dhcpLower, "--upper-ip="+dhcpUpper, "--enable")
	return err
}

// ip reads NIC 2's DHCP lease from the host-only network's lease file.
func (d *Driver) ip(ctx context.Context, info map[string]string) (string, error) {
	ifname := info["hostonlyadapter2"]
	if ifname == "" {
		return "", fmt.Errorf("the VM %s has no host-only adapter", d.machine)
	}
	file := filepath.Join(userHome(), "HostInterfaceNetworking-"+ifname+"-Dhcpd.leases")
	ip, err := leaseIP(file, colonMAC(d.mac()))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return ip, err
}

func (d *Driver) waitIP(ctx context.Context) (string, error) {
	var ip string
	err := wait.PollUntilContextTimeout(ctx, pollEvery, ipTimeout, true, func(ctx context.Context) (bool, error) {
		if info, err := d.info(ctx); err == nil && info != nil {
			ip, _ = d.ip(ctx, info)
		}
		return ip != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("the VM got no address on its host-only network in %s; its console log is %s", ipTimeout, d.consoleLog())
	}
	return ip, nil
}

func colonMAC(m string) string {
	var parts []string
	for i := 0; i+2 <= len(m); i += 2 {
		parts = append(parts, strings.ToLower(m[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
