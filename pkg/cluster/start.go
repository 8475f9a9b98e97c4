package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"mkube/pkg/addons"
	"mkube/pkg/atomicfile"
	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/certs"
	"mkube/pkg/config"
	"mkube/pkg/download"
	"mkube/pkg/driver"
	"mkube/pkg/images"
	"mkube/pkg/isoimage"
	"mkube/pkg/k8sversion"
	"mkube/pkg/kubeconfig"
	"mkube/pkg/mirror"
	"mkube/pkg/out"
	"mkube/pkg/reason"
	"mkube/pkg/ssh"
)

// StartOptions are `mkube start`'s flags.
type StartOptions struct {
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
	ISOURLs           []string // VM drivers: where to get the ISO, tried in order
	KVMQemuURI        string
	KVMAccel          string // auto, kvm or tcg
	HypervSwitch      string
	APIServerNames    []string
	APIServerIPs      []string
	ExtraConfig       []string
	Addons            []string
	KeepContext       bool
	EmbedCerts        bool
	DownloadOnly      bool
	Wait              string
	WaitTimeout       time.Duration
	// Set reports whether the user gave a flag, so an existing profile's settings win over defaults.
	Set func(flag string) bool
}

// ownerChecker is a driver that can tell, before it creates anything, whether every host object it
// would use for the profile (not only the machine) is free or already the profile's own.
type ownerChecker interface {
	CheckOwned(ctx context.Context) error
}

// checkOwned refuses a start whose machine — or, where the driver can tell, any object it would
// create — has the profile's name but not its mark. A driver without CheckOwned refuses a foreign
// machine in State.
func checkOwned(ctx context.Context, d driver.Driver) error {
	if c, ok := d.(ownerChecker); ok {
		if err := c.CheckOwned(ctx); err != nil {
			return machineError(reason.ProviderError, err, "")
		}
		return nil
	}
	if _, err := d.State(ctx); errors.Is(err, driver.ErrNotOwned) {
		return machineError(reason.ProviderError, err, "")
	}
	return nil
}

// HostResources are the host's CPUs and memory, for checking what a user asks for.
type HostResources struct {
	CPUs     int
	MemoryMB int
}

