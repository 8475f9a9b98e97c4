package cluster

import (
	"context"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/node"
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

// ExitCode follows minikube: bit 1 host, bit 2 kubelet, bit 4 API server not running.
func (s Status) ExitCode() int {
	code := 0
	if s.Host != string(driver.Running) {
		code |= 1
	}
	if s.Kubelet != string(driver.Running) {
		code |= 2
	}
	if s.APIServer != string(driver.Running) {
		code |= 4
	}
	return code
}

// GetStatus inspects a profile.
func (m *Manager) GetStatus(ctx context.Context, name string) (Status, error) {
	p, err := m.loadProfile(name)
	if err != nil {
		return newStatus(name), err
	}
	s, _, err := m.status(ctx, p)
	return s, err
}

func newStatus(name string) Status {
	n := string(driver.Nonexistent)
	return Status{Name: name, Host: n, Kubelet: n, APIServer: n, Kubeconfig: n}
}

// status inspects a profile's machine, kubelet, API server and kubeconfig entry, and says where
// the machine is reached when it runs.
func (m *Manager) status(ctx context.Context, p *config.Profile) (Status, driver.Endpoint, error) {
	s := newStatus(p.Name)
	d, err := m.driverFor(p)
	if err != nil {
		return s, driver.Endpoint{}, err
	}
	defer d.Close()
	st, err := d.State(ctx)
	if err != nil {
		st = driver.Error
	}
	s.Host = string(st)
	if st != driver.Running {
		if st != driver.Nonexistent {
			s.Kubelet, s.APIServer, s.Kubeconfig = "Stopped", "Stopped", "Stopped"
		}
		return s, driver.Endpoint{}, nil
	}
	s.Kubelet, s.APIServer, s.Kubeconfig = "Stopped", "Stopped", "Misconfigured"
	if r, err := d.Runner(ctx); err == nil {
		if node.KubeletRunning(ctx, r) {
			s.Kubelet = string(driver.Running)
		}
		r.Close()
	}
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return s, ep, nil
	}
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
			Nodes: 1, Active: current == n, Status: "Unknown", Config: p}
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
