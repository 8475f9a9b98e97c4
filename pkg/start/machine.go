package start

import (
	"context"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"mkube/pkg/cluster"
	"mkube/pkg/driver"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/ssh"
)

// sharedPreparer is a driver that can make what a profile's machines share (docker: the
// profile's network) before any of them, so that the machines can then be created together.
type sharedPreparer interface {
	PrepareShared(ctx context.Context) error
}

// machinesStep brings up the profile's machines: the primary and the others together where the
// driver makes what they share first, else the primary, then the others.
func machinesStep(ctx context.Context, s *State) error {
	sp, ok := s.Driver.(sharedPreparer)
	if !ok || len(s.Others) == 0 {
		if err := machineStep(ctx, s); err != nil {
			return err
		}
		return otherMachinesStep(ctx, s)
	}
	// The login key is made once, before the machines that trust it.
	key, err := s.m.MachineKey(s.Profile.Name)
	if err != nil {
		return err
	}
	if _, _, err := ssh.EnsureKey(filepath.Dir(key)); err != nil {
		return err
	}
	if err := sp.PrepareShared(ctx); err != nil {
		return cluster.MachineError(reason.GuestError, err, "`mkube delete -p "+s.Profile.Name+"` and start again if it persists")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return machineStep(gctx, s) })
	g.Go(func() error { return otherMachinesStep(gctx, s) })
	return g.Wait()
}

// machineStep creates the node, or starts (or updates) the existing one, and opens a runner into it.
func machineStep(ctx context.Context, s *State) error {
	m, p, d := s.m, s.Profile, s.Driver
	st, err := d.State(ctx)
	if err != nil {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	key, err := m.MachineKey(p.Name)
	if err != nil {
		return err
	}
	_, pub, err := ssh.EnsureKey(filepath.Dir(key))
	if err != nil {
		return err
	}
	what := "container"
	switch {
	case s.Entry.ISO:
		what = "VM"
	case s.Entry.NodeFiles:
		what = "machine"
	}
	m.Out.Step(out.ThumbsUp, "Starting %q primary control-plane node in %q cluster", p.Name, p.Name)
	switch st {
	case driver.Nonexistent:
		switch {
		case s.Entry.ISO:
			m.Out.Step(out.Fire, "Creating %s VM (CPUs=%d, Memory=%dMB, Disk=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB, p.DiskMB)
		case s.Entry.NodeFiles:
			m.Out.Step(out.Fire, "Installing the container runtime on the %s machine ...", p.Driver)
		default:
			m.Out.Step(out.Fire, "Creating %s container (CPUs=%d, Memory=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB)
		}
		// A new machine has new host keys; a machine that was there before mkube (ssh) keeps its
		// own, pinned when the driver first reached it.
		if !s.Entry.NodeFiles {
			if err := ssh.ForgetHostKey(key); err != nil {
				return err
			}
		}
		image := p.BaseImage
		if s.Entry.ISO {
			image = s.ISO
		}
		err = d.Create(ctx, driver.Spec{Name: p.Name, CPUs: p.CPUs, MemoryMB: p.MemoryMB, DiskMB: p.DiskMB, Image: image,
			APIServerPort: p.APIServerPort, SSHPublicKey: pub, NodeFiles: s.NodeFiles})
	case driver.Running:
		m.Out.Step(out.Running, "Updating the running %s %q %s ...", p.Driver, p.Name, what)
		err = d.Start(ctx)
	default:
		m.Out.Step(out.Restart, "Restarting existing %s %s for %q ...", p.Driver, what, p.Name)
		err = d.Start(ctx)
	}
	if err != nil {
		return cluster.MachineError(reason.GuestError, err, "`mkube delete -p "+p.Name+"` and start again if it persists")
	}
	if s.Endpoint, err = d.Endpoint(ctx); err != nil {
		return reason.New(reason.GuestError, err, "")
	}
	if s.Runner, err = d.Runner(ctx); err != nil {
		return err
	}
	if s.Endpoint.SSHKey != "" {
		return nil // the user's own machine and login: mkube adds no key of its own there
	}
	return node.AuthorizeKey(ctx, s.Runner, pub)
}

// nodeFactsStep learns what only the node can tell: its cgroups, and — the first time a version
// starts on this host — the images that version's kubeadm runs, asked of the node's own kubeadm.
func nodeFactsStep(ctx context.Context, s *State) error {
	var err error
	if s.Cgroups, err = node.CgroupFacts(ctx, s.Runner); err != nil {
		return err
	}
	if s.ImageList != nil {
		return nil
	}
	if err := node.InstallBinaries(ctx, s.Runner, s.Version.String(), s.Binaries); err != nil {
		return err
	}
	refs, err := node.KubeadmImages(ctx, s.Runner, s.Version)
	if err != nil {
		return reason.New(reason.ImageCache, err, "")
	}
	return s.setImageList(refs)
}
