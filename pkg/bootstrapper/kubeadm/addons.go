package kubeadm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"mkube/pkg/driver"
	"mkube/pkg/node"
)

// defaultServiceAccount is what the controller manager's service-account controller makes a few
// seconds after it starts; pods in "default" are refused until it exists. Applying the same object
// right away lets a user's first `kubectl run` work without waiting for that controller.
var defaultServiceAccount = []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n")

// addons applies each enabled addon's manifests and removes the disabled ones a start applied before.
func (b *Bootstrapper) addons(ctx context.Context, r driver.Runner, c Cluster) error {
	for name, m := range c.RemovedAddons {
		if err := RemoveAddon(ctx, r, name, m); err != nil {
			return err
		}
	}
	if err := ApplyAddon(ctx, r, "default-serviceaccount", defaultServiceAccount); err != nil {
		return err
	}
	for name, m := range c.Addons {
		if err := ApplyAddon(ctx, r, name, m); err != nil {
			return err
		}
	}
	return nil
}

func addonMarker(name string) string { return node.StateDir + "/addon-" + name }

// ApplyAddon applies an addon's manifests with the node's kubectl unless exactly these were applied
// already (a marker in the node's state directory holds their digest).
func ApplyAddon(ctx context.Context, r driver.Runner, name string, manifest []byte) error {
	sum := sha256.Sum256(manifest)
	digest := hex.EncodeToString(sum[:])
	if have, _ := node.Output(ctx, r, "cat", addonMarker(name)); string(bytes.TrimSpace([]byte(have))) == digest {
		return nil
	}
	if err := kubectlRetry(ctx, r, manifest, "apply", "-f", "-"); err != nil {
		return fmt.Errorf("addon %s: %w", name, err)
	}
	if _, err := node.Output(ctx, r, "mkdir", "-p", node.StateDir); err != nil {
		return err
	}
	return node.WriteBytes(ctx, r, addonMarker(name), 0o644, []byte(digest+"\n"))
}

// RemoveAddon deletes what an addon's manifests create, if a start or `addons enable` applied them.
func RemoveAddon(ctx context.Context, r driver.Runner, name string, manifest []byte) error {
	if _, err := node.Output(ctx, r, "test", "-e", addonMarker(name)); err != nil {
		return nil // never applied here
	}
	if err := kubectlRetry(ctx, r, manifest, "delete", "--ignore-not-found", "-f", "-"); err != nil {
		return fmt.Errorf("disabling addon %s: %w", name, err)
	}
	_, err := node.Output(ctx, r, "rm", "-f", addonMarker(name))
	return err
}

// kubectlRetry runs the node's kubectl on a manifest. After a restart the API server may still be
// coming up, so it retries until the context ends.
func kubectlRetry(ctx context.Context, r driver.Runner, manifest []byte, args ...string) error {
	args = append([]string{"kubectl", "--kubeconfig", adminConf}, args...)
	for delay := 200 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := r.Run(ctx, driver.Cmd{Args: args, Stdin: bytes.NewReader(manifest)})
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}
