package start

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/netpol"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/ssh"
)

// NodeState is a node other than the primary during a start: a worker that joins the cluster.
type NodeState struct {
	Node     config.Node
	Ordinal  int // its place in the profile's nodes: 2, 3, …
	Driver   driver.Driver
	Endpoint driver.Endpoint
	Runner   driver.Runner
	Cgroups  node.Cgroups
	// Skip: a stopped node this start leaves stopped (Options.OnlyNode names another).
	Skip bool
}

func (n *NodeState) close() {
	if n.Runner != nil {
		n.Runner.Close()
	}
	if n.Driver != nil {
		n.Driver.Close()
	}
}

// otherDrivers builds the drivers of the profile's other nodes, each checked like the primary's.
func otherDrivers(ctx context.Context, s *State) error {
	for i, n := range s.Profile.Nodes[1:] {
		d, err := s.m.NewNodeDriver(s.Entry, s.Profile.Name, n.Name, s.Profile)
		if err != nil {
			return err
		}
		s.Others = append(s.Others, &NodeState{Node: n, Ordinal: i + 2, Driver: d})
		if err := checkOwned(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// otherMachinesStep creates (or starts) the other nodes' machines, in parallel, and opens a
// runner into each.
func otherMachinesStep(ctx context.Context, s *State) error {
	if len(s.Others) == 0 {
		return nil
	}
	key, err := s.m.MachineKey(s.Profile.Name)
	if err != nil {
		return err
	}
	_, pub, err := ssh.EnsureKey(filepath.Dir(key))
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range s.Others {
		g.Go(func() error { return otherMachine(gctx, s, n, pub) })
	}
	return g.Wait()
}

func otherMachine(ctx context.Context, s *State, n *NodeState, pub string) error {
	m, p, d := s.m, s.Profile, n.Driver
	st, err := d.State(ctx)
	if err != nil {
		return cluster.MachineError(reason.ProviderError, err, "")
	}
	if st != driver.Running && st != driver.Nonexistent && s.opts.OnlyNode != "" && s.opts.OnlyNode != n.Node.Name {
		n.Skip = true
		return nil
	}
	what := "worker"
	if n.Node.ControlPlane {
		what = "control-plane"
	}
	m.Out.Step(out.ThumbsUp, "Starting %q %s node in %q cluster", n.Node.Name, what, p.Name)
	switch st {
	case driver.Nonexistent:
		image := p.BaseImage
		if s.Entry.ISO {
			image = s.ISO
			m.Out.Step(out.Fire, "Creating %s VM (CPUs=%d, Memory=%dMB, Disk=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB, p.DiskMB)
		} else {
			m.Out.Step(out.Fire, "Creating %s container (CPUs=%d, Memory=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB)
		}
		// A new machine has new host keys.
		known, err := m.KnownHostsFile(p.Name, n.Node.Name)
		if err != nil {
			return err
		}
		if err := ssh.ForgetKnownHosts(known); err != nil {
			return err
		}
		err = d.Create(ctx, driver.Spec{Name: p.Name, Ordinal: n.Ordinal, CPUs: p.CPUs, MemoryMB: p.MemoryMB, DiskMB: p.DiskMB,
			Image: image, SSHPublicKey: pub})
	case driver.Running:
		err = d.Start(ctx)
	default:
		what := "container"
		if s.Entry.ISO {
			what = "VM"
		}
		m.Out.Step(out.Restart, "Restarting existing %s %s for %q ...", p.Driver, what, n.Node.Name)
		err = d.Start(ctx)
	}
	if err != nil {
		return cluster.MachineError(reason.GuestError, fmt.Errorf("node %s: %w", n.Node.Name, err), "`mkube delete -p "+p.Name+"` and start again if it persists")
	}
	if n.Endpoint, err = d.Endpoint(ctx); err != nil {
		return reason.New(reason.GuestError, err, "")
	}
	if n.Runner, err = d.Runner(ctx); err != nil {
		return err
	}
	if n.Cgroups, err = node.CgroupFacts(ctx, n.Runner); err != nil {
		return err
	}
	return node.AuthorizeKey(ctx, n.Runner, pub)
}

// paramsFor describes a joining node to kubeadm: its own name, address and cgroups, the primary's
// address for the API server.
func (s *State) paramsFor(n *NodeState) kubeadm.Params {
	p := s.params()
	p.NodeName, p.NodeIP, p.ControlPlane = n.Node.Name, n.Endpoint.IP, n.Node.ControlPlane
	p.NoWorkloads = n.Node.ControlPlane && !n.Node.Worker
	p.CgroupRoot, p.CgroupV1, p.CgroupDriver = n.Cgroups.Root, n.Cgroups.V1, n.Cgroups.Driver
	p.NodePodCIDR = "" // the controller manager gives it one when it registers
	return p
}

// workerCluster is what kubeadm needs to prepare and join a worker: the worker's images only.
func (s *State) workerCluster(ctx context.Context, n *NodeState) kubeadm.Cluster {
	img := &s.Images
	c := kubeadm.Cluster{
		Params: s.paramsFor(n), Binaries: s.Binaries,
		Images: img.writer(ctx, img.workerRefs), ImagesDigest: img.workerDigest, PauseImage: img.pause,
		ExtraImages: img.writer(ctx, img.extra), ExtraImagesDigest: img.extraDigest,
	}
	if n.Node.ControlPlane { // an --ha cluster's: the cluster's certificates and every image
		c.PKI = s.PKI
		img.controlPlane(ctx, &c)
	}
	return c
}

// joinStep brings the other nodes into the cluster with kubeadm join, in parallel, with one
// short-lived token; nodes that joined before only get their kubelet started.
func joinStep(ctx context.Context, s *State) error {
	if len(s.Others) == 0 {
		return nil
	}
	client, err := s.m.Client(s.Profile.Name, s.Endpoint)
	if err != nil {
		return err
	}
	b := &kubeadm.Bootstrapper{Logf: func(f string, a ...any) { s.m.Out.V(1, f, a...) }}
	// Nodes that joined before only need their kubelet, and an --ha cluster's API servers need
	// the other control planes' etcd members: start them before asking the API anything.
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range s.Others {
		if !n.Skip && kubeadm.Joined(ctx, n.Runner) {
			g.Go(func() error { return b.JoinPrepared(gctx, n.Runner, s.workerCluster(gctx, n), kubeadm.JoinToken{}) })
		}
	}
	if err := g.Wait(); err != nil {
		return reason.New(reason.K8sStart, err, "see `mkube logs -p "+s.Profile.Name+"`")
	}
	// After a restart the API server (behind a load balancer) may still be coming up.
	wctx, cancel := context.WithTimeout(ctx, s.opts.waitTimeout())
	defer cancel()
	if err := kubeadm.Wait(wctx, client, nil, []string{kubeadm.WaitAPIServer}, func(f string, a ...any) { s.m.Out.V(1, f, a...) }); err != nil {
		return reason.New(reason.K8sTimeout, err, "see `mkube logs -p "+s.Profile.Name+"`")
	}
	if err := forgetRemovedNodes(ctx, s, client); err != nil {
		return err
	}
	var token kubeadm.JoinToken
	for _, n := range s.Others {
		if n.Skip || kubeadm.Joined(ctx, n.Runner) {
			continue
		}
		// A join cut short may have registered the node: kubeadm refuses a name a Ready node has.
		if err := kubeadm.DeleteNode(ctx, client, n.Node.Name); err != nil {
			return err
		}
		if token.Token == "" {
			if token, err = kubeadm.NewJoinToken(ctx, client, s.PKI["ca.crt"], time.Now()); err != nil {
				return reason.New(reason.K8sStart, err, "")
			}
		}
	}
	join := func(ctx context.Context, n *NodeState) error {
		if token.Token != "" && !kubeadm.Joined(ctx, n.Runner) {
			what := "a worker"
			if n.Node.ControlPlane {
				what = "a control plane"
			}
			s.m.Out.Step(out.Link, "Joining %q to the cluster as %s ...", n.Node.Name, what)
		}
		if err := b.JoinPrepared(ctx, n.Runner, s.workerCluster(ctx, n), token); err != nil {
			return reason.New(reason.K8sStart, fmt.Errorf("node %s: %w", n.Node.Name, err),
				"see `mkube logs -p "+s.Profile.Name+" --node "+n.Node.Name+"`; `mkube delete -p "+s.Profile.Name+"` then start again if it persists")
		}
		return nil
	}
	// Control planes one at a time (etcd takes one new member at a time), then the workers together.
	for _, n := range s.Others {
		if !n.Skip && n.Node.ControlPlane {
			if err := join(ctx, n); err != nil {
				return err
			}
		}
	}
	g, gctx = errgroup.WithContext(ctx)
	for _, n := range s.Others {
		if !n.Skip && !n.Node.ControlPlane {
			g.Go(func() error { return join(gctx, n) })
		}
	}
	return g.Wait()
}

// podNetworkStep connects the nodes' pod networks once each node has its pod range: every node's
// bridge on its own range, and on every node a route to each other node's range. One node needs
// only its bridge, which provision configured.
func podNetworkStep(ctx context.Context, s *State) error {
	if len(s.Others) == 0 {
		return nil
	}
	client, err := s.m.Client(s.Profile.Name, s.Endpoint)
	if err != nil {
		return err
	}
	type member struct {
		name, ip, cidr string
		r              driver.Runner
	}
	members := []*member{{name: s.Profile.Name, ip: s.Endpoint.IP, r: s.Runner}}
	for _, n := range s.Others {
		if n.Skip {
			continue // its routes go until it starts again, and it gets theirs then
		}
		members = append(members, &member{name: n.Node.Name, ip: n.Endpoint.IP, r: n.Runner})
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, mb := range members {
		var last error
		err := wait.PollUntilContextCancel(wctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, mb.name, metav1.GetOptions{})
			if err != nil {
				last = err
				return false, nil
			}
			mb.cidr = podCIDR(n)
			return mb.cidr != "", nil
		})
		if err != nil {
			return reason.New(reason.K8sStart, fmt.Errorf("node %s has no pod range from the controller manager (%v): %w", mb.name, last, err), "see `mkube logs -p "+s.Profile.Name+"`")
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, mb := range members {
		var routes []kubeadm.Route
		for _, o := range members {
			if o != mb {
				routes = append(routes, kubeadm.Route{PodCIDR: o.cidr, Via: o.ip})
			}
		}
		g.Go(func() error {
			if err := kubeadm.WriteCNIConfig(gctx, mb.r, mb.cidr, false); err != nil {
				return err
			}
			return kubeadm.SetRoutes(gctx, mb.r, s.Profile.PodCIDR, routes)
		})
	}
	return g.Wait()
}

// forgetRemovedNodes deletes the Node objects of this profile's nodes that are no longer in it
// (`node delete` of a stopped cluster): named as mkube names nodes, missing from the profile.
func forgetRemovedNodes(ctx context.Context, s *State, client kubernetes.Interface) error {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		if _, _, kept := s.Profile.Node(n.Name); !kept && config.NodeOrdinal(s.Profile.Name, n.Name) > 1 {
			s.m.Out.V(1, "deleting node %s: no longer in the profile", n.Name)
			if err := kubeadm.DeleteNode(ctx, client, n.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func podCIDR(n *corev1.Node) string {
	if n.Spec.PodCIDR != "" {
		return n.Spec.PodCIDR
	}
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs[0]
	}
	return ""
}

// nodeNames are the names of the nodes this start brings up, the primary first.
func (s *State) nodeNames() []string {
	names := []string{s.Profile.Name}
	for _, n := range s.Others {
		if !n.Skip {
			names = append(names, n.Node.Name)
		}
	}
	return names
}

// defaultNodeWait is what `node add` and `node start` wait for: the node Ready.
var defaultNodeWait = kubeadm.WaitNodeReady

// AddNode adds a node to a profile's cluster (`mkube node add`): a worker, or with controlPlane
// another control plane of an --ha cluster (its etcd member joins, the load balancer sends it
// traffic). The node is recorded in the profile first, so a start or delete after an interruption
// knows it, then the cluster is started as a start would, which creates and joins it; the
// profile's other stopped nodes stay stopped.
func AddNode(ctx context.Context, m *cluster.Manager, profile string, controlPlane, worker bool, waitTimeout time.Duration) error {
	if !controlPlane && !worker {
		return reason.Errorf(reason.Usage, "add a worker (`mkube node add`) or a control plane (`mkube node add --control-plane`)", "--worker=false needs --control-plane: a node runs workloads, the control plane or both")
	}
	unlock, err := m.LockProfile(ctx, profile)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.Profile(profile)
	if err != nil {
		return err
	}
	e, ok := m.Drivers.Lookup(p.Driver)
	if !ok {
		e = driver.Entry{Name: p.Driver}
	}
	if err := m.CheckMultiNode(e); err != nil {
		return err
	}
	if controlPlane && !p.HA {
		// A second control plane needs a stable endpoint in front of both, which only --ha sets up.
		return reason.Errorf(reason.Usage, "`mkube start --ha` makes a cluster with three control planes; `mkube node add` adds a worker", "profile %q has one control plane: adding a control-plane node needs an --ha cluster", p.Name)
	}
	if len(p.Name) > config.MaxMultiNodeName {
		return reason.Errorf(reason.Usage, "", "profile name %q is too long for more than one node", p.Name)
	}
	// One past the highest: a deleted node's name is not reused while the cluster lives.
	next := 2
	for _, n := range p.Nodes {
		next = max(next, config.NodeOrdinal(p.Name, n.Name)+1)
	}
	if next > maxNodes {
		return reason.Errorf(reason.Usage, "", "profile %q cannot have more nodes", p.Name)
	}
	name := config.NodeName(p.Name, next)
	m.Out.Step(out.Happy, "Adding node %s to cluster %s", strings.TrimPrefix(name, p.Name+"-"), p.Name)
	p.Nodes = append(p.Nodes, config.Node{Name: name, ControlPlane: controlPlane, Worker: worker})
	if err := m.Home.Save(p); err != nil {
		return err
	}
	return RunLocked(ctx, m, Options{Profile: profile, OnlyNode: name, AddedNode: name, Wait: defaultNodeWait, WaitTimeout: waitTimeout}, HostResources{})
}

// StartNode starts one stopped node of a profile (`mkube node start`), with the primary if it is
// stopped too; the other stopped nodes stay stopped.
func StartNode(ctx context.Context, m *cluster.Manager, profile, nodeName string, waitTimeout time.Duration) error {
	unlock, err := m.LockProfile(ctx, profile)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.Profile(profile)
	if err != nil {
		return err
	}
	if _, _, ok := p.Node(nodeName); !ok {
		return reason.Errorf(reason.GuestNodeNotFound, "run `mkube node list -p "+profile+"` to see its nodes", "profile %q has no node %q", profile, nodeName)
	}
	return RunLocked(ctx, m, Options{Profile: profile, OnlyNode: nodeName, StartedNode: nodeName, Wait: defaultNodeWait, WaitTimeout: waitTimeout}, HostResources{})
}

// networkPolicyStep applies kube-router's NetworkPolicy DaemonSet (--cni=kube-router, or auto with
// more than one node), from the host like an addon.
func networkPolicyStep(ctx context.Context, s *State) error {
	if s.Profile.EffectiveCNI() != config.CNIKubeRouter {
		return nil
	}
	manifest, err := netpol.Render(netpol.Values{ServiceCIDR: s.Profile.ServiceCIDR})
	if err != nil {
		return err
	}
	applier, err := s.m.Applier(s.Profile.Name, s.Endpoint)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, addonTimeout)
	defer cancel()
	if err := cluster.ApplyAddon(ctx, applier, s.Runner, "network-policy", manifest); err != nil {
		return reason.New(reason.K8sStart, err, "see `mkube logs -p "+s.Profile.Name+"`")
	}
	return nil
}
