// Package bootstrapper is the seam between mkube and what turns a booted machine into a Kubernetes
// control plane. The kubeadm package is the implementation.
package bootstrapper

import (
	"context"

	"mkube/pkg/driver"
)

// Bootstrapper provisions Kubernetes in a machine through its Runner.
type Bootstrapper[C any] interface {
	// Provision brings the control plane up, or back up after a stop; safe to re-run after a crash.
	Provision(ctx context.Context, r driver.Runner, cluster C) error
}
