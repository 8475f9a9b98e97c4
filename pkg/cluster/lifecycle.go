package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/k8sversion"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/ssh"
)

// Stop halts a profile's node, keeping everything on it.
func (m *Manager) Stop(ctx context.Context, name string) error {
	// An unknown profile is refused before its lock file is made: bad input changes nothing.
	if _, err := m.loadProfile(name); err != nil {
		return err
	}
	unlock, err := m.lockProfile(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := m.loadProfile(name)
	if err != nil {
		return err
	}
	d, err := m.driverFor(p)
	if err != nil {
		return err
	}
	m.Out.Step(out.Stop, "Stopping node %q  ...", name)
	if st, err := d.State(ctx); err == nil && st == driver.Running {
		// Stopping the kubelet first lets it wind pods down before systemd takes the node away.
		if r, err := d.Runner(ctx); err == nil {
			_ = r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "stop", "kubelet"}})
		}
	}
	if err := d.Stop(ctx); err != nil {
		return machineError(reason.GuestError, err, "")
	}
	m.Out.Step(out.Stopped, "1 node stopped.")
	return nil
}

// Delete removes a profile's node, its kubeconfig entries and its state; the cache and the shared
// CA stay unless purge. A profile that does not exist still has any leftovers cleaned — only
// objects that carry this home's and this profile's mark: a user's own container, VM or
// kubeconfig entry of the same name is left alone.
func (m *Manager) Delete(ctx context.Context, name string, purgeHome bool) error {
	unlock, err := m.lockProfile(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	var notOurs error
	p, err := m.Home.Load(name)
	driverName := "docker"
	if err == nil {
		driverName = p.Driver
	}
	e, ok := m.Drivers.Lookup(driverName)
	if ok && e.Supported {
		m.Out.Step(out.Fire, "Deleting %q in %s ...", name, driverName)
		opts, err := m.driverOptions(name, p)
		if err != nil {
			return err
		}
		d, err := e.New(name, opts)
		if err != nil {
			return err
		}
		if err := d.Delete(ctx); err != nil {
			if !errors.Is(err, driver.ErrNotOwned) {
				return machineError(reason.GuestError, err, "")
			}
			// A machine of that name that is not ours stays; mkube's own state still goes, and
			// the refusal (MK_CONFLICT) is the command's answer at the end.
			notOurs = reason.New(reason.Conflict, err, "")
		}
	}
	_, clientCert, _ := m.credentials(name)
	left, err := kubeconfig.Remove(kubeconfig.WithWarnings(ctx, m.Out.Warn), m.KubeconfigPaths, name, m.HomeID, clientCert)
	if err != nil {
		return reason.New(reason.Config, err, "")
	}
	for _, l := range left {
		m.Out.Warn("Kubeconfig %s left as is: not created by this mkube profile", l)
	}
	if dir, err := m.Home.MachineDir(name); err == nil {
		if _, err := os.Stat(dir); err == nil {
			m.Out.Step(out.Fire, "Removing %s ...", dir)
		}
	}
	if err := m.Home.Remove(name); err != nil {
		return err
	}
	switch {
	case notOurs != nil:
		return notOurs
	case p == nil:
		m.Out.Step(out.Shrug, "Profile %q not found: cleaned up anything it left behind.", name)
	default:
		m.Out.Step(out.Skull, "Removed all traces of the %q cluster.", name)
	}
	if purgeHome {
		return m.purge()
	}
	return nil
}

// purge removes $MKUBE_HOME, only when it carries mkube's marker file.
func (m *Manager) purge() error {
	if err := m.Home.Purge(); err != nil {
		return reason.New(reason.Config, err, "remove it yourself if you are sure")
	}
	m.Out.Step(out.Skull, "Successfully purged mkube directory located at - [%s]", m.Home)
	return nil
}

// machineError turns a driver's failure into a user-facing one: a host object that is not this
// profile's is a conflict the user resolves (MK_CONFLICT), anything else is of kind k.
func machineError(k reason.Kind, err error, advice string) error {
	if errors.Is(err, driver.ErrNotOwned) {
		return reason.New(reason.Conflict, err, "")
	}
	return reason.New(k, err, advice)
}

// DeleteAll deletes every profile.
func (m *Manager) DeleteAll(ctx context.Context, purge bool) error {
	names, err := m.Home.List()
	if err != nil {
		return err
	}
	// Every profile is tried, as minikube does: one that cannot be deleted does not keep the
	// others alive. The first failure is the command's answer; the others are warnings.
	var first error
	for _, n := range names {
		if err := m.Delete(ctx, n, false); err != nil {
			if first == nil {
				first = err
			} else {
				m.Out.Warn("deleting %q: %v", n, err)
			}
		}
	}
	if first != nil {
		return first
	}
	m.Out.Step(out.Fire, "Successfully deleted all profiles")
	if purge {
		return m.purge()
	}
	return nil
}

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
	s := Status{Name: name, Host: string(driver.Nonexistent), Kubelet: string(driver.Nonexistent), APIServer: string(driver.Nonexistent), Kubeconfig: string(driver.Nonexistent)}
	p, err := m.loadProfile(name)
	if err != nil {
		return s, err
	}
	d, err := m.driverFor(p)
	if err != nil {
		return s, err
	}
	st, err := d.State(ctx)
	if err != nil {
		st = driver.Error
	}
	s.Host = string(st)
	if st != driver.Running {
		if st != driver.Nonexistent {
			s.Kubelet, s.APIServer, s.Kubeconfig = "Stopped", "Stopped", "Stopped"
		}
		return s, nil
	}
	s.Kubelet, s.APIServer, s.Kubeconfig = "Stopped", "Stopped", "Misconfigured"
	if r, err := d.Runner(ctx); err == nil {
		if r.Run(ctx, driver.Cmd{Args: []string{"systemctl", "is-active", "--quiet", "kubelet"}}) == nil {
			s.Kubelet = string(driver.Running)
		}
	}
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return s, nil
	}
	if c, err := m.client(name, ep); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		body, err := c.Discovery().RESTClient().Get().AbsPath("/livez").DoRaw(cctx)
		cancel()
		if err == nil && string(body) == "ok" {
			s.APIServer = string(driver.Running)
		}
	}
	if server, _ := kubeconfig.Server(m.KubeconfigPaths, name); server == serverURL(ep) {
		s.Kubeconfig = "Configured"
	}
	return s, nil
}

