package kvm2

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"mkube/internal/golden"
	"mkube/pkg/driver"
)

var testOwner = driver.Owner{HomeID: "5f0c2a9e41d84b7c", Profile: "mkube"}

// mustXML returns a function that passes on the XML a builder made, failing t on an error:
// building mkube's descriptions does not fail.
func mustXML(t *testing.T) func(string, error) string {
	return func(doc string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
}

func TestDomainXML(t *testing.T) {
	must := mustXML(t)
	tests := []struct {
		name string
		d    domain
	}{
		{"tcg", domain{Name: "mkube", Type: "qemu", CPUs: 2, MemoryMB: 4096, ISO: PoolPath + "/mkube-v0.1.0-amd64.iso",
			Seed: PoolPath + "/mkube-5f0c2a9e-seed.iso", Disk: PoolPath + "/mkube-5f0c2a9e-disk.qcow2", MACs: macs("mkube"),
			ConsoleLog: "/var/log/libvirt/qemu/mkube-console.log", Owner: testOwner.Tag()}},
		{"kvm", domain{Name: "dev", Type: "kvm", CPUs: 4, MemoryMB: 8192, ISO: PoolPath + "/mkube-v0.1.0-amd64.iso",
			Seed: PoolPath + "/dev-5f0c2a9e-seed.iso", Disk: PoolPath + "/dev-5f0c2a9e-disk.qcow2", MACs: macs("dev"),
			ConsoleLog: "/var/log/libvirt/qemu/dev-console.log", Owner: driver.Owner{HomeID: testOwner.HomeID, Profile: "dev"}.Tag()}},
	}
	for _, tt := range tests {
		got, err := domainXML(tt.d)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := xml.Unmarshal([]byte(got), &v); err != nil {
			t.Errorf("%s: not XML: %v", tt.name, err)
		}
		// The mark reads back from what we define.
		if tag, err := domainOwnerTag(got); err != nil || tag != tt.d.Owner {
			t.Errorf("%s: owner tag %q %v", tt.name, tag, err)
		}
		golden.Check(t, "domain-"+tt.name+".xml", []byte(got))
	}
	golden.Check(t, "network.xml", []byte(must(networkXML())))
	golden.Check(t, "default-network.xml", []byte(must(defaultNetworkXML())))
	golden.Check(t, "pool.xml", []byte(must(poolXML())))
	golden.Check(t, "volume.xml", []byte(must(volumeXML(diskVolume("mkube", testOwner.HomeID), "qcow2", 20000<<20))))
	if !networkCreatedByMkube(must(networkXML())) {
		t.Error("mkube's network does not carry mkube's mark")
	}
	if poolPath(must(poolXML())) != PoolPath {
		t.Error("mkube's pool is not at mkube's path")
	}
	if _, err := domainXML(domain{Name: "x", Type: "kvm"}); err == nil {
		t.Error("a domain without an owner mark was generated")
	}
	if _, err := domainXML(domain{Name: "x", Type: "kvm' foo='", Owner: testOwner.Tag()}); err == nil {
		t.Error("an unknown domain type was accepted")
	}
}

// libvirtDomain is a domain as `virsh dumpxml` prints it (libvirt reformats what was defined:
// double quotes, its own indentation, the namespace declared on the element).
func libvirtDomain(metadata string) string {
	return `<domain type="kvm" id="3">
  <name>postgres</name>
  <uuid>0f6d7c2e-3f0b-4c8e-9a52-6c4f5f0b9d11</uuid>
  <title>mkube-owner:5f0c2a9e41d84b7c/postgres</title>
  <description>mkube-owner:5f0c2a9e41d84b7c/postgres</description>
` + metadata + `
  <memory unit="KiB">4194304</memory>
  <devices>
    <disk type="file" device="disk">
      <source file="/var/lib/libvirt/images/postgres.qcow2"/>
    </disk>
    <interface type="network">
      <source network="default"/>
    </interface>
  </devices>
</domain>`
}

// TestDomainOwnership is the decision every kvm2 method makes from a domain's XML before touching it.
func TestDomainOwnership(t *testing.T) {
	me := driver.Owner{HomeID: "5f0c2a9e41d84b7c", Profile: "postgres"}
	tests := []struct {
		name, metadata string
		owned          bool
		other          string
	}{
		{"ours", `  <metadata>
    <mkube:owner xmlns:mkube="urn:mkube:owner">mkube-owner:5f0c2a9e41d84b7c/postgres</mkube:owner>
  </metadata>`, true, ""},
		{"ours, another prefix", `<metadata><m:owner xmlns:m="urn:mkube:owner">mkube-owner:5f0c2a9e41d84b7c/postgres</m:owner></metadata>`, true, ""},
		{"no metadata (the user's own, mark only in title and description)", ``, false, ""},
		{"other applications' metadata", `<metadata><app:owner xmlns:app="http://example.com/app">mkube-owner:5f0c2a9e41d84b7c/postgres</app:owner></metadata>`, false, ""},
		{"another home", `<metadata><mkube:owner xmlns:mkube="urn:mkube:owner">mkube-owner:0000000000000000/postgres</mkube:owner></metadata>`, false, "another mkube home"},
		{"empty mark", `<metadata><mkube:owner xmlns:mkube="urn:mkube:owner"/></metadata>`, false, ""},
		{"mark inside another application's element", `<metadata><app:x xmlns:app="http://example.com/app"><mkube:owner xmlns:mkube="urn:mkube:owner">mkube-owner:5f0c2a9e41d84b7c/postgres</mkube:owner></app:x></metadata>`, false, ""},
		{"mark beside other applications' metadata", `<metadata><app:owner xmlns:app="http://example.com/app">someone</app:owner><mkube:owner xmlns:mkube="urn:mkube:owner">mkube-owner:5f0c2a9e41d84b7c/postgres</mkube:owner></metadata>`, true, ""},
	}
	for _, tt := range tests {
		err := checkDomainOwner(me, "postgres", libvirtDomain(tt.metadata))
		if tt.owned {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ne *driver.NotOwnedError
		if !errors.As(err, &ne) || ne.Kind != "libvirt domain" || ne.Name != "postgres" || ne.Other != tt.other {
			t.Errorf("%s: %#v", tt.name, err)
		}
	}
	if err := checkDomainOwner(me, "postgres", "<domain"); err == nil || errors.Is(err, driver.ErrNotOwned) {
		t.Errorf("unreadable XML: %v", err)
	}
}

func TestSharedUse(t *testing.T) {
	ours, err := domainXML(domain{Name: "dev", Type: "kvm", ISO: PoolPath + "/mkube-v0.1.0-amd64-0123456789ab.iso",
		Seed: PoolPath + "/dev-5f0c2a9e-seed.iso", Disk: PoolPath + "/dev-5f0c2a9e-disk.qcow2", MACs: macs("dev"), Owner: testOwner.Tag()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		xml      string
		net, vol bool
	}{
		{"an mkube domain", ours, true, true},
		{"the user's domain elsewhere", libvirtDomain(""), false, false},
		{"a volume of the pool by name", `<domain><devices><disk type="volume"><source pool="mkube" volume="x"/></disk></devices></domain>`, false, true},
		{"a file of the pool", `<domain><devices><disk><source file="` + PoolPath + `/x.iso"/></disk></devices></domain>`, false, true},
		{"a sibling directory", `<domain><devices><disk><source file="` + PoolPath + `-old/x.iso"/></disk></devices></domain>`, false, false},
		{"only the network", `<domain><devices><interface type="network"><source network="mkube-net"/></interface></devices></domain>`, true, false},
	}
	for _, tt := range tests {
		n, p, err := sharedUse(tt.xml)
		if err != nil || n != tt.net || p != tt.vol {
			t.Errorf("%s: network %v pool %v (%v), want %v %v", tt.name, n, p, err, tt.net, tt.vol)
		}
	}
}

func TestSharedObjectMarks(t *testing.T) {
	userNet := `<network><name>mkube-net</name><bridge name="virbr5"/></network>`
	if networkCreatedByMkube(userNet) {
		t.Error("an unmarked network of mkube's name counts as mkube's")
	}
	dumped := `<network>
  <name>mkube-net</name>
  <uuid>6b1c8f5e-2b43-4f0e-8f7a-0d7e2c1a9b33</uuid>
  <metadata>
    <mkube:shared xmlns:mkube="urn:mkube:owner">mkube-net</mkube:shared>
  </metadata>
</network>`
	if !networkCreatedByMkube(dumped) {
		t.Error("mkube's network as libvirt dumps it is not recognized")
	}
	if p := poolPath("<pool type=\"dir\"><name>mkube</name><target><path>/var/lib/libvirt/images/mkube</path></target></pool>"); p != PoolPath {
		t.Errorf("pool path %q", p)
	}
	if p := poolPath("<pool type=\"dir\"><name>mkube</name><target><path>/home/u/vms</path></target></pool>"); p == PoolPath {
		t.Error("a pool elsewhere counts as mkube's")
	}
	for name, iso := range map[string]bool{
		isoVolume("mkube-v0.1.0-amd64.iso", strings.Repeat("ab", 32)):                 true,
		completeMarker(isoVolume("mkube-v0.1.0-amd64.iso", strings.Repeat("ab", 32))): true,
		seedVolume("dev", testOwner.HomeID):                                           false,
		diskVolume("dev", testOwner.HomeID):                                           false,
		seedVolume("x-0123456789ab", testOwner.HomeID):                                false,
		"users-own.iso": false,
	} {
		if isISOVolume(name) != iso {
			t.Errorf("isISOVolume(%q) = %v", name, !iso)
		}
	}
}

func TestVolumeNamesDifferPerHome(t *testing.T) {
	a, b := diskVolume("minikube", "5f0c2a9e41d84b7c"), diskVolume("minikube", "90ab11ee00000000")
	if a == b || a != "minikube-5f0c2a9e-disk.qcow2" {
		t.Errorf("%s %s", a, b)
	}
	// A home ID that is not plain letters and digits cannot put a path into a volume name.
	if s := seedVolume("minikube", "../../etc/x"); strings.Contains(s, "/") {
		t.Errorf("%s", s)
	}
	if h := homeShort("../../etc/x"); len(h) != 8 || strings.ContainsAny(h, "/.") {
		t.Errorf("homeShort: %q", h)
	}
}

// elements lists an XML document's element names in order: its structure without the data.
func elements(t *testing.T, doc string) []string {
	t.Helper()
	var names []string
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			names = append(names, se.Name.Local)
		}
	}
}

// TestHostileValuesStayData: names and paths with XML's special characters (and a shell's, for
// good measure) change no element or attribute of the domain and read back exactly.
func TestHostileValuesStayData(t *testing.T) {
	must := mustXML(t)
	const bad = `x' file='/etc/shadow'/><disk>&amp;<!-- $(reboot); "q" ` + "\n" + `]]></name><name>y`
	plain := domain{Name: "dev", Type: "kvm", CPUs: 2, MemoryMB: 2048, ISO: "/i.iso", Seed: "/s.iso", Disk: "/d.qcow2", MACs: macs("dev"), ConsoleLog: "/c.log", Owner: testOwner.Tag()}
	hostile := domain{Name: bad, Type: "kvm", CPUs: 2, MemoryMB: 2048, ISO: "/iso/" + bad, Seed: "/seed/" + bad, Disk: "/disk/" + bad,
		MACs: macs(bad), ConsoleLog: "/log/" + bad, Owner: driver.Owner{HomeID: "h", Profile: bad}.Tag()}
	px, err := domainXML(plain)
	if err != nil {
		t.Fatal(err)
	}
	hx, err := domainXML(hostile)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := elements(t, px), elements(t, hx); !reflect.DeepEqual(a, b) {
		t.Errorf("structure changed:\n%v\n%v", a, b)
	}
	var got libvirtxml.Domain
	if err := got.Unmarshal(hx); err != nil {
		t.Fatal(err)
	}
	file := func(i int) string { return got.Devices.Disks[i].Source.File.File }
	if got.Name != bad || len(got.Devices.Disks) != 3 || file(0) != hostile.ISO || file(1) != hostile.Seed ||
		file(2) != hostile.Disk || got.Devices.Serials[0].Log.File != hostile.ConsoleLog ||
		got.Devices.Interfaces[1].MAC.Address != hostile.MACs[1] {
		t.Errorf("values changed: %+v", got)
	}
	if tag, _ := domainOwnerTag(hx); tag != hostile.Owner {
		t.Errorf("owner %q", tag)
	}
	vx := must(volumeXML(bad, "qcow2", 1))
	if a, b := elements(t, must(volumeXML("v", "qcow2", 1))), elements(t, vx); !reflect.DeepEqual(a, b) {
		t.Errorf("volume structure changed:\n%v\n%v", a, b)
	}
	var vol libvirtxml.StorageVolume
	if err := vol.Unmarshal(vx); err != nil || vol.Name != bad {
		t.Errorf("volume name %q %v", vol.Name, err)
	}
}

func TestMACsAreStableAndDistinct(t *testing.T) {
	a, b := macs("mkube"), macs("other")
	if a != macs("mkube") || a[0] == a[1] || a[0] == b[0] {
		t.Errorf("macs: %v %v", a, b)
	}
	if a[0][:9] != "52:54:00:" {
		t.Errorf("not a QEMU address: %s", a[0])
	}
}

// TestTCGFallback: the kvm→TCG edit of a domain as libvirt keeps it makes a qemu domain without
// the host CPU, and keeps everything else, the owner mark first of all.
func TestTCGFallback(t *testing.T) {
	must := mustXML(t)
	dumped, err := os.ReadFile("testdata/libvirt-dumped-kvm.xml") // libvirt 9.0's dumpxml --inactive of domainXML's kvm domain
	if err != nil {
		t.Fatal(err)
	}
	ours := must(domainXML(domain{Name: "dev", Type: "kvm", CPUs: 2, MemoryMB: 2048, ISO: "/i.iso", Seed: "/s.iso", Disk: "/d.qcow2",
		MACs: macs("dev"), ConsoleLog: "/c.log", Owner: testOwner.Tag()}))
	tests := []struct {
		name, in string
		cpuMode  string // of the <cpu> left, "" for none
	}{
		{"as libvirt dumps it", string(dumped), ""},
		{"as mkube defines it", ours, ""},
		{"a CPU model other than the host's stays", strings.Replace(ours, `<cpu mode="host-passthrough"></cpu>`,
			`<cpu mode="custom"><model>qemu64</model></cpu>`, 1), "custom"},
	}
	for _, tt := range tests {
		out, err := tcgDomainXML(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var before, after libvirtxml.Domain
		if err := before.Unmarshal(tt.in); err != nil {
			t.Fatal(err)
		}
		if err := after.Unmarshal(out); err != nil {
			t.Fatal(err)
		}
		cpuMode := ""
		if after.CPU != nil {
			cpuMode = after.CPU.Mode
		}
		if after.Type != "qemu" || cpuMode != tt.cpuMode {
			t.Errorf("%s: type %q cpu mode %q", tt.name, after.Type, cpuMode)
		}
		if typ, err := domainTypeOf(out); err != nil || typ != "qemu" {
			t.Errorf("%s: domainTypeOf %q %v", tt.name, typ, err)
		}
		if tag, err := domainOwnerTag(out); err != nil || tag != testOwner.Tag() {
			t.Errorf("%s: owner %q %v", tt.name, tag, err)
		}
		// Nothing else changed.
		before.Type, after.Type = "", ""
		if tt.cpuMode == "" {
			before.CPU, after.CPU = nil, nil
		}
		if !reflect.DeepEqual(before, after) {
			t.Errorf("%s: more than type and CPU changed:\n%s", tt.name, out)
		}
	}
	golden.Check(t, "tcg-fallback.xml", []byte(must(tcgDomainXML(string(dumped)))))
	if _, err := tcgDomainXML("<domain"); err == nil {
		t.Error("unreadable XML was edited")
	}
}
