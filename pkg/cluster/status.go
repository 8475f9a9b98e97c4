package cluster

import (
	"context"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/node"
	"strconv"
	"time"
)

// Status is what `mkube status` reports, with minikube's field names.
type Status struct {
	Name       string
	Host       string
	Kubelet    string
	APIServer  string
	Kubeconfig string
	Worker     bool
}

// Irrelevant is a worker's API server and kubeconfig state, as minikube shows them.
const Irrelevant = "Irrelevant"

// ExitCode follows minikube: bit 1 host, bit 2 kubelet, bit 4 API server not running (a
// worker's API server is irrelevant).
func (s Status) ExitCode() int {
	code := 0
	if s.Host != string(driver.Running) {
		code |= 1
	}
	if s.Kubelet != string(driver.Running) {
		code |= 2
	}
	if !s.Worker && s.APIServer != string(driver.Running) {
		code |= 4
	}
	return code
}

// ExitCode of a cluster's statuses: every node's bits together.
func ExitCode(ss []Status) int {
	code := 0
	for _, s := range ss {
		code |= s.ExitCode()
	}
	return code
}

// GetStatus inspects every node of a profile, the primary first.
func (m *Manager) GetStatus(ctx context.Context, name string) ([]Status, error) {
	p, err := m.loadProfile(name)
	if err != nil {
		return []Status{newStatus(name)}, err
	}
	s, _, err := m.status(ctx, p)
	if err != nil {
		return []Status{s}, err
	}
	all := []Status{s}
	for _, n := range p.Nodes[1:] {
		all = append(all, m.nodeStatus(ctx, p, n, s))
	}
	return all, nil
}

func newStatus(name string) Status {
	n := string(driver.Nonexistent)
	return Status{Name: name, Host: n, Kubelet: n, APIServer: n, Kubeconfig: n}
}

// machineStatus fills in a node's host and kubelet, and says whether the machine runs.
func (m *Manager) machineStatus(ctx context.Context, s *Status, d driver.Driver) bool {
	st, err := d.State(ctx)
	if err != nil {
		st = driver.Error
	}
	s.Host = string(st)
	if st != driver.Running {
		if st != driver.Nonexistent {
			s.Kubelet, s.APIServer, s.Kubeconfig = "Stopped", "Stopped", "Stopped"
		}
		return false
	}
	s.Kubelet = "Stopped"
	if r, err := d.Runner(ctx); err == nil {
		if node.KubeletRunning(ctx, r) {
			s.Kubelet = string(driver.Running)
		}
		r.Close()
	}
	return true
}

// nodeStatus inspects a node other than the primary: a worker, or another control plane of an
// --ha cluster (its API server asked in the node, its kubeconfig the cluster's).
func (m *Manager) nodeStatus(ctx context.Context, p *config.Profile, n config.Node, primary Status) Status {
	s := newStatus(n.Name)
	s.Worker = !n.ControlPlane
	if s.Worker {
		defer func() { s.APIServer, s.Kubeconfig = Irrelevant, Irrelevant }()
	}
	d, err := m.nodeDriverFor(p, n.Name)
	if err != nil {
		s.Host = string(driver.Error)
		return s
	}
	defer d.Close()
	if !m.machineStatus(ctx, &s, d) || s.Worker {
		return s
	}
	s.APIServer, s.Kubeconfig = "Stopped", primary.Kubeconfig
	if r, err := d.Runner(ctx); err == nil {
		if out, err := node.Output(ctx, r, "curl", "-sk", "--max-time", "5", "https://127.0.0.1:"+strconv.Itoa(p.APIServerPort)+"/livez"); err == nil && out == "ok" {
			s.APIServer = string(driver.Running)
		}
		r.Close()
	}
	return s
}

// status inspects a profile's primary node: its machine, kubelet, API server and kubeconfig
// entry, and says where the machine is reached when it runs.
func (m *Manager) status(ctx context.Context, p *config.Profile) (Status, driver.Endpoint, error) {
	s := newStatus(p.Name)
	d, err := m.driverFor(p)
	if err != nil {
		return s, driver.Endpoint{}, err
	}
	defer d.Close()
	if !m.machineStatus(ctx, &s, d) {
		return s, driver.Endpoint{}, nil
	}
	s.APIServer, s.Kubeconfig = "Stopped", "Misconfigured"
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return s, ep, nil
	}
	ep = viaLB(ctx, p, d, ep)
	if c, err := m.Client(p.Name, ep); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		body, err := c.Discovery().RESTClient().Get().AbsPath("/livez").DoRaw(cctx)
		cancel()
		if err == nil && string(body) == "ok" {
			s.APIServer = string(driver.Running)
		}
	}
	if server, _ := kubeconfig.Server(m.KubeconfigPaths, p.Name); server == ServerURL(ep) {
		s.Kubeconfig = "Configured"
	}
	return s, ep, nil
}

// ProfileRow is one line of `mkube profile list`.
type ProfileRow struct {
	Name    string
	Driver  string
	Runtime string
	IP      string
	Port    int
	Version string
	Status  string
	Nodes   int
	Active  bool
	Config  *config.Profile `json:"Config,omitempty"`
}

// Profiles lists every profile with its state.
func (m *Manager) Profiles(ctx context.Context) ([]ProfileRow, error) {
	names, err := m.Home.List()
	if err != nil {
		return nil, err
	}
	current, _ := kubeconfig.CurrentContext(m.KubeconfigPaths)
	var rows []ProfileRow
	for _, n := range names {
		p, err := m.Home.Load(n)
		if err != nil {
			continue
		}
		row := ProfileRow{Name: n, Driver: p.Driver, Runtime: "containerd", Port: p.APIServerPort, Version: p.KubernetesVersion,
			Nodes: len(p.Nodes), Active: current == n, Status: "Unknown", Config: p}
		if s, ep, err := m.status(ctx, p); err == nil {
			row.Status = s.Host
			if s.ExitCode() == 0 {
				row.Status = "OK"
			}
			row.IP = ep.IP
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// NodeRow is one line of `mkube node list`.
type NodeRow struct {
	Name string
	IP   string // "" when the node is not running
}

// NodeList lists a profile's nodes, the primary first, with the address of each running one.
func (m *Manager) NodeList(ctx context.Context, name string) ([]NodeRow, error) {
	p, err := m.loadProfile(name)
	if err != nil {
		return nil, err
	}
	var rows []NodeRow
	for _, n := range p.Nodes {
		mc, err := m.openNode(ctx, p, n.Name)
		if err != nil {
			return nil, err
		}
		rows = append(rows, NodeRow{Name: n.Name, IP: mc.Endpoint.IP})
		mc.Close()
	}
	return rows, nil
}
