// Package kvm2 runs the node as a libvirt/QEMU virtual machine booted from mkube's ISO: a domain
// with the ISO and the NoCloud seed as CD-ROMs and a qcow2 data disk, on libvirt's default NAT
// network and mkube's private network (whose DHCP lease is the node's address). Disks live in a
// libvirt storage pool, so libvirtd (not the user) owns them whatever the user's home permissions.
package kvm2

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"libvirt.org/go/libvirtxml"

	"mkube/pkg/driver"
)

// Names of the libvirt objects mkube shares between profiles.
const (
	PrivateNetwork = "mkube-net"
	DefaultNetwork = "default"
	Pool           = "mkube"
	PoolPath       = "/var/lib/libvirt/images/mkube"
)

// domain is what domainXML needs to describe a profile's machine.
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

// All the XML below is built from libvirtxml's types and written by encoding/xml, which escapes
// every name and path: no value can close an element or an attribute.

// domainXML describes the profile's machine; its <metadata> carries the owner mark, so the domain
// is never defined without it.
func domainXML(d domain) (string, error) {
	if d.Type != "kvm" && d.Type != "qemu" {
		return "", fmt.Errorf("domain type %q: want kvm or qemu", d.Type)
	}
	if d.Owner == "" {
		return "", fmt.Errorf("domain %q has no owner mark", d.Name)
	}
	owner, err := markXML("owner", d.Owner)
	if err != nil {
		return "", err
	}
	port := uint(0)
	x := libvirtxml.Domain{
		Type:     d.Type,
		Name:     d.Name,
		Metadata: &libvirtxml.DomainMetadata{XML: owner},
		Memory:   &libvirtxml.DomainMemory{Value: uint(d.MemoryMB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(d.CPUs)},
		Features: &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}, PAE: &libvirtxml.DomainFeature{}},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "cdrom"}},
			BootMenu:    &libvirtxml.DomainBootMenu{Enable: "no"},
		},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks:      []libvirtxml.DomainDisk{cdrom(d.ISO, "hdc"), cdrom(d.Seed, "hdd"), dataDisk(d.Disk)},
			Interfaces: []libvirtxml.DomainInterface{nic(DefaultNetwork, d.MACs[0]), nic(PrivateNetwork, d.MACs[1])},
			// The serial console goes to a log file: boot problems are read there.
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
				Log:    &libvirtxml.DomainChardevLog{File: d.ConsoleLog, Append: "off"},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
			}},
			// The ISO runs the QEMU guest agent; libvirt picks the socket's path.
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
			}},
			RNGs: []libvirtxml.DomainRNG{{Model: "virtio",
				Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}}}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "virtio"},
		},
	}
	if d.Type == "kvm" {
		x.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	return marshal(x.Marshal())
}

func cdrom(path, dev string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device:   "cdrom",
		Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
		Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target:   &libvirtxml.DomainDiskTarget{Dev: dev, Bus: "ide"},
		ReadOnly: &libvirtxml.DomainDiskReadOnly{},
	}
}

// dataDisk is the node's qcow2 disk. Cache 'unsafe': it is scratch state that `mkube delete`
// throws away; skipping flushes makes image imports and etcd much faster under software
// emulation, and a clean shutdown (mkube stop) still writes everything out.
func dataDisk(path string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Cache: "unsafe", Discard: "unmap"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
	}
}

func nic(network, mac string) libvirtxml.DomainInterface {
	return libvirtxml.DomainInterface{
		Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: network}},
		MAC:    &libvirtxml.DomainInterfaceMAC{Address: mac},
		Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
	}
}

// marshal ends a libvirtxml document with a newline, as a file of XML does.
func marshal(doc string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return doc + "\n", nil
}

// tcgDomainXML turns a kvm domain's XML (as libvirt returns it) into the same machine under
// software emulation: type qemu, and no host-passthrough CPU, which only KVM can give a guest.
// Everything else libvirt filled in (addresses, controllers, the owner mark) is kept.
func tcgDomainXML(domXML string) (string, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(domXML); err != nil {
		return "", fmt.Errorf("reading the domain's XML: %w", err)
	}
	x.Type = "qemu"
	if x.CPU != nil && x.CPU.Mode == "host-passthrough" {
		x.CPU = nil
	}
	return marshal(x.Marshal())
}

// domainTypeOf is the domain's type attribute: kvm or qemu (TCG) for mkube's domains.
func domainTypeOf(domXML string) (string, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(domXML); err != nil {
		return "", fmt.Errorf("reading the domain's XML: %w", err)
	}
	return x.Type, nil
}

// mark is one of mkube's elements in libvirt's <metadata>. The prefix is declared on the element
// itself, as libvirt stores and dumps metadata: it must read back without its parent.
type mark struct {
	XMLName xml.Name
	NS      string `xml:"xmlns:mkube,attr"`
	Value   string `xml:",chardata"`
}

// markXML is the element <mkube:NAME> in OwnerNS holding value, for a <metadata> element.
func markXML(name, value string) (string, error) {
	b, err := xml.Marshal(mark{XMLName: xml.Name{Local: "mkube:" + name}, NS: OwnerNS, Value: value})
	return string(b), err
}

