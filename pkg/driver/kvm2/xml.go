// Package kvm2 runs the node as a libvirt/QEMU virtual machine booted from mkube's ISO: a domain
// with the ISO and the NoCloud seed as CD-ROMs and a qcow2 data disk, on libvirt's default NAT
// network and mkube's private network (whose DHCP lease is the node's address). Disks live in a
// libvirt storage pool, so libvirtd (not the user) owns them whatever the user's home permissions.
package kvm2

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"text/template"
)

// Names of the libvirt objects mkube shares between profiles.
const (
	PrivateNetwork = "mkube-net"
	DefaultNetwork = "default"
	Pool           = "mkube"
	PoolPath       = "/var/lib/libvirt/images/mkube"
)

// domain is what the domain template needs.
type domain struct {
	Name       string
	Type       string // kvm (hardware acceleration) or qemu (TCG software emulation)
	CPUs       int
	MemoryMB   int
	ISO, Seed  string // volume paths
	Disk       string
	MACs       [2]string // default network, private network
	ConsoleLog string
}

var domainTmpl = template.Must(template.New("domain").Parse(`<domain type='{{.Type}}'>
  <name>{{.Name}}</name>
  <memory unit='MiB'>{{.MemoryMB}}</memory>
  <vcpu>{{.CPUs}}</vcpu>
  <features><acpi/><apic/><pae/></features>
{{- if eq .Type "kvm"}}
  <cpu mode='host-passthrough'/>
{{- end}}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='cdrom'/>
    <bootmenu enable='no'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{{.ISO}}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{{.Seed}}'/>
      <target dev='hdd' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe' discard='unmap'/>
      <source file='{{.Disk}}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <mac address='{{index .MACs 0}}'/>
      <model type='virtio'/>
    </interface>
    <interface type='network'>
      <source network='mkube-net'/>
      <mac address='{{index .MACs 1}}'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <log file='{{.ConsoleLog}}' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='virtio'/>
  </devices>
</domain>
`))

// Cache 'unsafe' above: the data disk is a node's scratch state that `mkube delete` throws away;
// skipping flushes makes image imports and etcd much faster under software emulation, and a clean
// shutdown (mkube stop) still writes everything out.

func domainXML(d domain) (string, error) {
	var b bytes.Buffer
	err := domainTmpl.Execute(&b, xmlEscaped(d))
	return b.String(), err
}

// xmlEscaped escapes the strings that land in XML attributes.
func xmlEscaped(d domain) domain {
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xmlEscape(&b, s)
		return b.String()
	}
	d.Name, d.ISO, d.Seed, d.Disk, d.ConsoleLog = esc(d.Name), esc(d.ISO), esc(d.Seed), esc(d.Disk), esc(d.ConsoleLog)
	return d
}

// networkXML is mkube's private network: no forwarding (the default network gives the guest its way
// out), DHCP for the node addresses. minikube's kvm2 driver uses the same subnet.
func networkXML() string {
	return `<network>
  <name>` + PrivateNetwork + `</name>
  <bridge name='virbr-mkube' stp='on' delay='0'/>
  <dns enable='no'/>
  <ip address='192.168.39.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.39.2' end='192.168.39.254'/>
    </dhcp>
  </ip>
</network>
`
}

// defaultNetworkXML is libvirt's own default NAT network, defined when a host lacks it.
func defaultNetworkXML() string {
	return `<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`
}

func poolXML() string {
	return `<pool type='dir'>
  <name>` + Pool + `</name>
  <target>
    <path>` + PoolPath + `</path>
  </target>
</pool>
`
}

// volumeXML describes a volume of the pool: qcow2 for data disks, raw for ISOs.
func volumeXML(name, format string, capacity uint64) string {
	var b bytes.Buffer
	_ = xmlEscape(&b, name)
	return fmt.Sprintf(`<volume>
  <name>%s</name>
  <capacity unit='bytes'>%d</capacity>
  <target>
    <format type='%s'/>
  </target>
</volume>
`, b.String(), capacity, format)
}

// macs are the domain's two addresses, derived from the profile so they survive re-creation and
// its DHCP lease stays put (QEMU's 52:54:00 prefix).
func macs(profile string) [2]string {
	var out [2]string
	for i := range out {
		h := sha256.Sum256([]byte(fmt.Sprintf("mkube/%s/%d", profile, i)))
		out[i] = fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
	}
	return out
}

// Volume names in the pool.
func diskVolume(profile string) string { return profile + "-disk.qcow2" }
func seedVolume(profile string) string { return profile + "-seed.iso" }

// isoVolume names the ISO's volume after its content, so a rebuilt ISO is never mistaken for the
// copy already in the pool.
func isoVolume(isoName, sha string) string {
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return strings.TrimSuffix(isoName, ".iso") + "-" + sha + ".iso"
}
