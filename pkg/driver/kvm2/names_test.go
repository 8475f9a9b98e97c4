package kvm2

import "testing"

// A primary's delete sweeps the profile's other nodes by name: only <profile>-mNN, only this
// home's volumes.
func TestOtherNodeNames(t *testing.T) {
	for _, tc := range []struct {
		profile, name string
		want          bool
	}{
		{"mk", "mk-m02", true},
		{"mk", "mk-m99", true},
		{"mk-m02", "mk-m02-m03", true},
		{"mk", "mk", false},
		{"mk", "mk-m01", false},
		{"mk", "mk-m2", false},
		{"mk", "mk-m100", false},
		{"mk", "mkx-m02", false},
		{"mk", "other-mk-m02", false},
		{"mk-m02", "mk-m03", false},
	} {
		if got := isOtherNode(tc.profile, tc.name); got != tc.want {
			t.Errorf("isOtherNode(%q, %q) = %t", tc.profile, tc.name, got)
		}
	}
	home := "5f0c2a9e41d84b7c"
	for vol, want := range map[string]string{
		diskVolume("mk-m02", home):               "mk-m02",
		seedVolume("mk-m03", home):               "mk-m03",
		diskVolume("mk-m02", "0ther0ther0ther0"): "",
		"mk-m02-disk.qcow2":                      "",
	} {
		got, ok := volumeMachine(vol, home)
		if got != want || ok != (want != "") {
			t.Errorf("volumeMachine(%q) = %q %t, want %q", vol, got, ok, want)
		}
	}
}
