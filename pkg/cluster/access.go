package cluster

import (
	"context"
	"io"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/k8sversion"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/ssh"
	"os"
	"os/exec"
	"strings"
	"time"
)

// IP is the node's address.
func (m *Manager) IP(ctx context.Context, name, nodeName string) (string, error) {
	mc, err := m.RunningNode(ctx, name, nodeName)
	if err != nil {
		return "", err
	}
	defer mc.Close()
	return mc.Endpoint.IP, nil
}

// SSH opens a session (or runs args) on the node as its login user, with the machine's key.
func (m *Manager) SSH(ctx context.Context, name, nodeName string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	mc, err := m.RunningNode(ctx, name, nodeName)
	if err != nil {
		return 0, err
	}
	ep := mc.Endpoint
	mc.Close()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sc, err := m.nodeSSHClient(name, nodeName, ep)
	if err != nil {
		return 0, err
	}
	c, err := sc.Dial(dctx)
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
	bin := m.Home.CacheDir("binaries", m.HostOS, m.HostArch, v.String(), "kubectl")
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
	mc, err := m.Running(ctx, name)
	if err != nil {
		return err
	}
	defer mc.Close()
	p, ep := mc.Profile, mc.Endpoint
	before, _ := kubeconfig.Server(m.KubeconfigPaths, name)
	current, _ := kubeconfig.CurrentContext(m.KubeconfigPaths)
	if before == ServerURL(ep) {
		m.Out.Step(out.Check, "%q context is already pointing to %s", name, strings.TrimPrefix(ServerURL(ep), "https://"))
	} else {
		if err := m.UpdateKubeconfig(ctx, p, ep, false); err != nil {
			return err
		}
		m.Out.Step(out.Celebrate, "%q context has been updated to point to %s", name, strings.TrimPrefix(ServerURL(ep), "https://"))
	}
	m.Out.Step(out.Tip, "Current context is %q", current)
	return nil
}

// Logs writes what a bug report needs: the kubelet's and containerd's journals, the control-plane
// containers' logs, and the node's view of its pods.
func (m *Manager) Logs(ctx context.Context, name, nodeName string, lines int, w io.Writer) error {
	return m.inNodeMachine(ctx, name, nodeName, func(_ *Machine, r driver.Runner) error {
		node.WriteLogs(ctx, r, lines, w)
		return nil
	})
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
	if err := m.Home.SetSetting(ctx, "profile", name, nil); err != nil {
		return reason.New(reason.Config, err, "")
	}
	return nil
}
