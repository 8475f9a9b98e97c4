//go:build linux && cgo

package kvm2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"libvirt.org/go/libvirt"
)

// kvmBootWindow bounds how long a guest started with KVM may take to get an address before the
// start falls back to software emulation: a KVM guest gets its lease in seconds, and one that has
// none after this long is stuck however it failed (a guest-side panic, a hang).
const kvmBootWindow = 2 * time.Minute

// errNoAddress is a boot that gave the guest no address in time.
var errNoAddress = errors.New("the VM got no address")

// guestFailure is a domain that stopped running on its own while it booted.
type guestFailure struct{ why string }

func (g *guestFailure) Error() string { return "the VM " + g.why }

// bootFailure says whether a domain state seen while the guest boots means it cannot run: a /dev/kvm
// that opens but cannot run the guest shows as QEMU pausing it ("KVM internal error … emulation
// failure"), as a crash, or as a guest that shuts off. Nobody pauses or stops a domain mkube is
// booting, so any of these is a failure.
func bootFailure(state libvirt.DomainState, reason int) error {
	switch state {
	case libvirt.DOMAIN_PAUSED:
		return &guestFailure{fmt.Sprintf("was paused by QEMU (reason %d)", reason)}
	case libvirt.DOMAIN_CRASHED:
		return &guestFailure{"crashed"}
	case libvirt.DOMAIN_SHUTOFF, libvirt.DOMAIN_SHUTDOWN:
		return &guestFailure{"shut off while booting"}
	}
	return nil
}

// stateReader is the part of a libvirt domain the boot watch reads.
type stateReader interface {
	GetState() (libvirt.DomainState, int, error)
}

// domainFailed turns a domain's state into bootFailure's verdict; a state that cannot be read is
// not a verdict (libvirt busy).
func domainFailed(dom stateReader) func() error {
	return func() error {
		st, reason, err := dom.GetState()
		if err != nil {
			return nil
		}
		return bootFailure(st, reason)
	}
}

// waitBoot polls every poll until lease gives an address (returned), failed reports the guest's
// failure (a *guestFailure), or timeout passes (errNoAddress). failed may be nil.
func waitBoot(ctx context.Context, poll, timeout time.Duration, lease func() (string, error), failed func() error) (string, error) {
	var ip string
	var failure error
	err := wait.PollUntilContextTimeout(ctx, poll, timeout, true, func(context.Context) (bool, error) {
		if failed != nil {
			if failure = failed(); failure != nil {
				return true, nil
			}
		}
		// A lookup that fails (the network restarting) counts as no lease yet.
		got, err := lease()
		ip = got
		return err == nil && got != "", nil
	})
	switch {
	case failure != nil:
		return "", failure
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err != nil:
		return "", errNoAddress
	}
	return ip, nil
}
