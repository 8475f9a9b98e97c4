package driver

import (
	"fmt"
	"strings"
)

// ForProfile is the owner a driver for profile works as. A driver refuses to be built without a
// home ID: with none, OwnsTag matches nothing, so the driver would create machines it could then
// neither start nor delete. An empty Profile is taken to mean this profile; a different one is a
// caller's mistake that would mark this profile's machine as another's.
func (o Owner) ForProfile(profile string) (Owner, error) {
	if o.HomeID == "" {
		return o, fmt.Errorf("driver for profile %q built without its owner's home ID (driver.Options.Owner)", profile)
	}
	if o.Profile == "" {
		o.Profile = profile
	}
	if o.Profile != profile {
		return o, fmt.Errorf("driver for profile %q built with the owner of profile %q", profile, o.Profile)
	}
	return o, nil
}

// CheckTag says whether a hypervisor object called name (of kind, e.g. "libvirt domain") that
// carries tag is o's: nil when it is, else a *NotOwnedError saying whose it seems to be. An empty
// or non-mkube tag means a machine mkube did not create (the user's own, or one from an mkube that
// did not mark its machines yet); a tag of another home or profile means another mkube's.
func (o Owner) CheckTag(kind, name, tag string) error {
	if o.OwnsTag(tag) {
		return nil
	}
	e := &NotOwnedError{Kind: kind, Name: name}
	if rest, ok := strings.CutPrefix(tag, OwnerTagPrefix); ok {
		e.Other = "another mkube home"
		if home, _, _ := strings.Cut(rest, "/"); home == o.HomeID {
			e.Other = "another profile of this mkube home"
		}
	}
	return e
}
