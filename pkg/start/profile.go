package start

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"mkube/pkg/addons"
	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/k8sversion"
	"mkube/pkg/reason"
)

// profileStep builds the profile from the flags, or loads the existing one and checks the flags
// agree with it.
func profileStep(_ context.Context, s *State) error {
	p, existing, err := profileFor(s.m.Home, s.opts, s.host)
	if err != nil {
		return err
	}
	if err := checkMirrorTransport(p, s.opts.InsecureRegistry, existing); err != nil {
		return err
	}
	if s.WaitFor, err = kubeadm.ParseWait(s.opts.Wait); err != nil {
		return reason.New(reason.Usage, err, "")
	}
	s.Profile, s.Existing = p, existing
	s.Version = k8sversion.MustParse(p.KubernetesVersion)
	if existing {
		for _, flag := range ignoredSourceFlags(p, s.opts) {
			s.m.Out.Warn("--%s is ignored: profile %q keeps the sources it was created with; `mkube delete -p %s` and start again to change them", flag, p.Name, p.Name)
		}
	}
	return nil
}

// ignoredSourceFlags are the source flags given to a start of an existing profile with values
// other than the profile's: a start does not change a profile, and a user who adds --mirror to go
// offline must hear that it is not used.
func ignoredSourceFlags(p *config.Profile, o Options) []string {
	if o.Set == nil {
		return nil
	}
	var ignored []string
	for flag, differs := range map[string]bool{
		"mirror":           o.Mirror != strings.TrimPrefix(p.Mirror, plainHTTPPrefix),
		"image-repository": o.ImageRepository != strings.TrimPrefix(p.ImageRepository, plainHTTPPrefix),
		"binary-mirror":    o.BinaryMirror != p.BinaryMirror,
		"base-image":       o.BaseImage != p.BaseImage,
		"iso-url":          strings.Join(o.ISOURLs, ",") != strings.Join(p.ISOURLs, ","),
	} {
		if differs && o.Set(flag) {
			ignored = append(ignored, flag)
		}
	}
	slices.Sort(ignored)
	return ignored
}

func profileFor(home config.Home, o Options, host HostResources) (*config.Profile, bool, error) {
	set := o.Set
	if set == nil {
		set = func(string) bool { return false }
	}
	for _, a := range o.Addons {
		if _, err := addons.Find(a); err != nil {
			return nil, false, reason.New(reason.Usage, err, "run `mkube addons list`")
		}
	}
	if p, err := home.Load(o.Profile); err == nil {
		return p, true, checkExisting(p, o, set)
	}
	p, err := newProfile(o, host)
	return p, false, err
}

// checkExisting refuses flags that would change what an existing cluster is, and takes the addons
// the user asked for.
func checkExisting(p *config.Profile, o Options, set func(string) bool) error {
	if set("kubernetes-version") {
		v, err := k8sversion.Resolve(o.KubernetesVersion)
		if err != nil {
			return reason.New(reason.K8sUnsupported, err, "")
		}
		if v.String() != p.KubernetesVersion {
			return reason.Errorf(reason.K8sUnsupported,
				fmt.Sprintf("delete it first (`mkube delete -p %s`) or use another profile (-p NAME)", p.Name),
				"profile %q runs Kubernetes %s; changing an existing cluster to %s is not supported", p.Name, p.KubernetesVersion, v)
		}
	}
	if set("cni") && o.CNI != p.CNI && !(o.CNI == config.CNIAuto && p.CNI == "") {
		return reason.Errorf(reason.Usage, fmt.Sprintf("delete it first (`mkube delete -p %s`) or use another profile (-p NAME)", p.Name),
			"profile %q was created with --cni=%s; a start does not change its pod network", p.Name, cmp.Or(p.CNI, config.CNIAuto))
	}
	if set("ha") && o.HA != p.HA {
		return reason.Errorf(reason.Usage, fmt.Sprintf("delete it first (`mkube delete -p %s`) or use another profile (-p NAME)", p.Name),
			"profile %q was created with --ha=%t; a start does not change that", p.Name, p.HA)
	}
	if set("nodes") && max(o.Nodes, 1) != len(p.Nodes) {
		return reason.Errorf(reason.Usage, fmt.Sprintf("delete it first (`mkube delete -p %s`) or use another profile (-p NAME)", p.Name),
			"profile %q has %d node(s); a start does not change the number of nodes of an existing cluster", p.Name, len(p.Nodes))
	}
	if set("driver") && o.Driver != p.Driver {
		return reason.Errorf(reason.DriverUnsupported, "delete it first, or use another profile (-p NAME)",
			"profile %q uses the %s driver, not %s", p.Name, p.Driver, o.Driver)
	}
	for _, a := range o.Addons {
		if p.Addons == nil {
			p.Addons = map[string]bool{}
		}
		p.Addons[a] = true
	}
	return nil
}

