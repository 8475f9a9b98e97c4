package artifacts

import (
	"bufio"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"mkube/pkg/cache"
	"mkube/pkg/release"
)

// guestPackages are what a VM node needs beyond a container node: device management, its own
// network configuration and resolver, mke2fs for the data disk, and the hypervisors' guest tools:
// QEMU's agent (kvm2) and Hyper-V's KVP daemon, which reports the guest's addresses to
// Get-VMNetworkAdapter (hyperv). VirtualBox's guest utilities are not in Debian main.
var guestPackages = []string{"udev", "systemd-resolved", "e2fsprogs", "dosfstools", "qemu-guest-agent", "hyperv-daemons"}

// initramfsModules are the kernel modules the initramfs loads (with their dependencies) to find the
// boot medium and the data disk on kvm (virtio), VirtualBox (SATA/IDE) and Hyper-V (storvsc).
var initramfsModules = []string{
	"virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "ata_piix", "ata_generic", "sd_mod", "sr_mod",
	"hv_vmbus", "hv_storvsc", "isofs", "squashfs", "loop", "overlay", "crc32c_generic", "ext4",
}

// kernelTrim are module directories a VM node never loads: graphics, sound, radios, media.
var kernelTrim = []string{"drivers/gpu", "drivers/media", "drivers/staging", "drivers/infiniband", "drivers/net/wireless",
	"drivers/bluetooth", "drivers/iio", "drivers/isdn", "drivers/usb", "drivers/hid", "drivers/input/touchscreen",
	"sound", "net/bluetooth", "net/wireless", "net/mac80211"}

//go:embed all:guestfs initramfs/init
var guestFS embed.FS

// ISOOptions say how to build the VM image.
type ISOOptions struct {
	Work string
	// Version is the mkube version the ISO carries in /mkube/version (default: this build's)
	Version string
	Out     string // the .iso to write (default: out/mkube-VERSION-amd64.iso)
	Debian  string
	Suite   string
	Log     io.Writer
	// Flavor is FlavorNode (default: what VM drivers boot) or FlavorHost (a cgroup v2 workstation
	// with Docker and Podman, for the tests; see hostiso.go).
	Flavor string
}

