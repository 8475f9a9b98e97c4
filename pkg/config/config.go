// Package config is mkube's state on disk: where it lives ($MKUBE_HOME) and each profile's
// configuration (profiles/NAME/config.json).
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"mkube/pkg/atomicfile"
	"mkube/pkg/safepath"
)

// DefaultProfile is the profile used without -p.
const DefaultProfile = "mkube"

// Home is the root of mkube's state.
type Home string

// DefaultHome is $MKUBE_HOME, or ~/.mkube.
func DefaultHome() (Home, error) {
	if h := os.Getenv("MKUBE_HOME"); h != "" {
		abs, err := filepath.Abs(h)
		return Home(abs), err
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find your home directory: set MKUBE_HOME")
	}
	return Home(filepath.Join(u, ".mkube")), nil
}

func (h Home) path(parts ...string) string {
	return filepath.Join(append([]string{string(h)}, parts...)...)
}

// ProfileDir holds a profile's config.json and client credentials. A name that is not one safe
// path element is refused, whatever the callers checked before.
func (h Home) ProfileDir(name string) (string, error) {
	return safepath.Join(string(h), "profiles", name)
}

// MachineDir holds a machine's keys and disks.
func (h Home) MachineDir(name string) (string, error) {
	return safepath.Join(string(h), "machines", name)
}

// CertsDir holds the CAs shared by all profiles (kept across delete/recreate).
func (h Home) CertsDir() string { return h.path("certs") }

// CacheDir holds downloads: binaries, images, preloads, ISOs.
func (h Home) CacheDir(parts ...string) string { return h.path(append([]string{"cache"}, parts...)...) }

// Profile is one cluster's configuration, as `mkube start` was asked for it.
type Profile struct {
	Name              string   `json:"name"`
	Driver            string   `json:"driver"`
	KubernetesVersion string   `json:"kubernetesVersion"`
	CPUs              int      `json:"cpus"`
	MemoryMB          int      `json:"memoryMB"`
	DiskMB            int      `json:"diskMB"`
	BinaryMirror      string   `json:"binaryMirror,omitempty"`
	ImageRepository   string   `json:"imageRepository,omitempty"`
	BaseImage         string   `json:"baseImage,omitempty"`
	ISOURLs           []string `json:"isoURLs,omitempty"`
	// Mirror is one registry holding everything a start needs (--mirror), HOST[:PORT]/PATH.
	Mirror string `json:"mirror,omitempty"`
	// DriverOptions are the values of the driver's own options (kvm-qemu-uri, …) given at creation.
	DriverOptions map[string]string `json:"driverOptions,omitempty"`
	// Read from profiles written before DriverOptions existed, and moved into it by Load.
	LegacyKVMQemuURI   string          `json:"kvmQemuURI,omitempty"`
	LegacyKVMAccel     string          `json:"kvmAccel,omitempty"`
	LegacyHypervSwitch string          `json:"hypervVirtualSwitch,omitempty"`
	APIServerPort      int             `json:"apiServerPort"`
	APIServerNames     []string        `json:"apiServerNames,omitempty"`
	APIServerIPs       []string        `json:"apiServerIPs,omitempty"`
	ExtraConfig        []string        `json:"extraConfig,omitempty"`
	ServiceCIDR        string          `json:"serviceCIDR"`
	PodCIDR            string          `json:"podCIDR"`
	DNSDomain          string          `json:"dnsDomain"`
	EmbedCerts         bool            `json:"embedCerts,omitempty"`
	Addons             map[string]bool `json:"addons,omitempty"`
	Created            time.Time       `json:"created"`
	// OwnerMarks says this profile's host objects carry the home's ID (every profile created since
	// mkube marks them); a profile without it was made by an older mkube, whose objects are adopted.
	OwnerMarks bool `json:"ownerMarks,omitempty"`
	// Nodes are the cluster's nodes, the primary control plane first (minikube's Nodes).
	Nodes []Node `json:"nodes,omitempty"`
	// HA: three control planes behind a load balancer (--ha).
	HA bool `json:"ha,omitempty"`
	// CNI is --cni: CNIAuto (also ""), CNIBridge or CNIKubeRouter.
	CNI string `json:"cni,omitempty"`
}

// The pod networks --cni selects. Every one is the bridge plugin on each node, with routes
// between the nodes' pod ranges; kube-router adds NetworkPolicy enforcement.
const (
	CNIAuto       = "auto"        // bridge for one node, kube-router for more
	CNIBridge     = "bridge"      // no NetworkPolicy
	CNIKubeRouter = "kube-router" // NetworkPolicy enforced by kube-router
)

// CNIs are --cni's values.
var CNIs = []string{CNIAuto, CNIBridge, CNIKubeRouter}

// EffectiveCNI is the pod network the cluster runs now: auto resolves by the node count, so a
// node added to a one-node cluster brings NetworkPolicy with it.
func (p *Profile) EffectiveCNI() string {
	switch {
	case p.CNI == CNIBridge || p.CNI == CNIKubeRouter:
		return p.CNI
	case len(p.Nodes) > 1 || p.HA:
		return CNIKubeRouter
	}
	return CNIBridge
}