// readMarks reads mkube's marks from the inside of a <metadata> element (libvirtxml keeps it as
// raw XML): the trimmed text of each child in OwnerNS, by local name. Only children count, in
// mkube's namespace whatever their prefix: not text elsewhere, nor other applications' elements.
func readMarks(inner string) (map[string]string, error) {
	out := map[string]string{}
	dec := xml.NewDecoder(strings.NewReader(inner))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != OwnerNS {
			if err := dec.Skip(); err != nil {
				return nil, err
			}
			continue
		}
		var m mark
		if err := dec.DecodeElement(&m, &start); err != nil {
			return nil, err
		}
		out[start.Name.Local] = strings.TrimSpace(m.Value)
	}
}

// domainOwnerTag reads the owner mark from a domain's XML (as GetXMLDesc returns it): "" when the
// domain has none.
func domainOwnerTag(domXML string) (string, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(domXML); err != nil {
		return "", fmt.Errorf("reading the domain's XML: %w", err)
	}
	if x.Metadata == nil {
		return "", nil
	}
	marks, err := readMarks(x.Metadata.XML)
	if err != nil {
		return "", fmt.Errorf("reading the domain's metadata: %w", err)
	}
	return marks["owner"], nil
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
	var n libvirtxml.Network
	if n.Unmarshal(netXML) != nil || n.Metadata == nil {
		return false
	}
	marks, err := readMarks(n.Metadata.XML)
	return err == nil && marks["shared"] == PrivateNetwork
}

// sharedUse says which of mkube's shared objects a domain uses: its private network, and files of
// its pool (the ISO, or any volume) by path or by pool name. Any domain counts, marked or not, of
// this home or another: the shared objects go only when nothing uses them.
func sharedUse(domXML string) (network, pool bool, err error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(domXML); err != nil {
		return false, false, fmt.Errorf("reading a domain's XML: %w", err)
	}
	if x.Devices == nil {
		return false, false, nil
	}
	for _, i := range x.Devices.Interfaces {
		network = network || (i.Source != nil && i.Source.Network != nil && i.Source.Network.Network == PrivateNetwork)
	}
	for _, k := range x.Devices.Disks {
		if s := k.Source; s != nil {
			pool = pool || (s.Volume != nil && s.Volume.Pool == Pool) || (s.File != nil && strings.HasPrefix(s.File.File, PoolPath+"/"))
		}
	}
	return network, pool, nil
}

// poolPath is a storage pool's target directory, from its XML.
func poolPath(poolXML string) string {
	var p libvirtxml.StoragePool
	if p.Unmarshal(poolXML) != nil || p.Target == nil {
		return ""
	}
	return strings.TrimSpace(p.Target.Path)
}

// networkXML is mkube's private network: no forwarding (the default network gives the guest its way
// out), DHCP for the node addresses. minikube's kvm2 driver uses the same subnet.
// The <metadata> element marks it as mkube's (created by mkube, shared by every home): Delete
// never removes a network of that name without the mark.
func networkXML() (string, error) {
	shared, err := markXML("shared", PrivateNetwork)
	if err != nil {
		return "", err
	}
	n := libvirtxml.Network{
		Name:     PrivateNetwork,
		Metadata: &libvirtxml.NetworkMetadata{XML: shared},
		Bridge:   &libvirtxml.NetworkBridge{Name: "virbr-mkube", STP: "on", Delay: "0"},
		DNS:      &libvirtxml.NetworkDNS{Enable: "no"},
		IPs:      []libvirtxml.NetworkIP{dhcpSubnet("192.168.39")},
	}
	return marshal(n.Marshal())
}

// defaultNetworkXML is libvirt's own default NAT network, defined when a host lacks it.
func defaultNetworkXML() (string, error) {
	n := libvirtxml.Network{
		Name:    DefaultNetwork,
		Forward: &libvirtxml.NetworkForward{Mode: "nat"},
		Bridge:  &libvirtxml.NetworkBridge{Name: "virbr0", STP: "on", Delay: "0"},
		IPs:     []libvirtxml.NetworkIP{dhcpSubnet("192.168.122")},
	}
	return marshal(n.Marshal())
}

// dhcpSubnet is a /24 whose .1 is the host and whose other addresses DHCP hands out.
func dhcpSubnet(prefix string) libvirtxml.NetworkIP {
	return libvirtxml.NetworkIP{Address: prefix + ".1", Netmask: "255.255.255.0",
		DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{Start: prefix + ".2", End: prefix + ".254"}}}}
}

func poolXML() (string, error) {
	p := libvirtxml.StoragePool{Type: "dir", Name: Pool, Target: &libvirtxml.StoragePoolTarget{Path: PoolPath}}
	return marshal(p.Marshal())
}

// volumeXML describes a volume of the pool: qcow2 for data disks, raw for ISOs.
func volumeXML(name, format string, capacity uint64) (string, error) {
	v := libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
	}
	return marshal(v.Marshal())
}