// Start creates or resumes a cluster.
func (m *Manager) Start(ctx context.Context, o StartOptions, host HostResources) error {
	if err := config.ValidateProfileName(o.Profile); err != nil {
		return reason.New(reason.Usage, err, "")
	}
	m.Out.Step(out.Happy, "mkube %s on %s", Version, hostOS())
	unlock, err := m.lockProfile(ctx, o.Profile)
	if err != nil {
		return err
	}
	defer unlock()

	p, existing, err := m.profileFor(o, host)
	if err != nil {
		return err
	}
	if err := checkMirrorTransport(p, o.InsecureRegistry, existing); err != nil {
		return err
	}
	entry, err := m.chooseDriver(ctx, o, p, existing)
	if err != nil {
		return err
	}
	p.Driver = entry.Name
	v := k8sversion.MustParse(p.KubernetesVersion)
	waitFor, err := kubeadm.ParseWait(o.Wait)
	if err != nil {
		return reason.New(reason.Usage, err, "")
	}
	// Refused before anything is created or downloaded: a kubeconfig entry, container, volume,
	// network or VM of this name that is not ours.
	_, clientCert, _ := m.credentials(p.Name)
	if err := kubeconfig.CheckOwned(m.KubeconfigPaths, p.Name, m.HomeID, clientCert); err != nil {
		return reason.New(reason.Conflict, err, "")
	}
	opts, err := m.driverOptions(p.Name, p)
	if err != nil {
		return err
	}
	d, err := entry.New(p.Name, opts)
	if err != nil {
		return reason.New(reason.Usage, err, "")
	}
	if err := checkOwned(ctx, d); err != nil {
		return err
	}

	enabled := m.usableAddons(p)
	// Artifacts first: with a filled cache nothing below touches the network.
	art, err := m.cacheArtifacts(ctx, p, v, enabled)
	if err != nil {
		return err
	}
	defer art.done()
	iso := ""
	if entry.ISO {
		if iso, err = m.cacheISO(ctx, p); err != nil {
			return err
		}
	}
	if o.DownloadOnly {
		m.Out.Step(out.Check, "Download complete!")
		return nil
	}
	// Saved before the machine exists, so `mkube delete` can clean up a start that dies half way.
	if err := m.Home.Save(p); err != nil {
		return err
	}
	m.Out.Step(out.ThumbsUp, "Starting %q primary control-plane node in %q cluster", p.Name, p.Name)
	image := p.BaseImage
	if entry.ISO {
		image = iso
	}
	ep, r, err := m.machine(ctx, p, d, image, entry.ISO)
	if err != nil {
		return err
	}
	params, err := m.params(ctx, p, v, ep, r)
	if err != nil {
		return err
	}
	pki, err := m.certificates(p, params)
	if err != nil {
		return err
	}

	m.Out.Step(out.Docker, "Preparing Kubernetes %s on containerd ...", v)
	manifests := map[string][]byte{}
	for _, a := range enabled {
		if manifests[a.Name], err = addons.Render(a, addons.Values{NodeIP: ep.IP}); err != nil {
			return err
		}
	}
	removed, err := removedAddons(p)
	if err != nil {
		return err
	}
	b := &kubeadm.Bootstrapper{Out: m.Out}
	err = b.Provision(ctx, r, kubeadm.Cluster{
		Params: params, Binaries: art.binaries, PKI: pki,
		Images:       func(w io.Writer) error { return art.cache.WriteArchive(ctx, art.images, w) },
		ImagesDigest: art.digest, PauseImage: art.pause, Addons: manifests, RemovedAddons: removed,
		ExtraImages:       art.extraWriter(ctx),
		ExtraImagesDigest: art.extraDigest,
	})
	if err != nil {
		return reason.New(reason.K8sStart, err, "see `mkube logs -p "+p.Name+"`; `mkube delete -p "+p.Name+"` then start again if it persists")
	}
	if err := m.updateKubeconfig(ctx, p, ep, !o.KeepContext); err != nil {
		return reason.New(reason.Config, err, "check that your kubeconfig is valid YAML")
	}

	if len(waitFor) > 0 {
		m.Out.Step(out.Verify, "Verifying Kubernetes components...")
		client, err := m.client(p.Name, ep)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, o.WaitTimeout)
		defer cancel()
		if err := kubeadm.Wait(wctx, client, p.Name, waitFor, func(f string, a ...any) { m.Out.V(1, f, a...) }); err != nil {
			return reason.New(reason.K8sTimeout, err, "see `mkube logs -p "+p.Name+"`; a slow machine may need a longer --wait-timeout")
		}
	}
	var names []string
	for _, a := range enabled {
		names = append(names, a.Name)
	}
	if len(names) > 0 {
		m.Out.Step(out.Star, "Enabled addons: %s", strings.Join(names, ", "))
	}
	if o.KeepContext {
		m.Out.Step(out.Surf, "Done! The %q context was updated; the current context was kept (--keep-context)", p.Name)
	} else {
		m.Out.Step(out.Surf, "Done! kubectl is now configured to use %q cluster and %q namespace by default", p.Name, "default")
	}
	return nil
}

