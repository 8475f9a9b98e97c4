package docker

// Ownership: every object the driver touches carries the profile's mark.

import (
	"context"
	"fmt"
	"mkube/pkg/driver"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func (d *Driver) labels() map[string]string { return d.owner.Labels() }

// notOurs is the refusal for an object that has the profile's name but not this home's and
// profile's labels: mkube never reuses, stops or deletes it.
func (d *Driver) notOurs(kind, name string, labels map[string]string) error {
	other := ""
	if labels[driver.LabelCreatedBy] == "true" {
		other = "another mkube home's or profile's"
		if _, marked := labels[driver.LabelHome]; !marked {
			other = "made by an older mkube for another profile or home"
		}
	}
	return &driver.NotOwnedError{Kind: kind, Name: name, Other: other}
}

// CheckOwned says whether the container, volume and network of the profile's name are each either
// missing or this profile's: a start asks before it creates or downloads anything.
func (d *Driver) CheckOwned(ctx context.Context) error {
	if _, err := d.ownContainer(ctx); err != nil {
		return err
	}
	v, err := d.cli.VolumeInspect(ctx, d.volume(), client.VolumeInspectOptions{})
	switch {
	case err == nil && !d.owner.OwnsLabels(v.Volume.Labels):
		return d.notOurs(d.eng.Title+" volume", d.volume(), v.Volume.Labels)
	case err != nil && !cerrdefs.IsNotFound(err):
		return err
	}
	n, err := d.cli.NetworkInspect(ctx, d.network(), client.NetworkInspectOptions{})
	switch {
	case err == nil && n.Network.Name == d.network() && !d.owner.OwnsLabels(n.Network.Labels):
		return d.notOurs(d.eng.Title+" network", d.network(), n.Network.Labels)
	case err != nil && !cerrdefs.IsNotFound(err):
		return err
	}
	return nil
}

// ownContainer inspects the profile's container: (nil, nil) when there is none, an error when
// there is one that is not ours.
func (d *Driver) ownContainer(ctx context.Context) (*container.InspectResponse, error) {
	res, err := d.cli.ContainerInspect(ctx, d.container(), client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := res.Container
	// Docker also finds a container by a prefix of its ID: a profile named like one is not it.
	if strings.TrimPrefix(st.Name, "/") != d.container() {
		return nil, nil
	}
	if st.Config == nil || !d.owner.OwnsLabels(st.Config.Labels) {
		var labels map[string]string
		if st.Config != nil {
			labels = st.Config.Labels
		}
		return nil, d.notOurs(d.eng.Title+" container", d.container(), labels)
	}
	return &st, nil
}

func (d *Driver) removeOwned(ctx context.Context) error {
	if d.owner.HomeID == "" && !d.owner.Legacy {
		return nil // an unmarked driver owns nothing
	}
	if !d.primary() {
		// Another node's driver removes its own volume only: the network and the other nodes stay.
		v, err := d.cli.VolumeInspect(ctx, d.volume(), client.VolumeInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case !d.owner.OwnsLabels(v.Volume.Labels):
			return nil
		}
		if _, err := d.cli.VolumeRemove(ctx, d.volume(), client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
		return nil
	}
	// The primary's delete is the cluster's: every node container, volume and the network.
	// Listed by profile label, each then checked against the full mark (home ID, or a legacy
	// object for a legacy profile).
	mine := client.Filters{}.Add("label", driver.LabelProfile+"="+d.profile)
	cs, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: mine})
	if err != nil {
		return err
	}
	for _, c := range cs.Items {
		if !d.owner.OwnsLabels(c.Labels) {
			continue
		}
		if _, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	vs, err := d.cli.VolumeList(ctx, client.VolumeListOptions{Filters: mine})
	if err != nil {
		return err
	}
	for _, v := range vs.Items {
		if !d.owner.OwnsLabels(v.Labels) {
			continue
		}
		if _, err := d.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
	}
	ns, err := d.cli.NetworkList(ctx, client.NetworkListOptions{Filters: mine})
	if err != nil {
		return err
	}
	for _, n := range ns.Items {
		if !d.owner.OwnsLabels(n.Labels) {
			continue
		}
		if _, err := d.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing network %s: %w", n.Name, err)
		}
	}
	return nil
}
