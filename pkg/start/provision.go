package start

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"mkube/pkg/addons"
	"mkube/pkg/addons/apply"
	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/certs"
	"mkube/pkg/cluster"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

// params describe the cluster for kubeadm.
func (s *State) params() kubeadm.Params {
	p := s.Profile
	// With more nodes, the primary registers first, so the controller manager gives it the first
	// /24 of the pod network: its bridge takes that range before the node exists (podNetworkStep
	// checks it).
	first, _ := kubeadm.FirstNodeCIDR(p.PodCIDR)
	haNames, haIPs := s.haSANs()
	return kubeadm.Params{NodePodCIDR: first, MultiNode: len(p.Nodes) > 1, HA: p.HA, ControlPlaneIP: s.controlPlaneIP(),
		CgroupRoot: s.Cgroups.Root, CgroupV1: s.Cgroups.V1, CgroupDriver: s.Cgroups.Driver,
		Version: s.Version, ClusterName: p.Name, NodeName: p.Name, NodeIP: s.Endpoint.IP, APIServerPort: p.APIServerPort,
		PodCIDR: p.PodCIDR, ServiceCIDR: p.ServiceCIDR, DNSDomain: p.DNSDomain,
		ExtraConfig: p.ExtraConfig, ExtraNames: append(slices.Clone(p.APIServerNames), haNames...), ExtraIPs: append(slices.Clone(p.APIServerIPs), haIPs...),
	}
}

// pkiStep makes (or reuses) the shared CAs and this cluster's certificates, and maps them to their
// names under /etc/kubernetes/pki.
func pkiStep(_ context.Context, s *State) error {
	shared := s.m.Home.CertsDir()
	own, err := s.m.Home.ProfileDir(s.Profile.Name)
	if err != nil {
		return err
	}
	ca, err := certs.EnsureCA(certs.In(shared, "ca"), "mkubeCA")
	if err != nil {
		return err
	}
	proxyCA, err := certs.EnsureCA(certs.In(shared, "front-proxy-ca"), "mkubeFrontProxyCA")
	if err != nil {
		return err
	}
	dns, ips, err := kubeadm.SANs(s.params())
	if err != nil {
		return reason.New(reason.Usage, err, "check --apiserver-ips")
	}
	apiserver := certs.In(own, "apiserver")
	if _, err := ca.Ensure(apiserver, certs.Request{CommonName: "kube-apiserver", DNSNames: dns, IPs: ips, Server: true}); err != nil {
		return err
	}
	if _, err := ca.Ensure(certs.In(own, "client"), certs.Request{CommonName: "mkube-user", Organizations: []string{"system:masters"}}); err != nil {
		return err
	}
	if err := certs.EnsureKeyPair(filepath.Join(own, "sa.key"), filepath.Join(own, "sa.pub")); err != nil {
		return err
	}
	s.PKI = map[string]string{
		"ca.crt": ca.Cert, "ca.key": ca.Key,
		"front-proxy-ca.crt": proxyCA.Cert, "front-proxy-ca.key": proxyCA.Key,
		"apiserver.crt": apiserver.Cert, "apiserver.key": apiserver.Key,
		"sa.key": filepath.Join(own, "sa.key"), "sa.pub": filepath.Join(own, "sa.pub"),
	}
	if s.Profile.HA {
		// Every control plane's etcd trusts one CA: made here, copied to each (a single node's
		// kubeadm makes its own in the node).
		etcdCA, err := certs.EnsureCA(certs.In(own, "etcd-ca"), "etcd-ca")
		if err != nil {
			return err
		}
		s.PKI["etcd/ca.crt"], s.PKI["etcd/ca.key"] = etcdCA.Cert, etcdCA.Key
	}
	return nil
}

// provisionStep brings the control plane up with kubeadm (or back up after a stop).
func provisionStep(ctx context.Context, s *State) error {
	s.m.Out.Step(out.Docker, "Preparing Kubernetes %s on containerd ...", s.Version)
	img := &s.Images
	b := &kubeadm.Bootstrapper{Logf: func(f string, a ...any) { s.m.Out.V(1, f, a...) }}
	// The other nodes are prepared (runtime, images, binaries) while the control plane comes up:
	// only their join needs it. Their images go in after the primary's, beside its kubeadm init,
	// rather than competing with the primary's import, which the control plane waits for.
	g, gctx := errgroup.WithContext(ctx)
	primaryImages := make(chan struct{})
	for _, n := range s.Others {
		if n.Skip {
			continue
		}
		g.Go(func() error {
			c := s.workerCluster(gctx, n)
			c.ImagesAfter = primaryImages
			if err := b.PrepareJoin(gctx, n.Runner, c); err != nil {
				return reason.New(reason.K8sStart, fmt.Errorf("node %s: %w", n.Node.Name, err), "see `mkube logs -p "+s.Profile.Name+" --node "+n.Node.Name+"`")
			}
			return nil
		})
	}
	g.Go(func() error {
		c := kubeadm.Cluster{Params: s.params(), Binaries: s.Binaries, PKI: s.PKI, PauseImage: img.pause,
			ImagesDone: func() { close(primaryImages) }}
		img.controlPlane(gctx, &c)
		err := b.Provision(gctx, s.Runner, c)
		if err != nil {
			return reason.New(reason.K8sStart, err, "see `mkube logs -p "+s.Profile.Name+"`; `mkube delete -p "+s.Profile.Name+"` then start again if it persists")
		}
		return nil
	})
	return g.Wait()
}