// profileFor builds the profile from flags, or loads the existing one and checks the flags agree.
func (m *Manager) profileFor(o StartOptions, host HostResources) (*config.Profile, bool, error) {
	set := o.Set
	if set == nil {
		set = func(string) bool { return false }
	}
	for _, a := range o.Addons {
		if _, err := addons.Find(a); err != nil {
			return nil, false, reason.New(reason.Usage, err, "run `mkube addons list`")
		}
	}
	if p, err := m.Home.Load(o.Profile); err == nil {
		if set("kubernetes-version") {
			v, err := k8sversion.Resolve(o.KubernetesVersion)
			if err != nil {
				return nil, false, reason.New(reason.K8sUnsupported, err, "")
			}
			if v.String() != p.KubernetesVersion {
				return nil, false, reason.Errorf(reason.K8sUnsupported,
					fmt.Sprintf("delete it first (`mkube delete -p %s`) or use another profile (-p NAME)", p.Name),
					"profile %q runs Kubernetes %s; changing an existing cluster to %s is not supported", p.Name, p.KubernetesVersion, v)
			}
		}
		if set("driver") && o.Driver != p.Driver {
			return nil, false, reason.Errorf(reason.DriverUnsupported, "delete it first, or use another profile (-p NAME)",
				"profile %q uses the %s driver, not %s", p.Name, p.Driver, o.Driver)
		}
		for _, a := range o.Addons {
			if p.Addons == nil {
				p.Addons = map[string]bool{}
			}
			p.Addons[a] = true
		}
		return p, true, nil
	}

	v, err := k8sversion.Resolve(o.KubernetesVersion)
	if err != nil {
		return nil, false, reason.New(reason.K8sUnsupported, err, "")
	}
	if o.CPUs < MinCPUs {
		return nil, false, reason.Errorf(reason.InsufficientCores, "use --cpus=2 or more",
			"requested cpu count %d is less than the minimum allowed of %d", o.CPUs, MinCPUs)
	}
	if host.CPUs > 0 && o.CPUs > host.CPUs {
		return nil, false, reason.Errorf(reason.InsufficientCores, fmt.Sprintf("use --cpus=%d or fewer", host.CPUs),
			"requested cpu count %d is greater than the %d CPUs of this host", o.CPUs, host.CPUs)
	}
	mem, err := ParseMB(o.Memory)
	if err != nil {
		return nil, false, reason.New(reason.Usage, fmt.Errorf("invalid --memory: %w", err), "")
	}
	if mem < MinMemoryMB {
		return nil, false, reason.Errorf(reason.InsufficientMemory, fmt.Sprintf("use --memory=%dmb or more", MinMemoryMB),
			"requested memory allocation %dMB is less than the usable minimum of %dMB", mem, MinMemoryMB)
	}
	if host.MemoryMB > 0 && mem > host.MemoryMB {
		return nil, false, reason.Errorf(reason.InsufficientMemory, fmt.Sprintf("use --memory=%dmb or less", host.MemoryMB),
			"requested memory allocation %dMB is more than this host's %dMB", mem, host.MemoryMB)
	}
	disk, err := ParseMB(o.DiskSize)
	if err != nil {
		return nil, false, reason.New(reason.Usage, fmt.Errorf("invalid --disk-size: %w", err), "")
	}
	if disk < MinDiskMB {
		return nil, false, reason.Errorf(reason.InsufficientStorage, fmt.Sprintf("use --disk-size=%dmb or more", MinDiskMB),
			"requested disk size %dMB is less than the minimum of %dMB", disk, MinDiskMB)
	}
	if _, err := kubeadm.ParseExtraConfig(o.ExtraConfig); err != nil {
		return nil, false, reason.New(reason.Usage, err, "")
	}
	p := &config.Profile{
		Name: o.Profile, Driver: o.Driver, KubernetesVersion: v.String(), CPUs: o.CPUs, MemoryMB: mem, DiskMB: disk,
		BinaryMirror: o.BinaryMirror, ImageRepository: o.ImageRepository, BaseImage: o.BaseImage,
		ISOURLs: o.ISOURLs, KVMQemuURI: o.KVMQemuURI, KVMAccel: o.KVMAccel, HypervSwitch: o.HypervSwitch,
		APIServerPort: DefaultAPIPort, APIServerNames: o.APIServerNames, APIServerIPs: o.APIServerIPs,
		ExtraConfig: o.ExtraConfig, ServiceCIDR: DefaultServiceCIDR, PodCIDR: DefaultPodCIDR, DNSDomain: DefaultDNSDomain,
		EmbedCerts: o.EmbedCerts, Created: time.Now().UTC(), Addons: map[string]bool{}, OwnerMarks: true,
	}
	for _, a := range o.Addons {
		p.Addons[a] = true
	}
	return p, false, nil
}

