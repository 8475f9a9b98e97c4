// Package kvm2 runs the node as a libvirt/QEMU virtual machine booted from mkube's ISO: a domain
// with the ISO and the NoCloud seed as CD-ROMs and a qcow2 data disk, on libvirt's default NAT
// network and mkube's private network (whose DHCP lease is the node's address). Disks live in a
// libvirt storage pool, so libvirtd (not the user) owns them whatever the user's home permissions.
package kvm2

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"mkube/pkg/driver"
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
	Owner      string // driver.Owner.Tag(): whose domain this is
}

// OwnerNS is the XML namespace of mkube's elements in libvirt <metadata>: libvirt keeps one
// element per namespace, and a namespace of our own means no other application's metadata is
// mistaken for mkube's mark (or overwrites it).
const OwnerNS = "urn:mkube:owner"

var domainTmpl = template.Must(template.New("domain").Parse(`<domain type='{{.Type}}'>
  <name>{{.Name}}</name>
  <metadata>
    <mkube:owner xmlns:mkube='urn:mkube:owner'>{{.Owner}}</mkube:owner>
  </metadata>
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
	if d.Type != "kvm" && d.Type != "qemu" {
		return "", fmt.Errorf("domain type %q: want kvm or qemu", d.Type)
	}
	if d.Owner == "" {
		return "", fmt.Errorf("domain %q has no owner mark", d.Name)
	}
	var b bytes.Buffer
	err := domainTmpl.Execute(&b, xmlEscaped(d))
	return b.String(), err
}

// xmlEscaped escapes every string that lands in the XML (in text or in a single-quoted
// attribute), so no name or path can close an element or an attribute: xml.EscapeText turns
// ' " < > & and line breaks into character references.
func xmlEscaped(d domain) domain {
	d.Type, d.Name, d.ISO, d.Seed, d.Disk, d.ConsoleLog, d.Owner = esc(d.Type), esc(d.Name), esc(d.ISO), esc(d.Seed), esc(d.Disk), esc(d.ConsoleLog), esc(d.Owner)
	d.MACs = [2]string{esc(d.MACs[0]), esc(d.MACs[1])}
	return d
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xmlEscape(&b, s)
	return b.String()
}

// metadataXML is the part of a domain's or network's XML that holds mkube's marks.
type metadataXML struct {
	Metadata struct {
		Owner  *string `xml:"urn:mkube:owner owner"`
		Shared *string `xml:"urn:mkube:owner shared"`
	} `xml:"metadata"`
}

// domainOwnerTag reads the owner mark from a domain's XML (as GetXMLDesc returns it): "" when the
// domain has none. Only mkube's own namespaced element counts, not text elsewhere (a title or a
// description that happens to read like a mark).
func domainOwnerTag(domXML string) (string, error) {
	var m metadataXML
	if err := xml.Unmarshal([]byte(domXML), &m); err != nil {
		return "", fmt.Errorf("reading the domain's XML: %w", err)
	}
	if m.Metadata.Owner == nil {
		return "", nil
	}
	return strings.TrimSpace(*m.Metadata.Owner), nil
}

// checkDomainOwner decides from a domain's XML whether it is o's: nil when it is, else a
// *driver.NotOwnedError.
func checkDomainOwner(o driver.Owner, name, domXML string) error {
	tag, err := domainOwnerTag(domXML)
	if err != nil {
		return err
	}
	return o.CheckTag("libvirt domain", name, tag)
}

// networkCreatedByMkube tells from a network's XML whether mkube defined it (networkXML marks it).
// A network of that name without the mark is someone else's: mkube may use it, never removes it.
func networkCreatedByMkube(netXML string) bool {
	var m metadataXML
	return xml.Unmarshal([]byte(netXML), &m) == nil && m.Metadata.Shared != nil && strings.TrimSpace(*m.Metadata.Shared) == PrivateNetwork
}

// sharedUse says which of mkube's shared objects a domain uses: its private network, and files of
// its pool (the ISO, or any volume) by path or by pool name. Any domain counts, marked or not, of
// this home or another: the shared objects go only when nothing uses them.
func sharedUse(domXML string) (network, pool bool, err error) {
	var d struct {
		Disks []struct {
			Source struct {
				File string `xml:"file,attr"`
				Pool string `xml:"pool,attr"`
			} `xml:"source"`
		} `xml:"devices>disk"`
		Interfaces []struct {
			Source struct {
				Network string `xml:"network,attr"`
			} `xml:"source"`
		} `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(domXML), &d); err != nil {
		return false, false, fmt.Errorf("reading a domain's XML: %w", err)
	}
	for _, i := range d.Interfaces {
		network = network || i.Source.Network == PrivateNetwork
	}
	for _, k := range d.Disks {
		pool = pool || k.Source.Pool == Pool || strings.HasPrefix(k.Source.File, PoolPath+"/")
	}
	return network, pool, nil
}

// poolPath is a storage pool's target directory, from its XML.
func poolPath(poolXML string) string {
	var p struct {
		Path string `xml:"target>path"`
	}
	if xml.Unmarshal([]byte(poolXML), &p) != nil {
		return ""
	}
	return strings.TrimSpace(p.Path)
}

// networkXML is mkube's private network: no forwarding (the default network gives the guest its way
// out), DHCP for the node addresses. minikube's kvm2 driver uses the same subnet.
// The <metadata> element marks it as mkube's (created by mkube, shared by every home): Delete
// never removes a network of that name without the mark.
func networkXML() string {
	return `<network>
  <name>` + PrivateNetwork + `</name>
  <metadata>
    <mkube:shared xmlns:mkube='` + OwnerNS + `'>` + PrivateNetwork + `</mkube:shared>
  </metadata>
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
	return fmt.Sprintf(`<volume>
  <name>%s</name>
  <capacity unit='bytes'>%d</capacity>
  <target>
    <format type='%s'/>
  </target>
</volume>
`, esc(name), capacity, esc(format))
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

// Per-profile volume names in the pool carry a short form of the home ID besides the profile:
// the pool is shared by every mkube home on the host, and two homes may both have a profile
// "minikube"; their disks must not be one volume.
func diskVolume(profile, homeID string) string {
	return profile + "-" + homeShort(homeID) + "-disk.qcow2"
}
func seedVolume(profile, homeID string) string {
	return profile + "-" + homeShort(homeID) + "-seed.iso"
}

// homeShort is the home ID's first 8 characters when they are plain letters and digits (a random
// ID), else the first 8 hex digits of its digest, so a volume name never gets a path separator or
// other character libvirt or the file system would refuse.
func homeShort(id string) string {
	if len(id) >= 8 && plainID.MatchString(id[:8]) {
		return id[:8]
	}
	h := sha256.Sum256([]byte(id))
	return fmt.Sprintf("%x", h[:4])
}

var plainID = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// isISOVolume tells the shared ISO volumes (named by isoVolume) from per-profile ones: only those
// may go with the pool when no domain uses it; another home's disks and seeds stay.
func isISOVolume(name string) bool { return isoName.MatchString(name) }

var isoName = regexp.MustCompile(`-[0-9a-f]{12}\.iso(\.complete)?$`)

// completeMarker names the volume that says the ISO volume name was uploaded whole.
func completeMarker(name string) string { return name + ".complete" }

// isoVolume names the ISO's volume after its content, so a rebuilt ISO is never mistaken for the
// copy already in the pool.
func isoVolume(isoName, sha string) string {
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return strings.TrimSuffix(isoName, ".iso") + "-" + sha + ".iso"
}
