package artifacts

import (
	"archive/tar"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"mkube/pkg/cache"
	"mkube/pkg/driver/docker"
	"mkube/pkg/mirror"
)

// containerdVersion runs every supported Kubernetes release: containerd 2.4 supports Kubernetes
// 1.37 (1.x stops at 1.35) and still supports hosts on cgroup v1.
const containerdVersion = "v2.4.2"

// nodePackages is what a Kubernetes node needs from Debian: systemd as init, the tools kubeadm's
// preflight and the kubelet exec, kube-proxy's and the CNI plugins' networking tools, an SSH server.
var nodePackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "ca-certificates",
	"iptables", "ipset", "nftables", "ebtables", "conntrack", "socat", "ethtool", "iproute2", "kmod",
	"util-linux", "mount", "procps", "runc", "containernetworking-plugins", "libseccomp2",
	"curl", "less", "nano",
	// containerd decompresses layers with unpigz when it finds it: both cores instead of one.
	"pigz",
	// The load balancer in front of an --ha cluster's control planes runs the node image with
	// haproxy as its command (its own container; no node starts the service).
	"haproxy",
}

//go:embed all:nodefs
var nodeFS embed.FS

// NodeOptions say how to build the node image.
type NodeOptions struct {
	Work   string
	Tag    string
	Debian string
	Suite  string
	Log    io.Writer
}

// Node image configuration, the same whether the image is imported into Docker or assembled for a
// registry. There is no STOPSIGNAL (Docker's import takes none): the docker driver sets
// SIGRTMIN+3 (systemd's halt) per container.
var (
	nodeEntrypoint = []string{"/sbin/init"}
	nodeEnv        = []string{"container=docker"}
)

// nodeBuilder checks o and fills in its defaults.
func nodeBuilder(o NodeOptions) (*builder, NodeOptions, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Tag == "" {
		o.Tag = docker.DefaultImage()
	}
	work, err := filepath.Abs(o.Work)
	if err != nil {
		return nil, o, err
	}
	o.Work = work
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, o, err
	}
	return &builder{opts: Options{Work: o.Work, Debian: o.Debian, Suite: o.Suite, Log: o.Log}}, o, nil
}

// nodeRootfs builds the node's root file system (or finds it up to date): a Debian root file
// system with systemd, containerd built from source, and node configuration. No Kubernetes
// binaries: mkube copies those of the version a user asks for at start. It returns the directory
// and its recipe key, which labels the image.
func (b *builder) nodeRootfs(ctx context.Context) (dir, key string, err error) {
	ctrd, err := b.containerd(ctx)
	if err != nil {
		return "", "", err
	}
	overlay, err := nodeFSKey()
	if err != nil {
		return "", "", err
	}
	recipe := rootfsRecipe{
		name:     "node",
		packages: nodePackages,
		extraKey: recipeKey(nodePostRevision, overlay, fileKey(filepath.Join(ctrd, "containerd")), fileKey(filepath.Join(ctrd, "containerd-shim-runc-v2")), fileKey(filepath.Join(ctrd, "ctr"))),
		post:     func(dir string) error { return nodePost(dir, ctrd) },
	}
	root, err := b.rootfs(ctx, recipe)
	if err != nil {
		return "", "", err
	}
	return root, strings.TrimSpace(rootfsKey(root)), nil
}