// removedAddons renders the addons the user turned off, so a start deletes whatever of them an
// earlier start applied (`addons disable` on a stopped cluster).
func removedAddons(choices map[string]bool) (map[string][]byte, error) {
	removed := map[string][]byte{}
	for name, on := range choices {
		if on {
			continue
		}
		a, err := addons.Find(name)
		if err != nil {
			continue // an addon this version no longer has
		}
		if removed[name], err = addons.Render(a, addons.Values{}); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

// addonsStep removes what the addons the user turned off created (`addons disable` on a stopped
// cluster), and applies the enabled ones, from the host with server-side apply.
func addonsStep(ctx context.Context, s *State) error {
	applier, err := s.m.Applier(s.Profile.Name, s.Endpoint)
	if err != nil {
		return err
	}
	// After a restart the API server may still be coming up: the applier retries until this ends.
	ctx, cancel := context.WithTimeout(ctx, addonTimeout)
	defer cancel()
	removed, err := removedAddons(s.Profile.Addons)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(removed)) {
		if err := cluster.RemoveAddon(ctx, applier, s.Runner, name, removed[name]); err != nil {
			return reason.New(reason.K8sStart, err, "see `mkube logs -p "+s.Profile.Name+"`")
		}
	}
	if err := cluster.ApplyAddon(ctx, applier, s.Runner, apply.DefaultServiceAccountAddon, []byte(apply.DefaultServiceAccount)); err != nil {
		return reason.New(reason.K8sStart, err, "see `mkube logs -p "+s.Profile.Name+"`")
	}
	for _, a := range s.Addons {
		manifest, err := addons.Render(a, addons.Values{NodeIP: s.Endpoint.IP})
		if err != nil {
			return err
		}
		if err := cluster.ApplyAddon(ctx, applier, s.Runner, a.Name, manifest); err != nil {
			return reason.New(reason.K8sStart, err, "see `mkube logs -p "+s.Profile.Name+"`")
		}
	}
	return nil
}

// addonTimeout bounds applying the addons, retries included.
const addonTimeout = 3 * time.Minute

// kubeconfigStep points the user's kubeconfig at the cluster (and makes it current, unless
// --keep-context).
func kubeconfigStep(ctx context.Context, s *State) error {
	nodeCommand := s.opts.AddedNode != "" || s.opts.StartedNode != ""
	if err := s.m.UpdateKubeconfig(ctx, s.Profile, s.Endpoint, !s.opts.KeepContext && !nodeCommand); err != nil {
		return reason.New(reason.Config, err, "check that your kubeconfig is valid YAML")
	}
	return nil
}

// waitStep waits for what --wait names, up to --wait-timeout.
func waitStep(ctx context.Context, s *State) error {
	if len(s.WaitFor) == 0 {
		return nil
	}
	s.m.Out.Step(out.Verify, "Verifying Kubernetes components...")
	client, err := s.m.Client(s.Profile.Name, s.Endpoint)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.WaitTimeout)
	defer cancel()
	if err := kubeadm.Wait(wctx, client, s.nodeNames(), s.WaitFor, func(f string, a ...any) { s.m.Out.V(1, f, a...) }); err != nil {
		return reason.New(reason.K8sTimeout, err, "see `mkube logs -p "+s.Profile.Name+"`; a slow machine may need a longer --wait-timeout")
	}
	return nil
}

// doneStep says what the user got.
func doneStep(_ context.Context, s *State) error {
	if s.opts.AddedNode != "" {
		s.m.Out.Step(out.Surf, "Successfully added %s to %s!", s.opts.AddedNode, s.Profile.Name)
		return nil
	}
	if s.opts.StartedNode != "" {
		s.m.Out.Step(out.Surf, "Successfully started node %s!", s.opts.StartedNode)
		return nil
	}
	var names []string
	for _, a := range s.Addons {
		names = append(names, a.Name)
	}
	if len(names) > 0 {
		s.m.Out.Step(out.Star, "Enabled addons: %s", strings.Join(names, ", "))
	}
	if s.opts.KeepContext {
		s.m.Out.Step(out.Surf, "Done! The %q context was updated; the current context was kept (--keep-context)", s.Profile.Name)
	} else {
		s.m.Out.Step(out.Surf, "Done! kubectl is now configured to use %q cluster and %q namespace by default", s.Profile.Name, "default")
	}
	return nil
}