// maxNodes bounds --nodes: node names end in -m02 … -m99.
const maxNodes = 99

// newProfile checks the flags of a new cluster against the minimums and the host.
func newProfile(o Options, host HostResources) (*config.Profile, error) {
	v, err := k8sversion.Resolve(o.KubernetesVersion)
	if err != nil {
		return nil, reason.New(reason.K8sUnsupported, err, "")
	}
	if o.CPUs < cluster.MinCPUs {
		return nil, reason.Errorf(reason.InsufficientCores, "use --cpus=2 or more",
			"requested cpu count %d is less than the minimum allowed of %d", o.CPUs, cluster.MinCPUs)
	}
	if host.CPUs > 0 && o.CPUs > host.CPUs {
		return nil, reason.Errorf(reason.InsufficientCores, fmt.Sprintf("use --cpus=%d or fewer", host.CPUs),
			"requested cpu count %d is greater than the %d CPUs of this host", o.CPUs, host.CPUs)
	}
	mem, err := cluster.ParseMB(o.Memory)
	if err != nil {
		return nil, reason.New(reason.Usage, fmt.Errorf("invalid --memory: %w", err), "")
	}
	if mem < cluster.MinMemoryMB {
		return nil, reason.Errorf(reason.InsufficientMemory, fmt.Sprintf("use --memory=%dmb or more", cluster.MinMemoryMB),
			"requested memory allocation %dMB is less than the usable minimum of %dMB", mem, cluster.MinMemoryMB)
	}
	if host.MemoryMB > 0 && mem > host.MemoryMB {
		return nil, reason.Errorf(reason.InsufficientMemory, fmt.Sprintf("use --memory=%dmb or less", host.MemoryMB),
			"requested memory allocation %dMB is more than this host's %dMB", mem, host.MemoryMB)
	}
	disk, err := cluster.ParseMB(o.DiskSize)
	if err != nil {
		return nil, reason.New(reason.Usage, fmt.Errorf("invalid --disk-size: %w", err), "")
	}
	if disk < cluster.MinDiskMB {
		return nil, reason.Errorf(reason.InsufficientStorage, fmt.Sprintf("use --disk-size=%dmb or more", cluster.MinDiskMB),
			"requested disk size %dMB is less than the minimum of %dMB", disk, cluster.MinDiskMB)
	}
	if _, err := kubeadm.ParseExtraConfig(o.ExtraConfig); err != nil {
		return nil, reason.New(reason.Usage, err, "")
	}
	nodes := max(o.Nodes, 1)
	cni := o.CNI
	if cni == "" {
		cni = config.CNIAuto
	}
	switch {
	case !slices.Contains(config.CNIs, cni):
		return nil, reason.Errorf(reason.Usage, "use --cni="+strings.Join(config.CNIs, ", --cni="), "--cni=%s is not a pod network mkube has", o.CNI)
	case nodes > maxNodes:
		return nil, reason.Errorf(reason.Usage, fmt.Sprintf("use --nodes=%d or fewer", maxNodes), "--nodes=%d: too many nodes", o.Nodes)
	case (nodes > 1 || o.HA) && len(o.Profile) > config.MaxMultiNodeName:
		return nil, reason.Errorf(reason.Usage, "use a shorter profile name (-p NAME)",
			"profile name %q is too long for more than one node: its nodes' names (%s) must fit in 63 characters", o.Profile, config.NodeName(o.Profile, nodes))
	}
	p := &config.Profile{
		Name: o.Profile, Driver: o.Driver, KubernetesVersion: v.String(), CPUs: o.CPUs, MemoryMB: mem, DiskMB: disk,
		BinaryMirror: o.BinaryMirror, ImageRepository: o.ImageRepository, BaseImage: o.BaseImage, Mirror: o.Mirror,
		ISOURLs: o.ISOURLs, DriverOptions: o.DriverOptions,
		APIServerPort: cluster.DefaultAPIPort, APIServerNames: o.APIServerNames, APIServerIPs: o.APIServerIPs,
		ExtraConfig: o.ExtraConfig, ServiceCIDR: cluster.DefaultServiceCIDR, PodCIDR: cluster.DefaultPodCIDR,
		DNSDomain: cluster.DefaultDNSDomain, EmbedCerts: o.EmbedCerts, Created: time.Now().UTC(),
		Addons: map[string]bool{}, OwnerMarks: true, Nodes: config.NewNodes(o.Profile, nodes), HA: o.HA, CNI: cni,
	}
	if o.HA {
		p.Nodes = config.NewHANodes(o.Profile, nodes)
	}
	for _, a := range o.Addons {
		p.Addons[a] = true
	}
	return p, nil
}

// saveStep writes the profile before the machine exists, so `mkube delete` can clean up a start
// that dies half way.
func saveStep(_ context.Context, s *State) error {
	return s.m.Home.Save(s.Profile)
}
