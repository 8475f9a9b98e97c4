// Package start is `mkube start`: a declared list of small named steps over one State value —
// profile, driver, artifacts, machine, node facts, PKI, provision, kubeconfig, addons, wait — like
// kubeadm's phases. Each step checks what is already in place, so a start after a crash, Ctrl-C or
// stop resumes instead of failing; -v 1 prints how long each step took.
package start

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"mkube/pkg/addons"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/driver"
	"mkube/pkg/k8sversion"
	"mkube/pkg/node"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// Options are `mkube start`'s flags.
type Options struct {
	Profile           string
	Driver            string
	KubernetesVersion string
	CPUs              int
	Memory            string
	DiskSize          string
	BinaryMirror      string
	ImageRepository   string
	InsecureRegistry  []string // hosts the binary mirror and image repository may use plain HTTP with
	BaseImage         string
	Mirror            string   // one registry with everything a start needs (HOST[:PORT]/PATH)
	ISOURLs           []string // VM drivers: where to get the ISO, tried in order
	// DriverOptions are the driver's own settings (--kvm-qemu-uri, …), by option name.
	DriverOptions  map[string]string
	APIServerNames []string
	APIServerIPs   []string
	ExtraConfig    []string
	Addons         []string
	KeepContext    bool
	EmbedCerts     bool
	DownloadOnly   bool
	Wait           string
	WaitTimeout    time.Duration
	Nodes          int    // --nodes: how many nodes a new cluster has (0 is 1)
	HA             bool   // --ha: three control planes behind a load balancer
	CNI            string // --cni: config.CNIs
	// OnlyNode, when set, leaves the profile's other stopped nodes stopped (`node start`, `node
	// add`): only the primary and this node are brought up.
	OnlyNode string
	// AddedNode names the node `mkube node add` just put in the profile: the start keeps the
	// current kubeconfig context and closes with minikube's "Successfully added" line.
	AddedNode string
	// StartedNode is AddedNode for `mkube node start`.
	StartedNode string
	// Set reports whether the user gave a flag, so an existing profile's settings win over defaults.
	Set func(flag string) bool
}

// HostResources are the host's CPUs and memory, for checking what a user asks for.
type HostResources struct {
	CPUs     int
	MemoryMB int
}

// State is what the steps build up, each from what the ones before it left.
type State struct {
	m    *cluster.Manager
	opts Options
	host HostResources

	Profile  *config.Profile
	Existing bool // the profile was there before this start
	Version  k8sversion.Version
	WaitFor  []string
	Entry    driver.Entry
	Driver   driver.Driver
	Addons   []addons.Addon // enabled and usable
	Binaries node.Binaries
	ISO      string // VM drivers: the cached ISO
	// NodeFiles writes the node image's root file system (Entry.NodeFiles drivers: ssh).
	NodeFiles func(ctx context.Context, w io.Writer) error
	// ImageList is what the version's kubeadm runs; Images what the node gets from the cache.
	ImageList []string
	Images    Images
	Endpoint  driver.Endpoint
	Runner    driver.Runner
	Cgroups   node.Cgroups
	PKI       map[string]string
	// Others are the nodes after the primary (--nodes), each with its driver, endpoint and runner.
	Others []*NodeState
	// LB is the load balancer in front of an --ha cluster's API servers: where the nodes (IP) and
	// the host (APIServerHost/Port) reach them.
	LB *driver.Endpoint
}

// waitTimeout bounds a start's waits for the cluster (--wait-timeout; 6 minutes when unset).
func (o Options) waitTimeout() time.Duration {
	if o.WaitTimeout > 0 {
		return o.WaitTimeout
	}
	return 6 * time.Minute
}

// Step is one named part of a start.
type Step struct {
	Name string
	Run  func(ctx context.Context, s *State) error
}

// Steps of a start, in order.
var Steps = []Step{
	{"profile", profileStep},
	{"driver", driverStep},
	{"binaries", binariesStep},
	{"iso", isoStep},
	{"node image", nodeImageStep},
	{"node files", nodeFilesStep},
	// With the version's image list known (every start but a version's first on this host), the
	// images are in the cache before anything is created: a mirror that cannot serve them changes
	// nothing. The first time, the node's kubeadm lists them, and they are pulled after it.
	{"images", imagesStep},
	{"save profile", saveStep},
	{"machines", machinesStep},
	{"load balancer", loadBalancerStep},
	{"node facts", nodeFactsStep},
	{"images (first start of a version)", imagesStep},
	{"pki", pkiStep},
	{"provision", provisionStep},
	{"join", joinStep},
	{"pod network", podNetworkStep},
	{"network policy", networkPolicyStep},
	{"kubeconfig", kubeconfigStep},
	{"addons", addonsStep},
	{"wait", waitStep},
	{"done", doneStep},
}

// DownloadSteps are a start with --download-only: the cache filled, nothing created.
var DownloadSteps = []Step{
	{"profile", profileStep},
	{"driver", driverStep},
	{"binaries", binariesStep},
	{"iso", isoStep},
	{"node image", nodeImageStep},
	{"node files", nodeFilesStep},
	{"image list", hostImageListStep},
	{"images", imagesStep},
}

// Run creates or resumes a cluster.
func Run(ctx context.Context, m *cluster.Manager, o Options, host HostResources) error {
	if err := config.ValidateProfileName(o.Profile); err != nil {
		return reason.New(reason.Usage, err, "")
	}
	m.Out.Step(out.Happy, "mkube %s on %s", release.Version(), m.HostDescription())
	unlock, err := m.LockProfile(ctx, o.Profile)
	if err != nil {
		return err
	}
	defer unlock()
	return RunLocked(ctx, m, o, host)
}

// RunLocked is Run for a caller that holds the profile's lock already (`node add`, `node start`).
func RunLocked(ctx context.Context, m *cluster.Manager, o Options, host HostResources) error {
	s := &State{m: m, opts: o, host: host}
	defer s.close()
	steps := Steps
	if o.DownloadOnly {
		steps = DownloadSteps
	}
	if err := RunSteps(ctx, s, steps); err != nil {
		return err
	}
	if o.DownloadOnly {
		m.Out.Step(out.Check, "Download complete!")
	}
	return nil
}

// RunSteps runs steps in order, timing each at -v 1.
func RunSteps(ctx context.Context, s *State, steps []Step) error {
	for _, st := range steps {
		begin := time.Now()
		if err := st.Run(ctx, s); err != nil {
			var re *reason.Error
			if errors.As(err, &re) {
				return err
			}
			return fmt.Errorf("%s: %w", st.Name, err)
		}
		s.m.Out.V(1, "start step %q took %s", st.Name, time.Since(begin).Round(time.Millisecond))
	}
	return nil
}

// close lets go of what the steps hold: the image cache and the driver's connections.
func (s *State) close() {
	s.Images.done()
	for _, n := range s.Others {
		n.close()
	}
	if s.Runner != nil {
		s.Runner.Close()
	}
	if s.Driver != nil {
		s.Driver.Close()
	}
}