// chooseDriver resolves --driver, the profile's driver, or auto-selection, and checks its health.
func (m *Manager) chooseDriver(ctx context.Context, o StartOptions, p *config.Profile, existing bool) (driver.Entry, error) {
	name, why := p.Driver, "based on existing profile"
	if !existing {
		name, why = o.Driver, "based on user configuration"
	}
	if name == "" {
		c, err := m.Drivers.Choose(ctx)
		if err != nil {
			return driver.Entry{}, reason.New(reason.DriverNotFound, err, "install Docker, or pass --driver")
		}
		if len(c.Others) > 0 {
			m.Out.Step(out.Sparkle, "Automatically selected the %s driver. Other choices: %s", c.Entry.Name, strings.Join(c.Others, ", "))
		} else {
			m.Out.Step(out.Sparkle, "Automatically selected the %s driver", c.Entry.Name)
		}
		for name, h := range c.Rejected {
			m.Out.V(1, "driver %s passed over: %s — %s", name, h.Problem, h.Fix)
		}
		return c.Entry, nil
	}
	e, ok := m.Drivers.Lookup(name)
	if !ok || !e.Supported {
		return e, reason.Errorf(reason.DriverUnsupported, "supported drivers: "+strings.Join(m.Drivers.Names(), ", "),
			"the driver %q is not supported on %s/%s", name, runtime.GOOS, runtime.GOARCH)
	}
	h := e.Health(ctx)
	if !h.Healthy {
		k := reason.ProviderNotRunning
		switch {
		case !h.Installed:
			k = reason.ProviderNotFound
		case h.Running:
			k = reason.ProviderPermission
		}
		return e, reason.Errorf(k, h.Fix, "%s", h.Problem)
	}
	m.Out.Step(out.Sparkle, "Using the %s driver %s", name, why)
	return e, nil
}

// artifacts are what a start needs from the cache.
type artifacts struct {
	binaries    map[string]string
	cache       *images.Cache
	images      []string // what the control plane and addons run
	digest      string
	extra       []string // the user's cached images (mkube cache add)
	extraDigest string
	pause       string
	// release lets other mkube processes change the image cache again (see cacheArtifacts).
	release func()
}

// done releases what the artifacts hold; safe on a zero value.
func (a artifacts) done() {
	if a.release != nil {
		a.release()
	}
}

func (a artifacts) extraWriter(ctx context.Context) func(io.Writer) error {
	if len(a.extra) == 0 {
		return nil
	}
	return func(w io.Writer) error { return a.cache.WriteArchive(ctx, a.extra, w) }
}

