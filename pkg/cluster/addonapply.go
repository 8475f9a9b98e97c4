package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"mkube/pkg/driver"
	"mkube/pkg/node"
)

// The node remembers which manifests of an addon were applied (their digest, in a marker in its
// state directory), so a restart does not apply them again, and an addon never applied on this
// node is not looked for when it is disabled. The marker lives in the node, with the cluster: a
// recreated node starts with none.
//
// Markers of mkube versions that applied addons with kubectl in the node were named addon-NAME:
// their objects carry no mkube.io/addon label, so the new name makes the first start with this
// version apply them again, which labels them.

func addonMarker(name string) string { return "addon-ssa-" + name }

func legacyAddonMarker(name string) string { return "addon-" + name }

func manifestDigest(manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return hex.EncodeToString(sum[:])
}

// ApplyAddon applies an addon's manifests with a, unless exactly these were applied on the node
// already.
func ApplyAddon(ctx context.Context, a Applier, r driver.Runner, name string, manifest []byte) error {
	digest := manifestDigest(manifest)
	if node.Marker(ctx, r, addonMarker(name)) == digest {
		return nil
	}
	if err := a.Apply(ctx, name, manifest); err != nil {
		return err // names the addon
	}
	return node.SetMarker(ctx, r, addonMarker(name), digest)
}

// RemoveAddon deletes what an addon created, if it was ever applied on the node.
func RemoveAddon(ctx context.Context, a Applier, r driver.Runner, name string, manifest []byte) error {
	current, legacy := node.Marker(ctx, r, addonMarker(name)) != "", node.Marker(ctx, r, legacyAddonMarker(name)) != ""
	if !current && !legacy {
		return nil
	}
	if !current {
		// Applied by an older mkube with kubectl: its objects carry no label for Remove to find
		// them by. Applying the same manifests first labels them.
		if err := a.Apply(ctx, name, manifest); err != nil {
			return err // names the addon
		}
	}
	if err := a.Remove(ctx, name, manifest); err != nil {
		return err
	}
	if err := node.RemoveMarker(ctx, r, legacyAddonMarker(name)); err != nil {
		return err
	}
	return node.RemoveMarker(ctx, r, addonMarker(name))
}
