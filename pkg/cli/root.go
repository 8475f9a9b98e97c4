// Package cli is mkube's command line: thin cobra commands that parse flags and call package
// cluster. Run is the whole program; main only passes the process's streams and exits.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/driver/docker"
	"mkube/pkg/driver/hyperv"
	"mkube/pkg/driver/kvm2"
	"mkube/pkg/driver/podman"
	"mkube/pkg/driver/sshdriver"
	"mkube/pkg/driver/virtualbox"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/start"
)

// app is the state one invocation's commands share: set from global flags before a command runs.
type app struct {
	profile   string
	verbosity int
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	out       *out.Printer
	// code is an exit code a command chose (status bits, a remote command's), beside errors.
	code int
}

// manager builds the cluster manager for this invocation.
func (a *app) manager() (*cluster.Manager, error) {
	home, err := config.DefaultHome()
	if err != nil {
		return nil, reason.New(reason.Config, err, "")
	}
	id, err := home.Open()
	if err != nil {
		return nil, reason.New(reason.Config, err, "")
	}
	paths, err := kubeconfig.Paths()
	if err != nil {
		return nil, reason.New(reason.Config, err, "set KUBECONFIG")
	}
	return &cluster.Manager{Home: home, HomeID: id, Out: a.out, Drivers: Drivers(), KubeconfigPaths: paths,
		HostOS: runtime.GOOS, HostArch: runtime.GOARCH}, nil
}

// Drivers are the drivers this build knows.
func Drivers() *driver.Registry {
	return driver.NewRegistry(docker.Entry(runtime.GOOS), podman.Entry(runtime.GOOS), kvm2.Entry(), virtualbox.Entry(runtime.GOOS, runtime.GOARCH), hyperv.Entry(runtime.GOOS), sshdriver.Entry(runtime.GOOS))
}

// Run executes mkube with args and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.out == nil {
		a.out = out.New(stdout, stderr, a.verbosity)
	}
	if err != nil {
		if ctx.Err() != nil { // whatever the failure says, it came from the interrupt
			err = reason.New(reason.Interrupted, errors.New("interrupted"), "run the same command again to resume")
		}
		a.out.Fail(err)
		return reason.ExitCode(err)
	}
	return a.code
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "mkube",
		Short:         "mkube runs a local Kubernetes cluster",
		Long:          "mkube runs a real single-node Kubernetes cluster on your workstation, online or fully offline.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.out = out.New(a.stdout, a.stderr, a.verbosity)
			return a.resolveProfile(cmd)
		},
	}
	root.PersistentFlags().StringVarP(&a.profile, "profile", "p", defaultProfile(), "the name of the mkube cluster (profile)")
	root.PersistentFlags().IntVarP(&a.verbosity, "v", "v", 0, "log level for debug output on stderr (1-3)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return reason.New(reason.Usage, err, "see `mkube help`")
	})
	root.AddCommand(newStart(a), newStop(a), newDelete(a), newStatus(a), newIP(a), newSSH(a), newKubectl(a),
		newProfile(a), newLogs(a), newVersion(a), newGetVersions(a), newUpdateContext(a), newCache(a), newService(a), newAddons(a), newImage(a), newDashboard(a), newConfig(a), newNode(a))
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(root.FlagErrorFunc())
	}
	return root
}

// resolveProfile settles which profile this command works on — -p, else $MKUBE_PROFILE, else the
// one `mkube profile NAME` saved, else "mkube" — and validates it once, for every command, before
// any of them builds a path, a container name or a kubeconfig entry from it.
func (a *app) resolveProfile(cmd *cobra.Command) error {
	source := "-p"
	switch {
	case cmd.Flags().Changed("profile"):
	case os.Getenv("MKUBE_PROFILE") != "":
		source = "MKUBE_PROFILE"
	default:
		source = "the saved default profile (mkube config get profile)"
		if home, err := config.DefaultHome(); err == nil {
			if s, err := home.Settings(); err == nil && s["profile"] != "" {
				a.profile = s["profile"]
			}
		}
	}
	if err := config.ValidateProfileName(a.profile); err != nil {
		return reason.New(reason.Usage, fmt.Errorf("%s: %w", source, err), "e.g. -p dev")
	}
	return nil
}

// defaultProfile is $MKUBE_PROFILE or "mkube".
func defaultProfile() string {
	if p := os.Getenv("MKUBE_PROFILE"); p != "" {
		return p
	}
	return config.DefaultProfile
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return reason.Errorf(reason.Usage, "see `mkube "+cmd.Name()+" --help`", "unexpected argument %q", args[0])
	}
	return nil
}

// hostResources reads this host's CPUs and memory.
func hostResources() start.HostResources {
	h := start.HostResources{CPUs: runtime.NumCPU()}
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return h
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			h.MemoryMB = kb / 1024
		}
	}
	return h
}

// defaultMemory is 4 GB, or half of a smaller host's memory.
func defaultMemory(h start.HostResources) string {
	if h.MemoryMB == 0 || h.MemoryMB >= 8192 {
		return "4096mb"
	}
	return fmt.Sprintf("%dmb", max(h.MemoryMB/2, cluster.MinMemoryMB))
}

// withManager adapts a command body that needs the cluster manager into a cobra RunE.
func (a *app) withManager(fn func(m *cluster.Manager, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		m, err := a.manager()
		if err != nil {
			return err
		}
		return fn(m, cmd, args)
	}
}

// command is a subcommand that runs fn with the cluster manager; args validates the positional
// arguments (nil: fn does).
func (a *app) command(use, short string, args cobra.PositionalArgs, fn func(m *cluster.Manager, cmd *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: a.withManager(fn)}
}
