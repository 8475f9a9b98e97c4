//go:build linux && cgo

package kvm2

import (
	"context"
	"errors"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

func TestBootFailure(t *testing.T) {
	for _, tt := range []struct {
		state  libvirt.DomainState
		failed bool
	}{
		{libvirt.DOMAIN_RUNNING, false},
		{libvirt.DOMAIN_BLOCKED, false},
		{libvirt.DOMAIN_NOSTATE, false},
		{libvirt.DOMAIN_PAUSED, true}, // "KVM internal error … emulation failure"
		{libvirt.DOMAIN_CRASHED, true},
		{libvirt.DOMAIN_SHUTOFF, true},
		{libvirt.DOMAIN_SHUTDOWN, true},
	} {
		var g *guestFailure
		if err := bootFailure(tt.state, 1); (err != nil) != tt.failed || (err != nil && !errors.As(err, &g)) {
			t.Errorf("state %d: %v, want failed=%v", tt.state, err, tt.failed)
		}
	}
}

// states is an injected libvirt domain: the states it reports, one per read, the last repeated.
type states struct {
	seq []libvirt.DomainState
	err error
}

func (s *states) GetState() (libvirt.DomainState, int, error) {
	st := s.seq[0]
	if len(s.seq) > 1 {
		s.seq = s.seq[1:]
	}
	return st, 0, s.err
}

func TestWaitBoot(t *testing.T) {
	const running, paused = libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_PAUSED
	leaseAfter := func(n int) func() (string, error) {
		return func() (string, error) {
			if n--; n > 0 {
				return "", errors.New("no lease yet")
			}
			return "192.168.39.10", nil
		}
	}
	never := func() (string, error) { return "", nil }
	tests := []struct {
		name    string
		lease   func() (string, error)
		dom     *states // nil: no failure watch
		wantIP  string
		wantErr string // "failure", "timeout"
	}{
		{"an address", leaseAfter(3), &states{seq: []libvirt.DomainState{running}}, "192.168.39.10", ""},
		{"no watch", leaseAfter(2), nil, "192.168.39.10", ""},
		{"paused by QEMU while booting", never, &states{seq: []libvirt.DomainState{running, running, paused}}, "", "failure"},
		{"crashed", never, &states{seq: []libvirt.DomainState{libvirt.DOMAIN_CRASHED}}, "", "failure"},
		{"state unreadable is no verdict", leaseAfter(2), &states{seq: []libvirt.DomainState{paused}, err: errors.New("busy")}, "192.168.39.10", ""},
		{"stuck without a failure: the bounded wait ends", never, &states{seq: []libvirt.DomainState{running}}, "", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failed func() error
			if tt.dom != nil {
				failed = domainFailed(tt.dom)
			}
			ip, err := waitBoot(context.Background(), time.Millisecond, 200*time.Millisecond, tt.lease, failed)
			var g *guestFailure
			switch tt.wantErr {
			case "":
				if err != nil || ip != tt.wantIP {
					t.Errorf("ip %q, err %v; want %q", ip, err, tt.wantIP)
				}
			case "failure":
				if !errors.As(err, &g) {
					t.Errorf("err %v, want a guest failure", err)
				}
			case "timeout":
				if !errors.Is(err, errNoAddress) {
					t.Errorf("err %v, want errNoAddress", err)
				}
			}
		})
	}
}
