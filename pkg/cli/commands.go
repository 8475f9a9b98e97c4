package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/driver/docker"
	"mkube/pkg/k8sversion"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
	"mkube/pkg/start"
)

func newStart(a *app) *cobra.Command {
	var o start.Options
	host := hostResources()
	drivers := Drivers()
	driverOpts := map[string]*string{}
	cmd := a.command("start", "Starts a local Kubernetes cluster (creates it, or resumes a stopped or half-created one)", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		applied, err := applySettings(cmd, m)
		if err != nil {
			return err
		}
		o.Profile = a.profile
		o.Set = func(name string) bool { return cmd.Flags().Changed(name) }
		o.DriverOptions = map[string]string{}
		for name, v := range driverOpts {
			// Only what the user gave (or saved with `mkube config`): a driver fills in its defaults.
			if cmd.Flags().Changed(name) || applied[name] {
				o.DriverOptions[name] = *v
			}
		}
		return start.Run(cmd.Context(), m, o, host)
	})
	f := cmd.Flags()
	f.StringVar(&o.Driver, "driver", "", "driver to use: docker, podman, kvm2, virtualbox or hyperv (default: the best healthy one)")
	f.StringSliceVar(&o.ISOURLs, "iso-url", nil, "VM drivers: where to get mkube's ISO (http, https, file or a path; URL.sha256 beside each), tried in order (default: the one `make iso` built next to mkube)")
	for _, opt := range drivers.Options() {
		driverOpts[opt.Name] = f.String(opt.Name, opt.Default, opt.Help)
	}
	f.StringVar(&o.KubernetesVersion, "kubernetes-version", "", "Kubernetes version: vX.Y.Z, X.Y.Z, stable or latest (default "+k8sversion.DefaultString+")")
	f.IntVar(&o.CPUs, "cpus", 2, "number of CPUs for the node")
	f.StringVar(&o.Memory, "memory", defaultMemory(host), "memory for the node, e.g. 4096, 4096mb or 4g")
	f.StringVar(&o.DiskSize, "disk-size", "20000mb", "disk size for VM drivers, e.g. 20g")
	f.StringVar(&o.BinaryMirror, "binary-mirror", "", "where to download Kubernetes binaries, in dl.k8s.io's release layout (default "+cluster.DefaultBinaryMirror+")")
	f.StringVar(&o.ImageRepository, "image-repository", "", "registry mirroring registry.k8s.io's paths to pull images from (default: each image's own registry)")
	f.StringSliceVar(&o.InsecureRegistry, "insecure-registry", nil, "registries (HOST, HOST:PORT or CIDR) allowed over plain HTTP, also for an http:// --binary-mirror (loopback ones always are)")
	f.StringVar(&o.Mirror, "mirror", "", "one registry (HOST[:PORT]/PATH) holding everything a start needs — mkube's node image, ISO and addon images, Kubernetes images and binaries (make release-mirror fills one); the other source flags override single pieces")
	f.StringVar(&o.BaseImage, "base-image", docker.DefaultImage(), "node image for the container drivers (docker, podman)")
	f.StringSliceVar(&o.APIServerNames, "apiserver-names", nil, "extra names for the API server certificate")
	f.StringSliceVar(&o.APIServerIPs, "apiserver-ips", nil, "extra IP addresses for the API server certificate")
	f.StringArrayVar(&o.ExtraConfig, "extra-config", nil, "component.key=value settings for apiserver, controller-manager, scheduler, etcd, kubelet, kubeadm")
	f.StringSliceVar(&o.Addons, "addons", nil, "addons to enable")
	f.BoolVar(&o.KeepContext, "keep-context", false, "keep the current kubeconfig context instead of switching to this cluster")
	f.BoolVar(&o.EmbedCerts, "embed-certs", false, "embed certificates in the kubeconfig instead of referring to files")
	f.BoolVar(&o.DownloadOnly, "download-only", false, "only fill the cache with what a start needs, then stop")
	f.StringVar(&o.Wait, "wait", "apiserver,system_pods,default_sa,node_ready", "components to wait for: all, none, or a list of apiserver,system_pods,default_sa,apps_running,node_ready,kubelet")
	f.DurationVar(&o.WaitTimeout, "wait-timeout", 6*time.Minute, "how long to wait for the components in --wait")
	f.StringVar(&o.CNI, "cni", "auto", "pod network: auto (bridge for one node, kube-router for more), bridge (no NetworkPolicy) or kube-router (NetworkPolicy enforced)")
	f.BoolVar(&o.HA, "ha", false, "three control planes behind a load balancer, stacked etcd (docker and podman drivers)")
	f.IntVarP(&o.Nodes, "nodes", "n", 1, "the number of nodes: the first is the control plane, the others join as workers (docker and podman drivers)")
	return cmd
}

func newStop(a *app) *cobra.Command {
	return a.command("stop", "Stops a running cluster, keeping its state", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		return m.Stop(cmd.Context(), a.profile)
	})
}