// cacheArtifacts downloads the Kubernetes binaries and pulls the images into the cache.
func (m *Manager) cacheArtifacts(ctx context.Context, p *config.Profile, v k8sversion.Version, enabled []addons.Addon) (artifacts, error) {
	a := artifacts{binaries: map[string]string{}}
	binMirror := p.BinaryMirror
	if binMirror == "" {
		binMirror = DefaultBinaryMirror
	}
	dl := &download.Downloader{Progress: m.Out.Err()}
	dir := m.Home.CacheDir("binaries", "linux", "amd64", v.String())
	for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		dst := filepath.Join(dir, n)
		if !download.Cached(dst) {
			m.Out.V(1, "downloading %s %s", n, v)
		}
		u := strings.TrimSuffix(binMirror, "/") + "/" + v.String() + "/bin/linux/amd64/" + n
		if err := dl.File(ctx, u, u+".sha256", dst, n); err != nil {
			return a, reason.New(reason.Download, err, "check --binary-mirror (an offline mirror: make mirror-serve)")
		}
		a.binaries[n] = dst
	}
	refs, err := imageList(ctx, a.binaries["kubeadm"], v, filepath.Join(dir, "images.txt"))
	if err != nil {
		return a, reason.New(reason.ImageCache, err, "")
	}
	for _, r := range refs {
		if repo, _, err := mirror.RepoPath(r); err == nil && repo == "pause" {
			a.pause = r
		}
	}
	for _, ad := range enabled {
		refs = append(refs, ad.Images...)
	}
	a.images = refs
	if a.extra, err = m.CachedImages(); err != nil {
		return a, err
	}
	refs = append(slices.Clone(refs), a.extra...)
	a.cache, err = images.Open(ctx, m.Home.CacheDir("images"))
	if err != nil {
		return a, reason.New(reason.ImageCache, err, "")
	}
	// Pull what is missing, then hold the cache as it is until the start is done with it, so a
	// `cache delete` in another terminal waits instead of taking images from under this start. One
	// that slipped in between the pull and the hold is noticed, and the pull done again.
	for attempt := 0; ; attempt++ {
		missing, err := a.cache.Missing(ctx, refs)
		if err != nil {
			return a, reason.New(reason.ImageCache, err, "")
		}
		if len(missing) > 0 {
			if attempt > 0 {
				m.Out.V(1, "%d images left the cache during this start: pulling them again", len(missing))
			}
			m.Out.Step(out.Download, "Pulling %d images for Kubernetes %s into the cache ...", len(missing), v)
			if err := a.cache.Ensure(ctx, refs, p.ImageRepository, m.Out.Err()); err != nil {
				return a, reason.New(reason.ImageCache, err, "check --image-repository (an offline mirror: make mirror-serve)")
			}
		}
		release, err := a.cache.Hold(ctx)
		if err != nil {
			return a, reason.New(reason.ImageCache, err, "")
		}
		if missing, err = a.cache.Missing(ctx, refs); err == nil && len(missing) == 0 {
			a.release = release
			break
		}
		release()
		if attempt == 2 {
			return a, reason.Errorf(reason.ImageCache, "run the start again once other mkube commands are done", "images keep leaving the cache during this start")
		}
	}
	if a.digest, err = a.cache.Digests(ctx, a.images); err != nil {
		a.done()
		return a, err
	}
	if a.extraDigest, err = a.cache.Digests(ctx, a.extra); err != nil {
		a.done()
		return a, err
	}
	a.digest, a.extraDigest = digestString(a.digest), digestString(a.extraDigest)
	return a, nil
}

// usableAddons are the enabled addons whose images can be had. mkube's own images (mkube.local/…)
// have no public registry yet: they come from an mkube mirror, so without --image-repository those
// addons are skipped with a warning instead of leaving a pod that can never pull its image.
func (m *Manager) usableAddons(p *config.Profile) []addons.Addon {
	var out []addons.Addon
	for _, a := range addons.Enabled(p.Addons) {
		if !m.addonImagesAvailable(p, a) {
			m.Out.Warn("addon %s skipped: its image is built by mkube's mirror only; start with --image-repository=<mirror> (make mirror-serve)", a.Name)
			continue
		}
		out = append(out, a)
	}
	return out
}

