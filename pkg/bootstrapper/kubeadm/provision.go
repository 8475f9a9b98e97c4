package kubeadm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"mkube/pkg/cache"
	"mkube/pkg/driver"
	"mkube/pkg/node"
)

// Paths inside the node.
const (
	configPath = node.StateDir + "/kubeadm.yaml"
	doneMarker = node.StateDir + "/kubeadm-init-done"
	cniConf    = "/etc/cni/net.d/10-mkube-bridge.conflist"
	// pkiMarker holds the digest of the certificates copied in; kubeadm reset removes it with them.
	pkiMarker = "/etc/kubernetes/pki/.mkube-digest"
	adminConf = "/etc/kubernetes/admin.conf"
)

// Cluster is everything Provision needs from the host.
type Cluster struct {
	Params   Params
	Binaries node.Binaries
	// PKI maps file names under /etc/kubernetes/pki to host files (ca.crt, ca.key, apiserver.crt, …).
	PKI map[string]string
	// ImagesAfter, when set, holds this node's image import back until it is closed: a worker's
	// waits for the control plane's, which is on the start's critical path, so the two do not
	// share the CPU. ImagesDone, when set, is called once this node's images are in.
	ImagesAfter <-chan struct{}
	ImagesDone  func()
	// Images writes the preload archive; ImagesDigest fingerprints it, so a node that already holds
	// exactly these images skips the import.
	Images       func(w io.Writer) error
	ImagesDigest string
	// ExtraImages are the user's cached images: nothing in the control plane needs them, so they
	// load while kubeadm brings it up. Nil when there are none.
	ExtraImages       func(w io.Writer) error
	ExtraImagesDigest string
	PauseImage        string
}

// Bootstrapper provisions with kubeadm.
type Bootstrapper struct {
	// Logf tells step timings at -v 1; nil says nothing.
	Logf func(format string, args ...any)
}

// Provision brings the control plane up. Every step checks what is already in place, so running it
// again — after a stop, a crash or Ctrl-C — finishes the job instead of failing.
func (b *Bootstrapper) Provision(ctx context.Context, r driver.Runner, c Cluster) error {
	return b.provision(ctx, r, c, b.recoverInit, b.controlPlane)
}

