package kvm2

import (
	"crypto/sha256"
	"fmt"
	"regexp"
	"strings"
)

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

// otherNodeName is how mkube names a profile's nodes after the first: <profile>-m02 … -m99.
var otherNodeName = regexp.MustCompile(`^(.+)-m(0[2-9]|[1-9][0-9])$`)

// isOtherNode says whether name is one of profile's nodes after the first.
func isOtherNode(profile, name string) bool {
	m := otherNodeName.FindStringSubmatch(name)
	return m != nil && m[1] == profile
}

// volumeMachine is the machine a volume of this home belongs to, from its name (diskVolume,
// seedVolume).
func volumeMachine(volume, homeID string) (string, bool) {
	for _, suffix := range []string{"-disk.qcow2", "-seed.iso"} {
		if m, ok := strings.CutSuffix(volume, "-"+homeShort(homeID)+suffix); ok && m != "" {
			return m, true
		}
	}
	return "", false
}