// BuildISO builds the bootable VM image every VM driver boots: Debian's kernel, a busybox
// initramfs, and the node's root file system (the docker driver's node plus udev and networkd) as a
// squashfs, booted by isolinux. See iso/README.md for its layout and the user-data contract.
func BuildISO(ctx context.Context, o ISOOptions) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Version == "" {
		o.Version = release.Version()
	}
	if o.Out == "" {
		o.Out = filepath.Join("out", release.ISOFileName(o.Version))
	}
	work, err := filepath.Abs(o.Work)
	if err != nil {
		return err
	}
	b := &builder{opts: Options{Work: work, Debian: o.Debian, Suite: o.Suite, Log: o.Log}}
	for _, tool := range []string{"mksquashfs", "xorriso", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed to build the ISO (apt-get install squashfs-tools xorriso isolinux syslinux-common busybox-static)", tool)
		}
	}
	for _, f := range []string{isolinuxBin, ldlinuxC32, busyboxBin} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s is missing (apt-get install isolinux syslinux-common busybox-static)", f)
		}
	}
	start := time.Now()
	kdeb, err := b.kernelDeb(ctx)
	if err != nil {
		return err
	}
	guestKey, err := embedKey(guestFS, ".")
	if err != nil {
		return err
	}
	recipe, err := b.isoRecipe(ctx, o.Flavor, kdeb)
	if err != nil {
		return err
	}
	root, err := b.rootfs(ctx, recipe)
	if err != nil {
		return err
	}
	key := recipeKey("iso"+o.Flavor, o.Version, rootfsKey(root), guestKey, fileKey(busyboxBin), fileKey(isolinuxBin), strings.Join(initramfsModules, ","))
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	if have, err := os.ReadFile(out + ".recipe"); err == nil && strings.TrimSpace(string(have)) == key {
		if _, err := os.Stat(out); err == nil {
			b.logf("%s is up to date", out)
			return nil
		}
	}
	// mkube's guest files go on top at every build (cheap and idempotent), so changing them does not
	// rebuild the root file system.
	if err := guestFiles(root); err != nil {
		return err
	}
	tree := filepath.Join(work, "iso-tree")
	os.RemoveAll(tree)
	for _, d := range []string{"isolinux", "boot", "mkube"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return fmt.Errorf("expected one kernel in the guest root file system, found %v", kernels)
	}
	kver := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	if err := copyFile(kernels[0], filepath.Join(tree, "boot", "vmlinuz"), 0o644); err != nil {
		return err
	}
	b.logf("making the initramfs (kernel %s)", kver)
	if err := writeInitramfs(filepath.Join(tree, "boot", "initrd.img"), root, kver); err != nil {
		return err
	}
	b.logf("compressing the root file system")
	if err := b.run(ctx, work, nil, "mksquashfs", root, filepath.Join(tree, "mkube", "rootfs.squashfs"),
		"-comp", "zstd", "-noappend", "-quiet", "-no-progress", "-e", "boot"); err != nil {
		return err
	}
	files := map[string]string{
		"isolinux/isolinux.cfg": isolinuxCfg,
		"mkube/version":         o.Version + "\n",
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(tree, p), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for src, dst := range map[string]string{isolinuxBin: "isolinux/isolinux.bin", ldlinuxC32: "isolinux/ldlinux.c32"} {
		if err := copyFile(src, filepath.Join(tree, dst), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	b.logf("writing %s", out)
	if err := b.run(ctx, work, nil, "xorriso", "-as", "mkisofs", "-o", tmp, "-V", "MKUBE", "-R", "-J",
		"-isohybrid-mbr", isohdpfx, "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", tree); err != nil {
		return err
	}
	// The ISO is published under the cache's digest-file rule: out.sha256 appears only once out is
	// in place, so a file:// --iso-url never sees a record that does not match.
	sum, err := cache.FileSHA256(tmp)
	if err != nil {
		return err
	}
	if err := cache.Commit(tmp, out, sum); err != nil {
		return err
	}
	st, _ := os.Stat(out)
	b.logf("%s is ready: %d MB in %s", out, st.Size()>>20, time.Since(start).Round(time.Second))
	return os.WriteFile(out+".recipe", []byte(key+"\n"), 0o644)
}

// isoRecipe is the root file system of an ISO flavor: the node's plus a VM guest's packages, or a
// workstation's (hostiso.go); both get the kernel and its modules.
func (b *builder) isoRecipe(ctx context.Context, flavor, kdeb string) (rootfsRecipe, error) {
	switch flavor {
	case "", FlavorNode:
		ctrd, err := b.containerd(ctx)
		if err != nil {
			return rootfsRecipe{}, err
		}
		overlay, err := nodeFSKey()
		if err != nil {
			return rootfsRecipe{}, err
		}
		return rootfsRecipe{
			name:     "guest",
			packages: append(append([]string{}, nodePackages...), guestPackages...),
			extraKey: recipeKey(nodePostRevision, overlay, fileKey(kdeb), fileKey(filepath.Join(ctrd, "containerd")), strings.Join(kernelTrim, ",")),
			post: func(dir string) error {
				if err := nodePost(dir, ctrd); err != nil {
					return err
				}
				return b.guestPost(ctx, dir, kdeb)
			},
		}, nil
	case FlavorHost:
		return rootfsRecipe{
			name:     "host",
			packages: append(append([]string{}, hostPackages...), guestPackages...),
			extraKey: recipeKey(hostPostRevision, fileKey(kdeb), strings.Join(kernelTrim, ",")),
			post: func(dir string) error {
				if err := hostPost(dir); err != nil {
					return err
				}
				return b.guestPost(ctx, dir, kdeb)
			},
		}, nil
	}
	return rootfsRecipe{}, fmt.Errorf("unknown ISO flavor %q (want %s or %s)", flavor, FlavorNode, FlavorHost)
}

// Host files the ISO is made with (Debian's isolinux, syslinux-common and busybox-static).
const (
	isolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	isohdpfx    = "/usr/lib/ISOLINUX/isohdpfx.bin"
	ldlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
	busyboxBin  = "/bin/busybox"
)

// isolinuxCfg boots at once; the serial console is where libvirt and the tests read boot messages.
const isolinuxCfg = `DEFAULT mkube
TIMEOUT 1
PROMPT 0
LABEL mkube
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND console=tty0 console=ttyS0,115200n8 systemd.unified_cgroup_hierarchy=1 net.ifnames=1 quiet
`

// containerd builds containerd (the node's and the guest's) from source.
func (b *builder) containerd(ctx context.Context) (string, error) {
	return b.goModule(ctx, "containerd", "github.com/containerd/containerd/v2", containerdVersion, "", map[string]string{
		"containerd":              "github.com/containerd/containerd/v2/cmd/containerd",
		"containerd-shim-runc-v2": "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
		"ctr":                     "github.com/containerd/containerd/v2/cmd/ctr",
	})
}

// kernelDeb downloads the Debian kernel package linux-image-amd64 currently points at (the host's
// apt sources decide which), keeping it in the build's package cache.
func (b *builder) kernelDeb(ctx context.Context) (string, error) {
	out, err := b.output(ctx, b.opts.Work, nil, "apt-cache", "depends", "linux-image-amd64")
	if err != nil {
		return "", fmt.Errorf("%w (is apt's package list current? apt-get update)", err)
	}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: "); ok && strings.HasPrefix(v, "linux-image-") {
			pkg = v
			break
		}
	}
	if pkg == "" {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64 names no kernel package")
	}
	dir := filepath.Join(b.opts.Work, "debs", "kernel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb")); len(debs) == 1 {
		return debs[0], nil
	}
	b.logf("downloading Debian's %s", pkg)
	if err := b.run(ctx, dir, nil, "apt-get", "download", pkg); err != nil {
		return "", err
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %v", pkg, debs)
	}
	return debs[0], nil
}

