package start

import (
	"context"
	"errors"
	"strings"

	"mkube/pkg/addons"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

// driverStep resolves the driver, checks its health, and refuses — before anything is created or
// downloaded — a kubeconfig entry, container, volume, network or VM of this name that is not ours.
func driverStep(ctx context.Context, s *State) error {
	m, p := s.m, s.Profile
	entry, err := chooseDriver(ctx, m, s.opts.Driver, p, s.Existing)
	if err != nil {
		return err
	}
	p.Driver = entry.Name
	s.Entry = entry
	_, clientCert, _ := m.Credentials(p.Name)
	if err := kubeconfig.CheckOwned(m.KubeconfigPaths, p.Name, m.HomeID, clientCert); err != nil {
		return reason.New(reason.Conflict, err, "")
	}
	if s.Driver, err = m.NewDriver(entry, p.Name, p); err != nil {
		return err
	}
	if err := checkOwned(ctx, s.Driver); err != nil {
		return err
	}
	if err := checkHA(s); err != nil {
		return err
	}
	if err := otherDrivers(ctx, s); err != nil {
		return err
	}
	s.Addons = usableAddons(m, p)
	return nil
}

// chooseDriver resolves --driver, the profile's driver, or auto-selection, and checks its health.
func chooseDriver(ctx context.Context, m *cluster.Manager, flag string, p *config.Profile, existing bool) (driver.Entry, error) {
	name, why := p.Driver, "based on existing profile"
	if !existing {
		name, why = flag, "based on user configuration"
	}
	if name == "" {
		for k, v := range p.DriverOptions { // a bad value is the user's mistake, not a missing driver
			if o, ok := m.Drivers.Option(k); ok {
				if err := o.Check(v); err != nil {
					return driver.Entry{}, reason.New(reason.Usage, err, "")
				}
			}
		}
		c, err := m.Drivers.Choose(ctx, p.DriverOptions)
		if err != nil {
			return driver.Entry{}, reason.New(reason.DriverNotFound, err, "install Docker or Podman, or pass --driver")
		}
		if len(c.Others) > 0 {
			m.Out.Step(out.Sparkle, "Automatically selected the %s driver. Other choices: %s", c.Entry.Name, strings.Join(c.Others, ", "))
		} else {
			m.Out.Step(out.Sparkle, "Automatically selected the %s driver", c.Entry.Name)
		}
		for name, h := range c.Rejected {
			m.Out.V(1, "driver %s passed over: %s — %s", name, h.Problem, h.Fix)
		}
		return c.Entry, nil
	}
	e, ok := m.Drivers.Lookup(name)
	if !ok || !e.Supported {
		return e, reason.Errorf(reason.DriverUnsupported, "supported drivers: "+strings.Join(m.Drivers.Names(), ", "),
			"the driver %q is not supported on %s/%s", name, m.HostOS, m.HostArch)
	}
	settings, err := e.Settings(p.DriverOptions)
	if err != nil {
		return e, reason.New(reason.Usage, err, "")
	}
	h := e.Health(ctx, settings)
	if !h.Healthy {
		k := reason.ProviderNotRunning
		switch {
		case !h.Installed:
			k = reason.ProviderNotFound
		case h.Running:
			k = reason.ProviderPermission
		}
		return e, reason.Errorf(k, h.Fix, "%s", h.Problem)
	}
	m.Out.Step(out.Sparkle, "Using the %s driver %s", name, why)
	return e, nil
}

// ownerChecker is a driver that can tell, before it creates anything, whether every host object it
// would use for the profile (not only the machine) is free or already the profile's own.
type ownerChecker interface {
	CheckOwned(ctx context.Context) error
}

// checkOwned refuses a start whose machine — or, where the driver can tell, any object it would
// create — has the profile's name but not its mark. A driver without CheckOwned refuses a foreign
// machine in State.
func checkOwned(ctx context.Context, d driver.Driver) error {
	if c, ok := d.(ownerChecker); ok {
		if err := c.CheckOwned(ctx); err != nil {
			return cluster.MachineError(reason.ProviderError, err, "")
		}
		return nil
	}
	if _, err := d.State(ctx); errors.Is(err, driver.ErrNotOwned) {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	return nil
}

// usableAddons are the enabled addons whose images can be had. mkube's own images (mkube.local/…)
// come from the release registry or a mirror; a development build without either skips those
// addons with a warning instead of leaving a pod that can never pull its image.
func usableAddons(m *cluster.Manager, p *config.Profile) []addons.Addon {
	var usable []addons.Addon
	for _, a := range addons.Enabled(p.Addons) {
		if !cluster.AddonImagesAvailable(p, a) {
			m.Out.Warn("addon %s skipped: this development build has no registry for mkube's own images; start with --mirror=HOST/PATH or --image-repository=<mkube mirror> (make mirror-serve)", a.Name)
			continue
		}
		usable = append(usable, a)
	}
	return usable
}
