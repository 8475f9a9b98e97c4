package cluster

import (
	"context"
	"errors"
	"os"

	"golang.org/x/sync/errgroup"

	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

// Stop halts a profile's node, keeping everything on it.
func (m *Manager) Stop(ctx context.Context, name string) error {
	// An unknown profile is refused before its lock file is made: bad input changes nothing.
	if _, err := m.loadProfile(name); err != nil {
		return err
	}
	unlock, err := m.LockProfile(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.loadProfile(name)
	if err != nil {
		return err
	}
	// The workers first, together; the control plane last, so they leave their API server in order.
	var g errgroup.Group
	for _, n := range p.Nodes[1:] {
		g.Go(func() error { return m.stopNode(ctx, p, n.Name) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := m.stopNode(ctx, p, p.Name); err != nil {
		return err
	}
	if p.HA {
		if err := m.stopLB(ctx, p); err != nil {
			return err
		}
	}
	if len(p.Nodes) == 1 {
		m.Out.Step(out.Stopped, "1 node stopped.")
	} else {
		m.Out.Step(out.Stopped, "%d nodes stopped.", len(p.Nodes))
	}
	return nil
}

// stopLB stops an --ha cluster's load balancer, after its nodes.
func (m *Manager) stopLB(ctx context.Context, p *config.Profile) error {
	d, err := m.driverFor(p)
	if err != nil {
		return err
	}
	defer d.Close()
	if lb, ok := d.(interface{ StopLB(context.Context) error }); ok {
		if err := lb.StopLB(ctx); err != nil {
			return MachineError(reason.GuestError, err, "")
		}
	}
	return nil
}

// stopNode halts one node of a profile.
func (m *Manager) stopNode(ctx context.Context, p *config.Profile, name string) error {
	d, err := m.nodeDriverFor(p, name)
	if err != nil {
		return err
	}
	defer d.Close()
	m.Out.Step(out.Stop, "Stopping node %q  ...", name)
	if n, _, _ := p.Node(name); p.HA && n.ControlPlane {
		m.drainLB(ctx, d, name)
	}
	if st, err := d.State(ctx); err == nil && st == driver.Running {
		// Stopping the kubelet first lets it wind pods down before systemd takes the node away.
		if r, err := d.Runner(ctx); err == nil {
			_ = node.StopKubelet(ctx, r)
			r.Close()
		}
	}
	if err := d.Stop(ctx); err != nil {
		return MachineError(reason.GuestError, err, "")
	}
	return nil
}

// drainLB takes a control plane out of an --ha cluster's load balancer (the drivers that run one),
// so clients are sent to the other control planes. A failure only costs a client a retry.
func (m *Manager) drainLB(ctx context.Context, d driver.Driver, name string) {
	if lb, ok := d.(interface {
		DrainLB(ctx context.Context, name string) error
	}); ok {
		if err := lb.DrainLB(ctx, name); err != nil {
			m.Out.V(1, "%v", err)
		}
	}
}

// Delete removes a profile's node, its kubeconfig entries and its state; the cache and the shared
// CA stay unless purge. A profile that does not exist still has any leftovers cleaned — only
// objects that carry this home's and this profile's mark: a user's own container, VM or
// kubeconfig entry of the same name is left alone.
func (m *Manager) Delete(ctx context.Context, name string, purgeHome bool) error {
	unlock, err := m.LockProfile(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.Home.Load(name)
	// Without the profile's record (never made, lost, corrupt) its driver is unknown: every
	// driver that answers on this host looks for machines with the profile's mark.
	var drivers []string
	if err == nil {
		drivers = []string{p.Driver}
	} else if c, err := m.Drivers.Choose(ctx, nil); err == nil {
		drivers = append([]string{c.Entry.Name}, c.Others...)
	}
	var notOurs error
	for i, driverName := range drivers {
		e, ok := m.Drivers.Lookup(driverName)
		if !ok || !e.Supported {
			continue
		}
		if i == 0 {
			m.Out.Step(out.Fire, "Deleting %q in %s ...", name, driverName)
		} else {
			m.Out.V(1, "looking for what %q left in %s", name, driverName)
		}
		if err := m.deleteMachines(ctx, e, name, p); err != nil {
			if !errors.Is(err, driver.ErrNotOwned) {
				return err
			}
			// A machine of that name that is not ours stays; mkube's own state still goes, and
			// the refusal (MK_CONFLICT) is the command's answer at the end.
			notOurs = reason.New(reason.Conflict, err, "")
		}
	}
	_, clientCert, _ := m.Credentials(name)
	left, err := kubeconfig.Remove(kubeconfig.WithWarnings(ctx, m.Out.Warn), m.KubeconfigPaths, name, m.HomeID, clientCert)
	if err != nil {
		return reason.New(reason.Config, err, "")
	}
	for _, l := range left {
		m.Out.Warn("Kubeconfig %s left as is: not created by this mkube profile", l)
	}
	if dir, err := m.Home.MachineDir(name); err == nil {
		if _, err := os.Stat(dir); err == nil {
			m.Out.Step(out.Fire, "Removing %s ...", dir)
		}
	}
	if err := m.Home.Remove(name); err != nil {
		return err
	}
	switch {
	case notOurs != nil:
		return notOurs
	case p == nil:
		m.Out.Step(out.Shrug, "Profile %q not found: cleaned up anything it left behind.", name)
	default:
		m.Out.Step(out.Skull, "Removed all traces of the %q cluster.", name)
	}
	if purgeHome {
		return m.purge()
	}
	return nil
}

// deleteMachines removes every machine of a profile (p nil: a profile without a record) that
// driver e made: the other nodes first, then the primary, whose delete removes what they shared.
// A primary that is not ours is a driver.ErrNotOwned.
func (m *Manager) deleteMachines(ctx context.Context, e driver.Entry, name string, p *config.Profile) error {
	d, err := m.NewDriver(e, name, p)
	if err != nil && p != nil && len(p.DriverOptions) > 0 {
		// Settings a newer mkube refuses (a profile from an older one) must not keep the
		// profile from being deleted: the driver's defaults find what carries its mark.
		q := *p
		q.DriverOptions = nil
		d, err = m.NewDriver(e, name, &q)
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if p != nil {
		for _, n := range p.Nodes[1:] {
			if err := m.deleteMachine(ctx, e, p, n.Name); err != nil {
				return err
			}
		}
	}
	if err := d.Delete(ctx); err != nil {
		if errors.Is(err, driver.ErrNotOwned) {
			return err
		}
		return MachineError(reason.GuestError, err, "")
	}
	return nil
}

// deleteMachine removes one node's machine (not what the nodes share).
func (m *Manager) deleteMachine(ctx context.Context, e driver.Entry, p *config.Profile, name string) error {
	d, err := m.NewNodeDriver(e, p.Name, name, p)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Delete(ctx); err != nil && !errors.Is(err, driver.ErrNotOwned) {
		return MachineError(reason.GuestError, err, "")
	}
	return nil
}

// purge removes $MKUBE_HOME, only when it carries mkube's marker file.
func (m *Manager) purge() error {
	if err := m.Home.Purge(); err != nil {
		return reason.New(reason.Config, err, "remove it yourself if you are sure")
	}
	m.Out.Step(out.Skull, "Successfully purged mkube directory located at - [%s]", m.Home)
	return nil
}

// MachineError turns a driver's failure into a user-facing one: a host object that is not this
// profile's is a conflict the user resolves (MK_CONFLICT), anything else is of kind k.
func MachineError(k reason.Kind, err error, advice string) error {
	if errors.Is(err, driver.ErrNotOwned) {
		return reason.New(reason.Conflict, err, "")
	}
	return reason.New(k, err, advice)
}

// DeleteAll deletes every profile.
func (m *Manager) DeleteAll(ctx context.Context, purge bool) error {
	names, err := m.Home.List()
	if err != nil {
		return err
	}
	// Every profile is tried, as minikube does: one that cannot be deleted does not keep the
	// others alive. The first failure is the command's answer; the others are warnings.
	var first error
	for _, n := range names {
		if err := m.Delete(ctx, n, false); err != nil {
			if first == nil {
				first = err
			} else {
				m.Out.Warn("deleting %q: %v", n, err)
			}
		}
	}
	if first != nil {
		return first
	}
	m.Out.Step(out.Fire, "Successfully deleted all profiles")
	if purge {
		return m.purge()
	}
	return nil
}
