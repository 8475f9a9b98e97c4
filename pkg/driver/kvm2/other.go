//go:build !linux || !cgo

package kvm2

import (
	"context"
	"errors"

	"mkube/pkg/driver"
)

const supported = false

// Health says the driver does not exist in this build.
func Health(context.Context, driver.Settings) driver.Health {
	return driver.Health{Problem: "the kvm2 driver needs Linux (and a build with cgo)", Fix: "use --driver=docker"}
}

func newDriver(string, driver.Options) (driver.Driver, error) {
	return nil, errors.New("the kvm2 driver is not in this build (Linux with cgo only)")
}
