// Package conformance runs Kubernetes' own Conformance suite (e2e.test, through ginkgo) against an
// mkube cluster, offline: the cluster, the suite's images and the suite itself all come from the
// mirror, built from source.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mkube/pkg/k8sversion"
	"mkube/pkg/mirror"
)

// Options say which cluster to test and how.
type Options struct {
	Version  k8sversion.Version
	Profile  string
	Nodes    int    // when the runner starts the cluster
	Driver   string // when the runner starts the cluster; empty: mkube's choice
	Focus    string // ginkgo --focus (default: \[Conformance\])
	Skip     string // ginkgo --skip
	Parallel int    // ginkgo processes; serial specs run after the others, on one
	Mkube    string // the mkube binary
	Mirror   string // the mirror directory (out/mirror), served while the suite runs
	Out      string // where the reports go (out/conformance)
	E2E      E2E
	Images   []string // the test images to load into the nodes
	Log      io.Writer
}

// E2E is the built suite: see artifacts.BuildE2E.
type E2E struct{ Test, Ginkgo, KubectlDir string }

// Run starts the cluster unless it runs, loads the test images, lets the nodes pull from the mirror
// under upstream names (two specs pull with imagePullPolicy Always), runs the suite and writes
// Out/summary.txt. The error says how many specs failed, if any did.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	layout := mirror.Layout{Root: o.Mirror}
	handler, err := mirror.NewServer(layout, nil)
	if err != nil {
		return err
	}
	m := mkube{bin: o.Mkube, profile: o.Profile, log: o.Log}
	_, statusErr := m.output(ctx, "status")
	// A profile an earlier run started pulls from the address that run served the mirror on:
	// serve it there again (or use whatever serves there now, e.g. make mirror-serve).
	addr := "127.0.0.1:0"
	if statusErr == nil {
		if repo, err := m.imageRepository(ctx); err == nil && isLoopback(repo) {
			addr = repo
		}
	}
	local, err := serve(ctx, addr, handler)
	if err != nil && addr != "127.0.0.1:0" {
		local, err = addr, nil
	}
	if err != nil {
		return err
	}
	if statusErr != nil {
		fmt.Fprintf(o.Log, "==> starting %s: Kubernetes %s, %d nodes\n", o.Profile, o.Version, o.Nodes)
		args := []string{"start", "--kubernetes-version", o.Version.String(), "--nodes", strconv.Itoa(o.Nodes),
			"--binary-mirror", "http://" + local + "/release", "--image-repository", local}
		if o.Driver != "" {
			args = append(args, "--driver", o.Driver)
		}
		if err := m.run(ctx, args...); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Log, "==> loading %d test images into every node\n", len(o.Images))
	// A rebuilt mirror keeps the tags: what an earlier run cached goes first, so the nodes run
	// what the mirror has now. (Refs not in the cache make this fail; that is fine.)
	_ = m.run(ctx, append([]string{"cache", "delete"}, o.Images...)...)
	if err := m.run(ctx, append([]string{"cache", "add"}, o.Images...)...); err != nil {
		return err
	}
	nodes, err := m.nodes(ctx)
	if err != nil {
		return err
	}
	if err := pullsFromMirror(ctx, m, nodes, layout); err != nil {
		return err
	}
	return runSuite(ctx, o)
}

// pullsFromMirror serves the mirror where the nodes reach the host (their default gateway, on
// the network mkube made for the profile) and points each node's containerd at it for
// registry.k8s.io, so a pull of an upstream name gets the image built from source.
func pullsFromMirror(ctx context.Context, m mkube, nodes []string, layout mirror.Layout) error {
	route, err := m.output(ctx, "ssh", "--", "ip", "-4", "route", "show", "default")
	if err != nil {
		return err
	}
	f := strings.Fields(route)
	if len(f) < 3 || f[0] != "default" || f[1] != "via" || net.ParseIP(f[2]) == nil {
		return fmt.Errorf("cannot tell the host's address from the node's route %q", route)
	}
	// The mirror answers only the host names it is told (a guard against DNS rebinding).
	handler, err := mirror.NewServer(layout, nil, mirror.AllowHosts(f[2]))
	if err != nil {
		return err
	}
	addr, err := serve(ctx, net.JoinHostPort(f[2], "0"), handler)
	if err != nil {
		return fmt.Errorf("serving the mirror to the nodes: %w", err)
	}
	hosts := hostsTOML(addr)
	for _, n := range nodes {
		script := "mkdir -p /etc/containerd/certs.d/registry.k8s.io && cat > /etc/containerd/certs.d/registry.k8s.io/hosts.toml"
		if err := m.runStdin(ctx, strings.NewReader(hosts), "ssh", "-n", n, "--", "sudo", "sh", "-c", script); err != nil {
			return err
		}
	}
	return nil
}

