package kvm2

import (
	"encoding/xml"
	"testing"

	"mkube/internal/golden"
)

func TestDomainXML(t *testing.T) {
	tests := []struct {
		name string
		d    domain
	}{
		{"tcg", domain{Name: "mkube", Type: "qemu", CPUs: 2, MemoryMB: 4096, ISO: PoolPath + "/mkube-v0.1.0-amd64.iso",
			Seed: PoolPath + "/mkube-seed.iso", Disk: PoolPath + "/mkube-disk.qcow2", MACs: macs("mkube"), ConsoleLog: "/var/log/libvirt/qemu/mkube-console.log"}},
		{"kvm", domain{Name: "dev", Type: "kvm", CPUs: 4, MemoryMB: 8192, ISO: PoolPath + "/mkube-v0.1.0-amd64.iso",
			Seed: PoolPath + "/dev-seed.iso", Disk: PoolPath + "/dev-disk.qcow2", MACs: macs("dev"), ConsoleLog: "/var/log/libvirt/qemu/dev-console.log"}},
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
		golden.Check(t, "domain-"+tt.name+".xml", []byte(got))
	}
	golden.Check(t, "network.xml", []byte(networkXML()))
	golden.Check(t, "volume.xml", []byte(volumeXML("mkube-disk.qcow2", "qcow2", 20000<<20)))
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