// provision prepares a node (containerd, recovery of an interrupted run, images ∥ files copied in)
// and then runs last: kubeadm init, or join (nil: only prepare).
func (b *Bootstrapper) provision(ctx context.Context, r driver.Runner, c Cluster, recover, last func(context.Context, driver.Runner, Cluster) error) error {
	type step struct {
		name string
		fn   func(context.Context, driver.Runner, Cluster) error
	}
	do := func(ctx context.Context, steps ...step) error {
		for _, s := range steps {
			start := time.Now()
			if err := s.fn(ctx, r, c); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if b.Logf != nil {
				b.Logf("step %s took %s", s.name, time.Since(start).Round(time.Millisecond))
			}
		}
		return nil
	}
	if err := do(ctx, step{"container runtime", func(ctx context.Context, r driver.Runner, c Cluster) error {
		return node.EnsureContainerd(ctx, r, c.PauseImage, c.Params.CgroupDriver)
	}}, step{"recover", recover}); err != nil {
		return err
	}
	// The image stream is the longest step and needs only containerd: the other preparations
	// (files copied into the node) run beside it.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if c.ImagesAfter != nil {
			select {
			case <-c.ImagesAfter:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		err := do(gctx, step{"images", func(ctx context.Context, r driver.Runner, c Cluster) error {
			return node.ImportOnce(ctx, r, "preload.digest", c.ImagesDigest, c.Images)
		}})
		if err == nil && c.ImagesDone != nil {
			c.ImagesDone()
		}
		return err
	})
	g.Go(func() error {
		return do(gctx, step{"hosts", func(ctx context.Context, r driver.Runner, c Cluster) error {
			return node.SetHost(ctx, r, c.Params.controlPlaneIP(), ControlPlaneHost)
		}}, step{"binaries", func(ctx context.Context, r driver.Runner, c Cluster) error {
			return node.InstallBinaries(ctx, r, c.Params.Version.String(), c.Binaries)
		}}, step{"certificates", b.pki}, step{"cni", b.cni})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	extra := make(chan error, 1)
	go func() {
		if c.ExtraImages == nil {
			extra <- nil
			return
		}
		extra <- do(ctx, step{"cached images", func(ctx context.Context, r driver.Runner, c Cluster) error {
			return node.ImportOnce(ctx, r, "preload-extra.digest", c.ExtraImagesDigest, c.ExtraImages)
		}})
	}()
	var err error
	if last != nil {
		err = do(ctx, step{"control plane", last})
	}
	if xerr := <-extra; err == nil {
		err = xerr
	}
	return err
}

// pki installs the host-made certificates where kubeadm looks for them, only when they changed:
// rewriting them while the kubelet starts would make it see them missing.
func (b *Bootstrapper) pki(ctx context.Context, r driver.Runner, c Cluster) error {
	names := make([]string, 0, len(c.PKI))
	for name := range c.PKI {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		sum, err := cache.Digest(c.PKI[name])
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s=%s\n", name, sum)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if have, _ := node.Output(ctx, r, "cat", pkiMarker); strings.TrimSpace(have) == digest {
		return nil
	}
	for _, name := range names {
		src := c.PKI[name]
		mode := int64(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := node.CopyFile(ctx, r, "/etc/kubernetes/pki/"+name, mode, src); err != nil {
			return err
		}
	}
	return node.WriteBytes(ctx, r, pkiMarker, 0o644, []byte(digest+"\n"))
}

// cni sets up the node's pod network. One node: a bridge on the whole pod network, masquerading
// what leaves it (the bridge plugin's own rules, made with each pod). More nodes: a bridge on the
// node's own pod range (nodes route each other's ranges: SetRoutes), and one masquerade rule for
// what leaves the cluster's pod network, so traffic between pods keeps the pods' addresses, as
// NetworkPolicy needs. That rule lives in the node's network namespace, which a container node
// gets anew at every start: every start sets it.
func (b *Bootstrapper) cni(ctx context.Context, r driver.Runner, c Cluster) error {
	if err := DropStrayServiceTraffic(ctx, r, c.Params.ServiceCIDR); err != nil {
		return err
	}
	if !c.Params.MultiNode {
		return WriteCNIConfig(ctx, r, c.Params.PodCIDR, true)
	}
	if err := Masquerade(ctx, r, c.Params.PodCIDR); err != nil {
		return err
	}
	if c.Params.NodePodCIDR == "" {
		return nil // known once the node is registered: the start writes it then
	}
	return WriteCNIConfig(ctx, r, c.Params.NodePodCIDR, false)
}

// controlPlane runs kubeadm init the first time; after that the kubelet, enabled in the node,
// brings the static pods back by itself, and this only makes sure it runs.
func (b *Bootstrapper) controlPlane(ctx context.Context, r driver.Runner, c Cluster) error {
	if _, err := node.Output(ctx, r, "test", "-f", doneMarker); err == nil {
		return node.StartKubelet(ctx, r)
	}
	err := b.init(ctx, r, c)
	exit := retryable(ctx, err)
	if exit == nil {
		return err
	}
	// On a slow or busy host (two control planes under software emulation) an init sometimes fails
	// where the next one on a clean node succeeds, as minikube also finds: reset the node and try
	// once more. The reset empties /etc/kubernetes/pki, so the host's certificates go back in first.
	if b.Logf != nil {
		b.Logf("kubeadm init failed; resetting the node and trying once more. Its output:\n%s", tail(exit.Stderr, 30))
	}
	if rerr := reset(ctx, r); rerr != nil {
		return fmt.Errorf("%w\n(the reset before a second try failed too: %v)", err, rerr)
	}
	if err := b.pki(ctx, r, c); err != nil {
		return err
	}
	return b.init(ctx, r, c)
}

// retryable is kubeadm's exit when a failed init may succeed on a reset node, else nil: kubeadm
// itself failed in one of its phases (not on its configuration, not a later command of ours), and
// the kubelet ran — a kubelet that never became healthy fails the same way again, only 10 minutes
// later.
func retryable(ctx context.Context, err error) *driver.ExitError {
	var exit *driver.ExitError
	if err == nil || ctx.Err() != nil || !errors.As(err, &exit) || len(exit.Args) < 2 || exit.Args[0] != "kubeadm" || exit.Args[1] != "init" {
		return nil
	}
	if !strings.Contains(initFailure(exit.Stderr), "error execution phase") || strings.Contains(exit.Stderr, "waiting for the kubelet to start") {
		return nil
	}
	return exit
}

// init runs kubeadm init once and marks the node done when it succeeds.
func (b *Bootstrapper) init(ctx context.Context, r driver.Runner, c Cluster) error {
	cfg, err := GenerateConfig(c.Params)
	if err != nil {
		return err
	}
	if err := node.WriteBytes(ctx, r, configPath, 0o644, cfg); err != nil {
		return err
	}
	flags, err := KubeadmFlags(c.Params.ExtraConfig)
	if err != nil {
		return err
	}
	defer killKubeadmIfCancelled(ctx, r)
	args := append([]string{"kubeadm", "init", "--config", configPath}, flags...)
	if _, err := node.Output(ctx, r, args...); err != nil {
		var exit *driver.ExitError
		if errors.As(err, &exit) {
			if why := initFailure(exit.Stderr); why != "" {
				// The user's one line says why kubeadm gave up; the whole output stays in the details.
				return fmt.Errorf("kubeadm init: %s\n%w", why, err)
			}
		}
		return err
	}
	_, err = node.Output(ctx, r, "touch", doneMarker)
	return err
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// initFailure is the line of kubeadm's output that says why it gave up ("error execution phase
// wait-control-plane: …"), or "" when there is none.
func initFailure(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "error execution phase") || strings.HasPrefix(l, "error: ") {
			return l
		}
	}
	return ""
}

// killKubeadmIfCancelled ends kubeadm in the node when ctx was cancelled (Ctrl-C during init,
// join or reset): a runner stops waiting, but the process in the node goes on. It uses a context
// of its own, since ctx is done.
func killKubeadmIfCancelled(ctx context.Context, r driver.Runner) {
	if ctx.Err() == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = killKubeadm(cctx, r)
}

// killKubeadm ends every kubeadm process in the node (found through /proc: the node needs no procps).
func killKubeadm(ctx context.Context, r driver.Runner) error {
	_, err := node.Shell(ctx, r, `for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = kubeadm ] && kill -9 "${p#/proc/}" 2>/dev/null; done; true`)
	return err
}

// recoverInit clears what an interrupted start left in the node before anything is copied in: a
// kubeadm still running (SIGKILL leaves no time to end it: it would race this start), and the
// manifests and etcd data of an init that never finished. It runs before the certificates are
// copied because `kubeadm reset` empties /etc/kubernetes/pki: after the copy it would make the
// next init mint a CA of its own, which nothing on the host trusts.
func (b *Bootstrapper) recoverInit(ctx context.Context, r driver.Runner, _ Cluster) error {
	if _, err := node.Output(ctx, r, "test", "-f", doneMarker); err == nil {
		return nil
	}
	if err := killKubeadm(ctx, r); err != nil {
		return err
	}
	if _, err := node.Shell(ctx, r, "ls /etc/kubernetes/manifests/*.yaml >/dev/null 2>&1"); err != nil {
		return nil
	}
	return reset(ctx, r)
}

// reset undoes a kubeadm init (manifests, etcd data, kubelet files, /etc/kubernetes/pki).
func reset(ctx context.Context, r driver.Runner) error {
	// The certificates' marker goes first: a reset cut short could leave it while the CA is gone,
	// and the next start would then skip the copy and let kubeadm mint a CA the host does not trust.
	if _, err := node.Output(ctx, r, "rm", "-f", pkiMarker); err != nil {
		return err
	}
	defer killKubeadmIfCancelled(ctx, r)
	_, err := node.Output(ctx, r, "kubeadm", "reset", "--force", "--cri-socket", "unix:///run/containerd/containerd.sock")
	return err
}