// Node is one node of a profile's cluster.
type Node struct {
	Name         string `json:"name"`
	ControlPlane bool   `json:"controlPlane"`
	Worker       bool   `json:"worker"`
}

// NodeName is the name of a profile's n-th node (1-based), as minikube names them: the profile's
// own name for the first, then <profile>-m02, <profile>-m03, ….
func NodeName(profile string, n int) string {
	if n <= 1 {
		return profile
	}
	return fmt.Sprintf("%s-m%02d", profile, n)
}

// NodeOrdinal is the place of a node named by NodeName in its profile: 1 for the primary, n for
// <profile>-mNN, 0 for a name that is neither.
func NodeOrdinal(profile, name string) int {
	if name == profile {
		return 1
	}
	rest, ok := strings.CutPrefix(name, profile+"-m")
	if !ok || len(rest) != 2 {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 2 {
		return 0
	}
	return n
}

// MaxMultiNodeName is the longest profile name that can have more than one node: "-mNN" must fit
// in a 63-character host name.
const MaxMultiNodeName = 59

// NewNodes are the nodes of a new cluster of n nodes: the primary control plane (which runs
// workloads too), then n-1 workers.
func NewNodes(profile string, n int) []Node {
	nodes := []Node{{Name: profile, ControlPlane: true, Worker: true}}
	for i := 2; i <= n; i++ {
		nodes = append(nodes, Node{Name: NodeName(profile, i), Worker: true})
	}
	return nodes
}

// NewHANodes are the nodes of a new --ha cluster of n nodes (at least 3): three control planes,
// which run workloads too, then workers.
func NewHANodes(profile string, n int) []Node {
	nodes := NewNodes(profile, max(n, 3))
	for i := range nodes[:3] {
		nodes[i].ControlPlane = true
	}
	return nodes
}

// Node finds a node by name; "" is the primary.
func (p *Profile) Node(name string) (Node, int, bool) {
	if name == "" {
		name = p.Name
	}
	for i, n := range p.Nodes {
		if n.Name == name {
			return n, i + 1, true
		}
	}
	return Node{}, 0, false
}

var profileName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateProfileName keeps names usable as container, network, volume, host and kubeconfig
// names, and as one path element under $MKUBE_HOME.
func ValidateProfileName(name string) error {
	if !profileName.MatchString(name) || safepath.Elem(name) != nil {
		return fmt.Errorf("profile name %s is invalid: use 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit", quoteName(name))
	}
	return nil
}

// quoteName shows a rejected name in an error: quoted, control characters escaped, and cut
// short, so a hostile name cannot forge more output lines or flood the terminal.
func quoteName(s string) string {
	if len(s) > 70 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// ErrNoProfile is returned for a profile that does not exist.
var ErrNoProfile = errors.New("profile not found")

// Load reads a profile.
func (h Home) Load(name string) (*Profile, error) {
	dir, err := h.ProfileDir(name)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("profile %q: %w", name, ErrNoProfile)
	}
	if err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("profile %q has a corrupt config.json (%v): run `mkube delete -p %s`", name, err, name)
	}
	p.migrate()
	return &p, nil
}

// Save writes a profile atomically: a crash never leaves a half-written config.json. It is 0600:
// a profile can name mirrors with credentials in their URLs.
func (h Home) Save(p *Profile) error {
	dir, err := h.ProfileDir(p.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "config.json"), append(raw, '\n'), 0o600)
}

// List returns the names of all profiles, sorted.
func (h Home) List() ([]string, error) {
	ents, err := os.ReadDir(h.path("profiles"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		// Only names mkube could have made: anything else in profiles/ is not a profile.
		if ValidateProfileName(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(h.path("profiles", e.Name()), "config.json")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes a profile's and its machine's state (not the shared certs or the cache).
func (h Home) Remove(name string) error {
	for _, dir := range []func(string) (string, error){h.MachineDir, h.ProfileDir} {
		p, err := dir(name)
		if err != nil {
			return err
		}
		if err := safepath.RemoveAll(string(h), p); err != nil {
			return err
		}
	}
	return nil
}

// migrate moves what older mkube versions stored elsewhere into today's fields.
func (p *Profile) migrate() {
	for k, v := range map[string]string{"kvm-qemu-uri": p.LegacyKVMQemuURI, "kvm-accel": p.LegacyKVMAccel,
		"hyperv-virtual-switch": p.LegacyHypervSwitch} {
		if v == "" {
			continue
		}
		if p.DriverOptions == nil {
			p.DriverOptions = map[string]string{}
		}
		if _, ok := p.DriverOptions[k]; !ok {
			p.DriverOptions[k] = v
		}
	}
	p.LegacyKVMQemuURI, p.LegacyKVMAccel, p.LegacyHypervSwitch = "", "", ""
	if len(p.Nodes) == 0 {
		p.Nodes = NewNodes(p.Name, 1) // profiles from before multi-node had one node
	}
}