// BuildNodeImage builds the node image (see nodeRootfs) into the local Docker engine, tagged o.Tag.
// Unchanged recipes are not rebuilt.
func BuildNodeImage(ctx context.Context, o NodeOptions) error {
	b, o, err := nodeBuilder(o)
	if err != nil {
		return err
	}
	engine, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer engine.Close()
	if _, err := engine.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("the Docker engine does not answer (%v): start it, e.g. with hack/docker-up.sh", err)
	}
	root, key, err := b.nodeRootfs(ctx)
	if err != nil {
		return err
	}
	if have, err := engine.ImageInspect(ctx, o.Tag); err == nil && have.Config != nil && have.Config.Labels[cache.AnnotationRecipe] == key {
		b.logf("node image %s is up to date", o.Tag)
		return nil
	}
	b.logf("importing node image %s into Docker", o.Tag)
	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := mirror.WriteDirTar(tw, root)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	entrypoint, err := json.Marshal(nodeEntrypoint)
	if err != nil {
		return err
	}
	changes := []string{"ENTRYPOINT " + string(entrypoint)}
	for _, e := range nodeEnv {
		changes = append(changes, "ENV "+e)
	}
	changes = append(changes, "LABEL "+cache.AnnotationRecipe+"="+key)
	rc, err := engine.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, o.Tag, client.ImageImportOptions{
		Changes:  changes,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
	})
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	defer rc.Close()
	if err := docker.JSONStreamError(rc); err != nil {
		return fmt.Errorf("docker import: %w", err)
	}
	b.logf("node image %s imported in %s", o.Tag, time.Since(start).Round(time.Second))
	return nil
}

// NodeImage assembles the node image (see nodeRootfs) as a linux/amd64 OCI image named o.Tag,
// without any Docker engine: one reproducible gzip layer of the root file system, re-read from disk
// whenever its content is needed (hashing now, uploading later), never held in memory.
func NodeImage(ctx context.Context, o NodeOptions) (v1.Image, error) {
	b, o, err := nodeBuilder(o)
	if err != nil {
		return nil, err
	}
	root, key, err := b.nodeRootfs(ctx)
	if err != nil {
		return nil, err
	}
	b.logf("assembling node image %s", o.Tag)
	return nodeImageFrom(root, o.Tag, key)
}

// nodeImageFrom assembles a node image from a root file system labelled with its recipe key.
func nodeImageFrom(root, ref, key string) (v1.Image, error) {
	layer, err := mirror.DirLayer(root)
	if err != nil {
		return nil, err
	}
	return mirror.Assemble(mirror.ImageSpec{
		Ref:        ref,
		Layers:     []v1.Layer{layer},
		Entrypoint: nodeEntrypoint,
		Env:        nodeEnv,
		Labels:     map[string]string{cache.AnnotationRecipe: key},
	})
}

// nodeFSKey digests the embedded node configuration files.
func nodeFSKey() (string, error) { return embedKey(nodeFS, "nodefs") }

// embedKey digests every file under root of an embedded file system, for recipe keys.
func embedKey(fsys fs.ReadFileFS, root string) (string, error) {
	var parts []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fsys.ReadFile(p)
		parts = append(parts, p, string(data))
		return err
	})
	return recipeKey(parts...), err
}

// nodeUnitsEnabled start at boot; nodeUnitsMasked make no sense in a container or VM node.
var (
	nodeUnitsEnabled = []string{"containerd.service", "kubelet.service", "mkube-docker-dns.service"}
	nodeUnitsMasked  = []string{"getty@tty1.service", "console-getty.service", "serial-getty@.service",
		"systemd-firstboot.service", "systemd-remount-fs.service", "apt-daily.timer", "apt-daily-upgrade.timer",
		"e2scrub_all.timer", "fstrim.timer", "haproxy.service"}
)

// nodePost turns a Debian root file system into a node: configuration, containerd, the ssh user.
// nodePostRevision is part of the node image's recipe key: change it whenever nodePost changes
// what it writes, so incremental builds do not keep a root file system made by the old one.
const nodePostRevision = "post-4"

// nodeCNIPlugins are the CNI plugins the node keeps of Debian's package: those of mkube's own
// network (bridge, host-local, portmap, and loopback, which containerd runs for every pod), and
// those the CNIs users install chain to (bandwidth, firewall, tuning). The other nine (dhcp, macvlan,
// vlan, …) served no cluster here and were 27 MB of the image (12 MB compressed).
var nodeCNIPlugins = []string{"bridge", "host-local", "portmap", "loopback", "bandwidth", "firewall", "tuning"}

