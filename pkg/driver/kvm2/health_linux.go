//go:build linux && cgo

package kvm2

import (
	"context"

	"libvirt.org/go/libvirt"

	"mkube/pkg/driver"
)

// Health connects to libvirt the way the driver will.
func Health(ctx context.Context, s driver.Settings) driver.Health {
	uri := s["kvm-qemu-uri"]
	if uri == "" {
		uri = DefaultURI
	}
	done := make(chan error, 1)
	go func() {
		c, err := libvirt.NewConnect(uri)
		if err == nil {
			_, err = c.GetVersion()
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return healthFrom(err)
	case <-ctx.Done():
		return healthFrom(ctx.Err())
	}
}

func newDriver(profile string, opts driver.Options) (driver.Driver, error) { return New(profile, opts) }
