package driver

import (
	"errors"
	"fmt"
)

// Owner identifies the one profile of one mkube home that a host object (container, network,
// volume, domain, VM, ...) belongs to. Two homes on one machine, or a user's own object that
// happens to have a profile's name, never match.
type Owner struct {
	HomeID  string // the random ID in $MKUBE_HOME's marker file
	Profile string
	// Legacy also accepts objects an mkube from before home IDs made for this profile (labelled
	// created_by/name but with no home): set only for a profile that such an mkube created, so an
	// upgrade does not orphan its cluster.
	Legacy bool
}

// Label keys and the tag format drivers use to mark what they create.
const (
	LabelCreatedBy = "created_by.mkube" // "true" on everything mkube creates
	LabelProfile   = "name.mkube"       // the profile
	LabelHome      = "home.mkube"       // the home's ID
	OwnerTagPrefix = "mkube-owner:"     // a text tag: mkube-owner:<home-id>/<profile>
)

// Labels are the key/value marks for engines that keep labels (Docker, Podman).
func (o Owner) Labels() map[string]string {
	return map[string]string{LabelCreatedBy: "true", LabelProfile: o.Profile, LabelHome: o.HomeID}
}

// Tag is the mark as one string, for hypervisors that keep a free-text field (libvirt metadata,
// VirtualBox extradata, Hyper-V notes).
func (o Owner) Tag() string { return OwnerTagPrefix + o.HomeID + "/" + o.Profile }

// OwnsLabels says whether labels carry exactly this owner's mark.
func (o Owner) OwnsLabels(labels map[string]string) bool {
	if labels[LabelCreatedBy] != "true" || labels[LabelProfile] != o.Profile {
		return false
	}
	home, marked := labels[LabelHome]
	if !marked {
		return o.Legacy
	}
	return o.HomeID != "" && home == o.HomeID
}

// OwnsTag says whether a free-text mark is exactly this owner's.
func (o Owner) OwnsTag(tag string) bool { return o.HomeID != "" && tag == o.Tag() }

// ErrNotOwned is wrapped by NotOwnedError.
var ErrNotOwned = errors.New("not created by this mkube profile")

// NotOwnedError is a host object that has the name mkube wants but not mkube's mark: mkube
// refuses to reuse, stop or delete it.
type NotOwnedError struct {
	Kind  string // "Docker volume", "libvirt domain", ...
	Name  string
	Other string // who it seems to belong to, when known ("another mkube home", "not mkube")
}

func (e *NotOwnedError) Error() string {
	who := e.Other
	if who == "" {
		who = "it was not created by mkube"
	}
	return fmt.Sprintf("%s %q already exists and is not this profile's (%s): mkube leaves it alone; pick another profile name with -p, or remove it yourself if it is stale", e.Kind, e.Name, who)
}

func (e *NotOwnedError) Unwrap() error { return ErrNotOwned }
