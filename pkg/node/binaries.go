package node

import (
	"context"
	"strings"

	"mkube/pkg/cache"
	"mkube/pkg/driver"
)

// Binaries are the Kubernetes programs the node runs, by name (kubeadm, kubelet, kubectl), as
// host paths; each has its verified digest in PATH.sha256 beside it (the cache's rule).
type Binaries map[string]string

// BinaryNames are the Kubernetes programs a node gets, in the order they are fetched, copied and
// fingerprinted.
var BinaryNames = []string{"kubeadm", "kubelet", "kubectl"}

// InstallBinaries copies the binaries of version into BinDir, unless exactly these are there.
func InstallBinaries(ctx context.Context, r driver.Runner, version string, b Binaries) error {
	want := version
	for _, n := range BinaryNames {
		sum, err := cache.Digest(b[n])
		if err != nil {
			return err
		}
		want += " " + n + "=" + sum
	}
	marker := BinDir + "/.mkube-binaries"
	if have, _ := Output(ctx, r, "cat", marker); strings.TrimSpace(have) == want {
		return nil
	}
	for _, n := range BinaryNames {
		if err := CopyFile(ctx, r, BinDir+"/"+n, 0o755, b[n]); err != nil {
			return err
		}
	}
	return WriteBytes(ctx, r, marker, 0o644, []byte(want+"\n"))
}