// hostsTOML sends containerd's pulls for registry.k8s.io to the mirror at addr (plain HTTP).
func hostsTOML(addr string) string {
	return fmt.Sprintf("# mkube conformance: registry.k8s.io from the mirror built from source\nserver = \"https://registry.k8s.io\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", addr)
}

// serve serves handler on addr until ctx ends and returns the address it listens on.
func serve(ctx context.Context, addr string, handler http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return ln.Addr().String(), nil
}

// runSuite runs ginkgo the way the CNCF's conformance image does (provider skeleton, a 24-hour
// timeout), in parallel processes; specs marked Serial run on their own at the end.
func runSuite(ctx context.Context, o Options) error {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		kubeconfig = filepath.Join(home, ".kube", "config")
	}
	junit := filepath.Join(o.Out, "junit.xml")
	os.Remove(junit)
	args := []string{"--procs=" + strconv.Itoa(max(o.Parallel, 1)), "--focus=" + o.Focus, "--timeout=24h", "--no-color",
		"--output-dir=" + o.Out, "--junit-report=junit.xml", "--poll-progress-after=30m"}
	if o.Skip != "" {
		args = append(args, "--skip="+o.Skip)
	}
	args = append(args, o.E2E.Test, "--", "--provider=skeleton", "--kubeconfig="+kubeconfig, "--context="+o.Profile,
		"--report-dir="+o.Out, "--disable-log-dump", "--kubectl-path="+filepath.Join(o.E2E.KubectlDir, "kubectl"))
	logf, err := os.Create(filepath.Join(o.Out, "e2e.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(o.Log, "==> %s %s\n", o.E2E.Ginkgo, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, o.E2E.Ginkgo, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+o.E2E.KubectlDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout = io.MultiWriter(logf, o.Log)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	runErr := cmd.Run()
	s, err := Summarize(junit)
	if err != nil {
		if runErr != nil {
			return fmt.Errorf("ginkgo: %w (and no report: %v)", runErr, err)
		}
		return err
	}
	s.Took = time.Since(start).Round(time.Second)
	if err := os.WriteFile(filepath.Join(o.Out, "summary.txt"), []byte(s.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprint(o.Log, s.String())
	if s.Failed > 0 {
		return fmt.Errorf("%d of %d Conformance specs failed: see %s", s.Failed, s.Passed+s.Failed, filepath.Join(o.Out, "summary.txt"))
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return runErr
	}
	return nil
}

// mkube runs the mkube binary on one profile.
type mkube struct {
	bin, profile string
	log          io.Writer
}

func (m mkube) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, m.bin, append([]string{"-p", m.profile}, args...)...)
}

func (m mkube) run(ctx context.Context, args ...string) error {
	return m.runStdin(ctx, nil, args...)
}

func (m mkube) runStdin(ctx context.Context, stdin io.Reader, args ...string) error {
	cmd := m.command(ctx, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, m.log, m.log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mkube %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (m mkube) output(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := m.command(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("mkube %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// imageRepository is the profile's --image-repository (profile list -o json).
func (m mkube) imageRepository(ctx context.Context) (string, error) {
	out, err := m.output(ctx, "profile", "list", "-o", "json")
	if err != nil {
		return "", err
	}
	var list struct {
		Valid []struct {
			Name   string
			Config struct {
				ImageRepository string `json:"imageRepository"`
			}
		} `json:"valid"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return "", err
	}
	for _, p := range list.Valid {
		if p.Name == m.profile {
			return p.Config.ImageRepository, nil
		}
	}
	return "", fmt.Errorf("no profile %s", m.profile)
}

// isLoopback says whether host:port names a loopback address.
func isLoopback(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}

// nodes lists the profile's nodes (mkube node list: name and address per line).
func (m mkube) nodes(ctx context.Context) ([]string, error) {
	out, err := m.output(ctx, "node", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("mkube node list shows no nodes")
	}
	return names, nil
}