// trimCNIPlugins removes the plugins a node does not keep.
func trimCNIPlugins(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "usr/lib/cni"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !slices.Contains(nodeCNIPlugins, e.Name()) {
			if err := os.Remove(filepath.Join(dir, "usr/lib/cni", e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func nodePost(dir, containerdBin string) error {
	if err := trimCNIPlugins(dir); err != nil {
		return err
	}
	err := fs.WalkDir(nodeFS, "nodefs", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, "nodefs"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := nodeFS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		switch {
		case strings.Contains(p, "sudoers.d"):
			mode = 0o440
		case strings.Contains(p, "/bin/"):
			mode = 0o755
		}
		return os.WriteFile(dst, data, mode)
	})
	if err != nil {
		return err
	}
	for _, n := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
		if err := copyFile(filepath.Join(containerdBin, n), filepath.Join(dir, "usr/local/bin", n), 0o755); err != nil {
			return err
		}
	}
	wants := filepath.Join(dir, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	for _, u := range nodeUnitsEnabled {
		if err := relink("/etc/systemd/system/"+u, filepath.Join(wants, u)); err != nil {
			return err
		}
	}
	for _, u := range nodeUnitsMasked {
		if err := relink("/dev/null", filepath.Join(dir, "etc/systemd/system", u)); err != nil {
			return err
		}
	}
	// Every node gets its own machine ID and SSH host keys at first boot.
	if err := os.WriteFile(filepath.Join(dir, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	if err := oneMachineID(dir); err != nil {
		return err
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		os.Remove(k)
	}
	files := map[string]string{
		"etc/ssh/sshd_config.d/mkube.conf": "PasswordAuthentication no\nUseDNS no\n",
		// The kernel log belongs to the host; reading it from a container node only duplicates it.
		"etc/systemd/journald.conf.d/mkube.conf": "[Journal]\nReadKMsg=no\nSystemMaxUse=100M\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return addUser(dir, "docker", 1000)
}

// oneMachineID points D-Bus's machine ID at systemd's, as Debian's own installs do. dbus's package
// leaves a fixed ID in /var/lib/dbus/machine-id, from which systemd would give every node booted from
// the image the same machine ID: VMs then send DHCP the same client ID, and the network's DHCP
// server hands one VM's address to the next (seen: a second kvm2 node took the first one's).
func oneMachineID(dir string) error {
	p := filepath.Join(dir, "var/lib/dbus/machine-id")
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.Symlink("/etc/machine-id", p)
}

// addUser adds the login user the drivers give SSH access to (minikube's is "docker" too).
func addUser(dir, name string, id int) error {
	add := map[string]string{
		"etc/passwd": fmt.Sprintf("%s:x:%d:%d::/home/%s:/bin/bash", name, id, id, name),
		"etc/shadow": name + ":*:19000:0:99999:7:::",
		"etc/group":  fmt.Sprintf("%s:x:%d:", name, id),
	}
	for f, line := range add {
		if err := appendLine(dir, f, name, line); err != nil {
			return err
		}
	}
	ssh := filepath.Join(dir, "home", name, ".ssh")
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		return err
	}
	for _, p := range []string{filepath.Dir(ssh), ssh} {
		if err := os.Chown(p, id, id); err != nil {
			return err
		}
	}
	return nil
}

// appendLine adds line to a passwd-style file (passwd, shadow, group) unless an entry of that name is there.
func appendLine(dir, file, name, line string) error {
	p := filepath.Join(dir, file)
	raw, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if strings.HasPrefix(string(raw), name+":") || strings.Contains(string(raw), "\n"+name+":") {
		return nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if len(raw) > 0 && !strings.HasSuffix(string(raw), "\n") {
		raw = append(raw, '\n')
	}
	return os.WriteFile(p, append(raw, line+"\n"...), st.Mode())
}

func relink(target, link string) error {
	os.Remove(link)
	return os.Symlink(target, link)
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