// removedAddons renders the addons the user turned off, so a start deletes whatever of them an
// earlier start applied (`addons disable` on a stopped cluster).
func removedAddons(p *config.Profile) (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, on := range p.Addons {
		if on {
			continue
		}
		a, err := addons.Find(name)
		if err != nil {
			continue // an addon this version no longer has
		}
		if out[name], err = addons.Render(a, addons.Values{}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// imageList asks the version's own kubeadm which images it runs, once per version (kept in cache).
func imageList(ctx context.Context, kubeadmBin string, v k8sversion.Version, cacheFile string) ([]string, error) {
	if raw, err := os.ReadFile(cacheFile); err == nil {
		return strings.Fields(string(raw)), nil
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("listing Kubernetes %s images needs a linux/amd64 host to run kubeadm on", v)
	}
	outp, err := exec.CommandContext(ctx, kubeadmBin, "config", "images", "list", "--kubernetes-version", v.String()).Output()
	if err != nil {
		return nil, fmt.Errorf("kubeadm config images list: %w", err)
	}
	var refs []string
	sc := bufio.NewScanner(strings.NewReader(string(outp)))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			refs = append(refs, l)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("kubeadm %s listed no images", v)
	}
	return refs, atomicfile.WriteBytes(cacheFile, []byte(strings.Join(refs, "\n")+"\n"), 0o644)
}

// machine creates or restarts the node and returns its endpoint and a runner.
func (m *Manager) machine(ctx context.Context, p *config.Profile, d driver.Driver, image string, vm bool) (driver.Endpoint, driver.Runner, error) {
	st, err := d.State(ctx)
	if err != nil {
		return driver.Endpoint{}, nil, machineError(reason.ProviderError, err, "")
	}
	key, err := m.machineKey(p.Name)
	if err != nil {
		return driver.Endpoint{}, nil, err
	}
	_, pub, err := ssh.EnsureKey(filepath.Dir(key))
	if err != nil {
		return driver.Endpoint{}, nil, err
	}
	switch st {
	case driver.Nonexistent:
		if vm {
			m.Out.Step(out.Fire, "Creating %s VM (CPUs=%d, Memory=%dMB, Disk=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB, p.DiskMB)
		} else {
			m.Out.Step(out.Fire, "Creating %s container (CPUs=%d, Memory=%dMB) ...", p.Driver, p.CPUs, p.MemoryMB)
		}
		if err := ssh.ForgetHostKey(key); err != nil { // a new machine, new host keys
			return driver.Endpoint{}, nil, err
		}
		err = d.Create(ctx, driver.Spec{Name: p.Name, CPUs: p.CPUs, MemoryMB: p.MemoryMB, DiskMB: p.DiskMB, Image: image,
			APIServerPort: p.APIServerPort, SSHPublicKey: pub})
	case driver.Running:
		m.Out.Step(out.Running, "Updating the running %s %q %s ...", p.Driver, p.Name, machineWord(vm))
		err = d.Start(ctx)
	default:
		m.Out.Step(out.Restart, "Restarting existing %s %s for %q ...", p.Driver, machineWord(vm), p.Name)
		err = d.Start(ctx)
	}
	if err != nil {
		return driver.Endpoint{}, nil, machineError(reason.GuestError, err, "`mkube delete -p "+p.Name+"` and start again if it persists")
	}
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return ep, nil, reason.New(reason.GuestError, err, "")
	}
	r, err := d.Runner(ctx)
	if err != nil {
		return ep, nil, err
	}
	// The login key, every start: cheap, and it repairs a node whose key file was lost.
	authorized := "/home/docker/.ssh/authorized_keys"
	if err := r.WriteFile(ctx, authorized, 0o600, int64(len(pub)+1), strings.NewReader(pub+"\n")); err != nil {
		return ep, nil, err
	}
	if err := r.Run(ctx, driver.Cmd{Args: []string{"chown", "-R", "docker:docker", "/home/docker/.ssh"}}); err != nil {
		return ep, nil, err
	}
	return ep, r, nil
}

// params describe the cluster for kubeadm, including what only the node can tell (its cgroups).
func (m *Manager) params(ctx context.Context, p *config.Profile, v k8sversion.Version, ep driver.Endpoint, r driver.Runner) (kubeadm.Params, error) {
	var fsType, own strings.Builder
	if err := r.Run(ctx, driver.Cmd{Args: []string{"stat", "-fc", "%T", "/sys/fs/cgroup/"}, Stdout: &fsType}); err != nil {
		return kubeadm.Params{}, err
	}
	cgroupV1 := strings.TrimSpace(fsType.String()) != "cgroup2fs"
	cgroupRoot := ""
	if cgroupV1 {
		// PID 1's memory cgroup is the node's own (minus systemd's init.scope); "/" means the node
		// already has a private view.
		if err := r.Run(ctx, driver.Cmd{Args: []string{"sh", "-c", "sed -n 's/^[0-9]*:memory://p' /proc/1/cgroup"}, Stdout: &own}); err != nil {
			return kubeadm.Params{}, err
		}
		if base := strings.TrimSuffix(strings.TrimSpace(own.String()), "/init.scope"); base != "" && base != "/" {
			cgroupRoot = base + "/mkube"
		}
	}
	return kubeadm.Params{
		CgroupRoot: cgroupRoot,
		Version:    v, ClusterName: p.Name, NodeName: p.Name, NodeIP: ep.IP, APIServerPort: p.APIServerPort,
		PodCIDR: p.PodCIDR, ServiceCIDR: p.ServiceCIDR, DNSDomain: p.DNSDomain,
		CgroupV1:    cgroupV1,
		ExtraConfig: p.ExtraConfig, ExtraNames: p.APIServerNames, ExtraIPs: p.APIServerIPs,
	}, nil
}

// certificates makes (or reuses) the shared CAs and this cluster's certificates, and maps them to
// their names under /etc/kubernetes/pki.
func (m *Manager) certificates(p *config.Profile, params kubeadm.Params) (map[string]string, error) {
	shared := m.Home.CertsDir()
	own, err := m.Home.ProfileDir(p.Name)
	if err != nil {
		return nil, err
	}
	ca, err := certs.EnsureCA(certs.In(shared, "ca"), "mkubeCA")
	if err != nil {
		return nil, err
	}
	proxyCA, err := certs.EnsureCA(certs.In(shared, "front-proxy-ca"), "mkubeFrontProxyCA")
	if err != nil {
		return nil, err
	}
	dns, ips, err := kubeadm.SANs(params)
	if err != nil {
		return nil, reason.New(reason.Usage, err, "check --apiserver-ips")
	}
	apiserver := certs.In(own, "apiserver")
	if _, err := ca.Ensure(apiserver, certs.Request{CommonName: "kube-apiserver", DNSNames: dns, IPs: ips, Server: true}); err != nil {
		return nil, err
	}
	if _, err := ca.Ensure(certs.In(own, "client"), certs.Request{CommonName: "mkube-user", Organizations: []string{"system:masters"}}); err != nil {
		return nil, err
	}
	if err := certs.EnsureKeyPair(filepath.Join(own, "sa.key"), filepath.Join(own, "sa.pub")); err != nil {
		return nil, err
	}
	return map[string]string{
		"ca.crt": ca.Cert, "ca.key": ca.Key,
		"front-proxy-ca.crt": proxyCA.Cert, "front-proxy-ca.key": proxyCA.Key,
		"apiserver.crt": apiserver.Cert, "apiserver.key": apiserver.Key,
		"sa.key": filepath.Join(own, "sa.key"), "sa.pub": filepath.Join(own, "sa.pub"),
	}, nil
}

func digestString(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return fmt.Sprintf("%x", sha256Sum(strings.Join(lines, "\n")))
}

func machineWord(vm bool) string {
	if vm {
		return "VM"
	}
	return "container"
}

// cacheISO brings the VM image into the cache: from --iso-url (tried in order), or in a
// development build from the ISO `make iso` wrote next to the mkube binary.
func (m *Manager) cacheISO(ctx context.Context, p *config.Profile) (string, error) {
	urls := p.ISOURLs
	if len(urls) == 0 {
		dev := isoimage.DevDefault()
		if dev == "" {
			return "", reason.Errorf(reason.Download, "build it with `make iso` (found next to the mkube binary), or pass --iso-url=URL",
				"the %s driver boots mkube's ISO %s, and none is available", p.Driver, isoimage.Name())
		}
		urls = []string{dev}
	}
	iso, err := isoimage.Cache(ctx, urls, m.Home.CacheDir("iso"), m.Out.Err())
	if err != nil {
		return "", reason.New(reason.Download, err, "check --iso-url (each URL needs URL.sha256 beside it)")
	}
	return iso, nil
}