// PrintStatus writes a status as minikube does, text or json.
func PrintStatus(w io.Writer, s Status, format string) error {
	switch format {
	case "json":
		return json.NewEncoder(w).Encode(s)
	case "", "text":
		_, err := fmt.Fprintf(w, "%s\ntype: Control Plane\nhost: %s\nkubelet: %s\napiserver: %s\nkubeconfig: %s\n\n",
			s.Name, s.Host, s.Kubelet, s.APIServer, s.Kubeconfig)
		return err
	default:
		return reason.Errorf(reason.Usage, "use -o text or -o json", "unknown output format %q", format)
	}
}

// IP is the node's address.
func (m *Manager) IP(ctx context.Context, name string) (string, error) {
	_, ep, err := m.runningEndpoint(ctx, name)
	return ep.IP, err
}

// SSH opens a session (or runs args) on the node as its login user, with the machine's key.
func (m *Manager) SSH(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	_, ep, err := m.runningEndpoint(ctx, name)
	if err != nil {
		return 0, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	key, err := m.machineKey(name)
	if err != nil {
		return 0, err
	}
	c, err := ssh.Client{Host: ep.SSHHost, Port: ep.SSHPort, User: ep.SSHUser, KeyPath: key}.Dial(dctx)
	if err != nil {
		return 0, sshError(err)
	}
	defer c.Close()
	return ssh.Session(ctx, c, args, stdin, stdout, stderr)
}

// Kubectl runs the cluster's version of kubectl against the profile's context.
func (m *Manager) Kubectl(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	p, err := m.loadProfile(name)
	if err != nil {
		return 0, err
	}
	v, err := k8sversion.Parse(p.KubernetesVersion) // config.json is a file: it names no paths
	if err != nil {
		return 0, reason.New(reason.Config, err, "`mkube delete -p "+name+"` and start again")
	}
	bin := m.Home.CacheDir("binaries", runtime.GOOS, runtime.GOARCH, v.String(), "kubectl")
	if _, err := os.Stat(bin); err != nil {
		return 0, reason.Errorf(reason.Download, "run `mkube start -p "+name+"` to download it", "kubectl %s is not in the cache", p.KubernetesVersion)
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--context", name}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// UpdateContext repairs the profile's kubeconfig entry after the API server moved.
func (m *Manager) UpdateContext(ctx context.Context, name string) error {
	p, ep, err := m.runningEndpoint(ctx, name)
	if err != nil {
		return err
	}
	before, _ := kubeconfig.Server(m.KubeconfigPaths, name)
	current, _ := kubeconfig.CurrentContext(m.KubeconfigPaths)
	if before == serverURL(ep) {
		m.Out.Step(out.Check, "%q context is already pointing to %s", name, strings.TrimPrefix(serverURL(ep), "https://"))
	} else {
		if err := m.updateKubeconfig(ctx, p, ep, false); err != nil {
			return err
		}
		m.Out.Step(out.Celebrate, "%q context has been updated to point to %s", name, strings.TrimPrefix(serverURL(ep), "https://"))
	}
	m.Out.Step(out.Tip, "Current context is %q", current)
	return nil
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
		if s, err := m.GetStatus(ctx, n); err == nil {
			row.Status = s.Host
			if s.ExitCode() == 0 {
				row.Status = "OK"
			}
			if d, err := m.driverFor(p); err == nil && s.Host == string(driver.Running) {
				if ep, err := d.Endpoint(ctx); err == nil {
					row.IP = ep.IP
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// PrintProfiles writes the profile table, or json like minikube's {"valid": [...], "invalid": []}.
func PrintProfiles(w io.Writer, rows []ProfileRow, format string) error {
	switch format {
	case "json":
		if rows == nil {
			rows = []ProfileRow{}
		}
		return json.NewEncoder(w).Encode(map[string]any{"valid": rows, "invalid": []any{}})
	case "", "table":
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(tw, "\tProfile\tDriver\tRuntime\tIP\tPort\tVersion\tStatus\tNodes\tActive\t")
		for _, r := range rows {
			active := ""
			if r.Active {
				active = "*"
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t\n", r.Name, r.Driver, r.Runtime, r.IP, r.Port, r.Version, r.Status, r.Nodes, active)
		}
		return tw.Flush()
	default:
		return reason.Errorf(reason.Usage, "use -o table or -o json", "unknown output format %q", format)
	}
}

// Logs writes what a bug report needs: the kubelet's and containerd's journals, the control-plane
// containers' logs, and the node's view of its pods.
func (m *Manager) Logs(ctx context.Context, name string, lines int, w io.Writer) error {
	_, r, err := m.runningRunner(ctx, name)
	if err != nil {
		return err
	}
	n := fmt.Sprint(lines)
	sections := []struct {
		title string
		args  []string
	}{
		{"kubelet", []string{"journalctl", "-u", "kubelet", "--no-pager", "-n", n}},
		{"containerd", []string{"journalctl", "-u", "containerd", "--no-pager", "-n", n}},
		{"container status", []string{"ctr", "-n", "k8s.io", "containers", "ls"}},
		{"control plane", []string{"sh", "-c", "for f in /var/log/pods/kube-system_*/*/*.log; do echo \"--- $f\"; tail -n " + n + " \"$f\"; done"}},
		{"nodes", []string{"kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "describe", "nodes"}},
		{"pods", []string{"kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "pods", "-A", "-o", "wide"}},
	}
	for _, s := range sections {
		fmt.Fprintf(w, "\n==> %s <==\n", s.title)
		if err := r.Run(ctx, driver.Cmd{Args: s.args, Stdout: w, Stderr: w}); err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
	return nil
}

// SetDefaultProfile makes name the profile every command uses without -p, as `minikube profile
// NAME` does; unlike minikube, a profile that does not exist is an error (exit 85), not a tip
// with exit 0, so a script's typo does not pass silently.
func (m *Manager) SetDefaultProfile(ctx context.Context, name string) error {
	if err := config.ValidateProfileName(name); err != nil {
		return reason.New(reason.Usage, err, "e.g. mkube profile dev")
	}
	if _, err := m.loadProfile(name); err != nil {
		return err
	}
	if err := m.Home.SetSetting(ctx, "profile", name); err != nil {
		return reason.New(reason.Config, err, "")
	}
	return nil
}