// guestPost turns a node root file system into a VM guest's: the kernel and its modules, udev,
// networkd with DHCP, resolved, the user-data unit.
func (b *builder) guestPost(ctx context.Context, dir, kernelDeb string) error {
	// Unpacked aside and moved in: unpacking over the root would replace its /lib -> usr/lib link.
	tmp := dir + ".kernel"
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := b.run(ctx, dir, nil, "dpkg-deb", "-x", kernelDeb, tmp); err != nil {
		return err
	}
	found, _ := filepath.Glob(filepath.Join(tmp, "lib/modules/*"))
	if len(found) != 1 {
		return fmt.Errorf("expected one kernel's modules in %s, found %v", kernelDeb, found)
	}
	mods := []string{filepath.Join(dir, "usr/lib/modules", filepath.Base(found[0]))}
	if err := os.MkdirAll(filepath.Dir(mods[0]), 0o755); err != nil {
		return err
	}
	if err := os.Rename(found[0], mods[0]); err != nil {
		return err
	}
	kernels, _ := filepath.Glob(filepath.Join(tmp, "boot/vmlinuz-*"))
	for _, k := range kernels {
		if err := os.Rename(k, filepath.Join(dir, "boot", filepath.Base(k))); err != nil {
			return err
		}
	}
	kver := filepath.Base(mods[0])
	for _, t := range kernelTrim {
		if err := os.RemoveAll(filepath.Join(mods[0], "kernel", t)); err != nil {
			return err
		}
	}
	// The guest's own depmod (kmod is a node package), so the host needs none.
	if err := b.run(ctx, dir, nil, "chroot", dir, "/usr/sbin/depmod", "-a", kver); err != nil {
		return err
	}
	return nil
}

// guestFiles writes mkube's guest configuration into a guest root file system: networkd with DHCP,
// resolved, the user-data unit, the serial console.
func guestFiles(dir string) error {
	err := fs.WalkDir(guestFS, "guestfs", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, "guestfs"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := guestFS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if strings.Contains(p, "/bin/") {
			mode = 0o755
		}
		return os.WriteFile(dst, data, mode)
	})
	if err != nil {
		return err
	}
	wants := filepath.Join(dir, "etc/systemd/system/multi-user.target.wants")
	for link, target := range map[string]string{
		filepath.Join(wants, "mkube-guest-setup.service"):              "/etc/systemd/system/mkube-guest-setup.service",
		filepath.Join(wants, "systemd-networkd.service"):               "/lib/systemd/system/systemd-networkd.service",
		filepath.Join(wants, "systemd-resolved.service"):               "/lib/systemd/system/systemd-resolved.service",
		filepath.Join(dir, "etc/systemd/system/serial-getty@.service"): "/lib/systemd/system/serial-getty@.service",
		// Pods need a real upstream resolver, not resolved's 127.0.0.53 stub (CoreDNS would loop).
		filepath.Join(dir, "etc/resolv.conf"): "/run/systemd/resolve/resolv.conf",
	} {
		if err := relink(target, link); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/systemd/journald.conf.d/mkube.conf": "[Journal]\nSystemMaxUse=100M\n",
		"etc/hostname":                           "mkube\n",
		"etc/hosts":                              "127.0.0.1 localhost\n::1 localhost\n",
		"etc/fstab":                              "# the root is an overlay set up by the initramfs (iso/README.md)\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
