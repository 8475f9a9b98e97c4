// Package k8sversion knows which Kubernetes versions mkube supports and turns what a user types
// (v1.34.4, 1.34.4, stable, latest) into one exact version.
package k8sversion

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Kubernetes release version: major.minor.patch.
type Version struct {
	Major, Minor, Patch int
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// MinorString is "1.34", the form kubeadm's config and the kubelet's flags use for a minor release.
func (v Version) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// Known lists the newest patch release of each supported minor release, newest first.
// The first entry is "latest"; Default is "stable": the newest version verified end to end here.
var known = []string{"v1.37.2", "v1.36.3", "v1.35.4", "v1.34.4", "v1.33.13", "v1.32.13", "v1.31.14"}

// DefaultString is the version mkube starts when none is given.
const DefaultString = "v1.37.2"

// Known returns the supported releases, newest first.
func Known() []Version {
	out := make([]Version, 0, len(known))
	for _, s := range known {
		out = append(out, MustParse(s))
	}
	return out
}

// Default is the version `mkube start` uses without --kubernetes-version.
func Default() Version { return MustParse(DefaultString) }

// Newest is what "latest" means.
func Newest() Version { return MustParse(known[0]) }

// Oldest is the oldest supported release.
func Oldest() Version { return MustParse(known[len(known)-1]) }

// SupportedRange is the human form of the range, for error messages.
func SupportedRange() string {
	o, n := Oldest(), Newest()
	return fmt.Sprintf("v%s.x through v%s.x", o.MinorString(), n.MinorString())
}

// MustParse parses a version known to be valid.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Parse accepts vX.Y.Z and X.Y.Z. It does not check the supported range; Resolve does.
func Parse(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.Split(t, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%q is not a Kubernetes version: use vMAJOR.MINOR.PATCH, e.g. %s", s, DefaultString)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("%q is not a Kubernetes version: use vMAJOR.MINOR.PATCH, e.g. %s", s, DefaultString)
		}
		n[i] = x
	}
	return Version{n[0], n[1], n[2]}, nil
}

// Resolve turns user input into a supported version: "" and "stable" are the default,
// "latest" the newest supported; anything else must parse and fall in the supported minors.
func Resolve(s string) (Version, error) {
	switch strings.TrimSpace(s) {
	case "", "stable":
		return Default(), nil
	case "latest":
		return Newest(), nil
	}
	v, err := Parse(s)
	if err != nil {
		return Version{}, err
	}
	if err := CheckSupported(v); err != nil {
		return Version{}, err
	}
	return v, nil
}

// CheckSupported fails for versions outside the supported minor releases.
func CheckSupported(v Version) error {
	o, n := Oldest(), Newest()
	lo := Version{o.Major, o.Minor, 0}
	hi := Version{n.Major, n.Minor + 1, 0}
	if v.Less(lo) || !v.Less(hi) {
		return fmt.Errorf("Kubernetes %s is not supported: mkube supports %s (run `mkube get-k8s-versions`)", v, SupportedRange())
	}
	return nil
}