func newDelete(a *app) *cobra.Command {
	var all, purge bool
	cmd := a.command("delete", "Deletes a cluster: its node, kubeconfig entries and state (the download cache stays)", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		if all {
			return m.DeleteAll(cmd.Context(), purge)
		}
		return m.Delete(cmd.Context(), a.profile, purge)
	})
	cmd.Flags().BoolVar(&all, "all", false, "delete every profile")
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the mkube directory ($MKUBE_HOME), cache included")
	return cmd
}

func newStatus(a *app) *cobra.Command {
	var format string
	cmd := a.command("status", "Shows a cluster's status; the exit code has bits 1 (host), 2 (kubelet), 4 (apiserver) for what is not running", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		s, err := m.GetStatus(cmd.Context(), a.profile)
		if err != nil {
			return err
		}
		if err := printStatus(a.stdout, s, format); err != nil {
			return err
		}
		a.code = cluster.ExitCode(s)
		return nil
	})
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text or json")
	return cmd
}

func newIP(a *app) *cobra.Command {
	var nodeName string
	cmd := a.command("ip", "Prints the node's IP address", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		ip, err := m.IP(cmd.Context(), a.profile, nodeName)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, ip)
		return nil
	})
	cmd.Flags().StringVarP(&nodeName, "node", "n", "", "the node (default: the primary control plane)")
	return cmd
}

func newSSH(a *app) *cobra.Command {
	var nodeName string
	cmd := a.command("ssh [-- COMMAND...]", "Logs into the node with SSH, or runs a command there", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		code, err := m.SSH(cmd.Context(), a.profile, nodeName, args, a.stdin, a.stdout, a.stderr)
		a.code = code
		return err
	})
	cmd.Flags().StringVarP(&nodeName, "node", "n", "", "the node (default: the primary control plane)")
	return cmd
}

func newKubectl(a *app) *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl -- [ARGS...]",
		Short:              "Runs the cluster's version of kubectl against it",
		DisableFlagParsing: false,
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			code, err := m.Kubectl(cmd.Context(), a.profile, args, a.stdin, a.stdout, a.stderr)
			a.code = code
			return err
		}),
	}
}

func newProfile(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "profile [NAME]",
		Short: "Prints the current profile, or makes NAME the default for every command (list: all profiles)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return reason.Errorf(reason.Usage, "e.g. mkube profile dev", "profile takes at most one name, not %d", len(args))
			}
			return nil
		},
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprintln(a.stdout, a.profile)
				return nil
			}
			if err := m.SetDefaultProfile(cmd.Context(), args[0]); err != nil {
				return err
			}
			a.out.Step(out.Check, "mkube profile was successfully set to %s", args[0])
			return nil
		}),
	}
	list := a.command("list", "Lists all profiles", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		rows, err := m.Profiles(cmd.Context())
		if err != nil {
			return err
		}
		if len(rows) == 0 && format != "json" {
			a.out.Step("🤹", "No profiles found. To start a cluster, run: mkube start")
			return nil
		}
		return printProfiles(a.stdout, rows, format)
	})
	list.Flags().StringVarP(&format, "output", "o", "table", "output format: table or json")
	list.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return reason.New(reason.Usage, err, "") })
	cmd.AddCommand(list)
	return cmd
}

func newLogs(a *app) *cobra.Command {
	var lines int
	var nodeName string
	var file string
	cmd := a.command("logs", "Shows kubelet, containerd and control-plane logs for bug reports", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		w := a.stdout
		if file != "" {
			f, err := os.Create(file)
			if err != nil {
				return reason.New(reason.Usage, err, "")
			}
			defer f.Close()
			w = f
		}
		return m.Logs(cmd.Context(), a.profile, nodeName, lines, w)
	})
	cmd.Flags().IntVarP(&lines, "length", "n", 60, "lines of each log to show")
	cmd.Flags().StringVar(&nodeName, "node", "", "the node (default: the primary control plane)")
	cmd.Flags().StringVar(&file, "file", "", "write the logs to this file")
	return cmd
}

func newVersion(a *app) *cobra.Command {
	var short bool
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Prints mkube's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return printVersion(a.stdout, versionInfo{Info: release.Current(), DefaultKubernetes: k8sversion.DefaultString}, short, format)
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "print just the version number")
	cmd.Flags().StringVarP(&format, "output", "o", "", "json for machine-readable output")
	return cmd
}

func newGetVersions(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get-k8s-versions",
		Short: "Lists the supported Kubernetes versions, newest first",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, v := range k8sversion.Known() {
				mark := ""
				if v == k8sversion.Default() {
					mark = " (default)"
				}
				fmt.Fprintf(a.stdout, "%s%s\n", v, mark)
			}
			return nil
		},
	}
}

func newUpdateContext(a *app) *cobra.Command {
	return a.command("update-context", "Points the cluster's kubeconfig context at its current API server address", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		return m.UpdateContext(cmd.Context(), a.profile)
	})
}
