package start

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
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
	m.Out.Step(out.ThumbsUp, "Starting %q worker node in %q cluster", n.Node.Name, p.Name)
	switch st {
	case driver.Nonexistent:
		m.Out.Step(out.Fire, "Creating %s container (CPUs=%d, Memory=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB)
		// A new machine has new host keys.
		known, err := m.KnownHostsFile(p.Name, n.Node.Name)
		if err != nil {
			return err
		}
		if err := ssh.ForgetKnownHosts(known); err != nil {
			return err
		}
		err = d.Create(ctx, driver.Spec{Name: p.Name, Ordinal: n.Ordinal, CPUs: p.CPUs, MemoryMB: p.MemoryMB, DiskMB: p.DiskMB,
			Image: p.BaseImage, SSHPublicKey: pub})
	case driver.Running:
		err = d.Start(ctx)
	default:
		m.Out.Step(out.Restart, "Restarting existing %s container for %q ...", p.Driver, n.Node.Name)
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
	p.NodeName, p.NodeIP, p.ControlPlaneIP = n.Node.Name, n.Endpoint.IP, s.Endpoint.IP
	p.CgroupRoot, p.CgroupV1, p.CgroupDriver = n.Cgroups.Root, n.Cgroups.V1, n.Cgroups.Driver
	p.NodePodCIDR = "" // the controller manager gives it one when it registers
	return p
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
	var token kubeadm.JoinToken
	for _, n := range s.Others {
		if kubeadm.Joined(ctx, n.Runner) {
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
	img := &s.Images
	b := &kubeadm.Bootstrapper{Logf: func(f string, a ...any) { s.m.Out.V(1, f, a...) }}
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range s.Others {
		if token.Token != "" && !kubeadm.Joined(ctx, n.Runner) {
			s.m.Out.Step(out.Link, "Joining %q to the cluster as a worker ...", n.Node.Name)
		}
		g.Go(func() error {
			err := b.Join(gctx, n.Runner, kubeadm.Cluster{
				Params: s.paramsFor(n), Binaries: s.Binaries,
				Images: img.writer(gctx, img.refs), ImagesDigest: img.digest, PauseImage: img.pause,
				ExtraImages: img.writer(gctx, img.extra), ExtraImagesDigest: img.extraDigest,
			}, token)
			if err != nil {
				return reason.New(reason.K8sStart, fmt.Errorf("node %s: %w", n.Node.Name, err),
					"see `mkube logs -p "+s.Profile.Name+" -n "+n.Node.Name+"`; `mkube delete -p "+s.Profile.Name+"` then start again if it persists")
			}
			return nil
		})
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

func podCIDR(n *corev1.Node) string {
	if n.Spec.PodCIDR != "" {
		return n.Spec.PodCIDR
	}
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs[0]
	}
	return ""
}

// nodeNames are the names of every node of the profile.
func (s *State) nodeNames() []string {
	var names []string
	for _, n := range s.Profile.Nodes {
		names = append(names, n.Name)
	}
	return names
}
