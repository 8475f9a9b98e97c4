package artifacts

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// rootfsRecipe is a Debian root file system built with debootstrap.
type rootfsRecipe struct {
	name     string
	packages []string
	suite    string                 // Debian suite; empty means the build's
	extraKey string                 // digest of whatever post adds
	post     func(dir string) error // adjustments after packages are installed
}

// The kube-proxy base carries what kube-proxy execs: iptables (legacy and nft), ip6tables, their
// save/restore tools, ipset, conntrack, nft and modprobe. agnhost's carries the tools Kubernetes' e2e
// tests exec inside it (the upstream Alpine image's bind-tools, curl, netcat, iproute2, iperf, bash).
var rootfsRecipes = []rootfsRecipe{
	{name: "kube-proxy-base", packages: []string{"iptables", "ipset", "conntrack", "nftables", "kmod", "ebtables"}},
	{name: "agnhost-base", packages: []string{"dnsutils", "curl", "netcat-openbsd", "iproute2", "iperf", "bash", "procps", "ca-certificates"},
		post: agnhostUsers},
}

// rootfsAll builds every base file system, returning their directories by name.
func (b *builder) rootfsAll(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, r := range rootfsRecipes {
		dir, err := b.rootfs(ctx, r)
		if err != nil {
			return nil, err
		}
		out[r.name] = dir
	}
	return out, nil
}

func (b *builder) rootfs(ctx context.Context, r rootfsRecipe) (string, error) {
	suite, err := b.suite()
	if err != nil {
		return "", err
	}
	if r.suite != "" {
		suite = r.suite
	}
	// work/rootfs/<name>/fs is the file system; work/rootfs/<name>/.recipe its key.
	parent := filepath.Join(b.opts.Work, "rootfs", r.name)
	dir := filepath.Join(parent, "fs")
	key := recipeKey("rootfs", r.name, suite, strings.Join(r.packages, ","), r.extraKey)
	if fresh(parent, key, dir) {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	src, err := b.debianMirror()
	if err != nil {
		return "", err
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	debs := filepath.Join(b.opts.Work, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", err
	}
	b.logf("building the %s root file system from Debian %s packages", r.name, suite)
	if err := b.run(ctx, parent, nil, "debootstrap", "--variant=minbase", "--include="+strings.Join(r.packages, ","),
		"--cache-dir="+debs, suite, tmp, src); err != nil {
		return "", fmt.Errorf("%w\n(debootstrap must be installed and run as root: apt-get install debootstrap)", err)
	}
	if err := trimRootfs(tmp); err != nil {
		return "", err
	}
	if r.post != nil {
		if err := r.post(tmp); err != nil {
			return "", err
		}
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, markFresh(parent, key)
}

// trimRootfs drops what an image never reads at run time: documentation, package lists, caches, logs.
func trimRootfs(dir string) error {
	for _, p := range []string{"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
		"var/cache/apt", "var/lib/apt/lists", "var/log", "var/cache/debconf/templates.dat-old"} {
		full := filepath.Join(dir, p)
		if err := os.RemoveAll(full); err != nil {
			return err
		}
		if !strings.Contains(filepath.Base(p), ".") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				return err
			}
		}
	}
	// A container gets its own /dev, hosts and resolv.conf from the runtime. (systemd-resolved's
	// package leaves a link into /run here, dangling outside a running system.)
	os.Remove(filepath.Join(dir, "etc/resolv.conf"))
	return os.WriteFile(filepath.Join(dir, "etc/resolv.conf"), nil, 0o644)
}

// agnhostUsers adds the user and group the upstream agnhost image defines for the e2e test of
// SupplementalGroups with a group defined in the image.
func agnhostUsers(dir string) error {
	add := map[string]string{
		"etc/passwd": "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n",
		"etc/shadow": "user-defined-in-image:!:19000::::::\n",
		"etc/group":  "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n",
	}
	for f, lines := range add {
		fh, err := os.OpenFile(filepath.Join(dir, f), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = fh.WriteString(lines)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(dir, "home/user-defined-in-image"), 0o755)
}

func (b *builder) suite() (string, error) {
	if b.opts.Suite != "" {
		return b.opts.Suite, nil
	}
	raw, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_CODENAME="); ok && v != "" {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("cannot tell this host's Debian suite from /etc/os-release: pass --debian-suite")
}

// debianMirror is the package mirror this host's apt already uses, so the build goes wherever
// the machine is allowed to reach.
func (b *builder) debianMirror() (string, error) {
	if b.opts.Debian != "" {
		return b.opts.Debian, nil
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		if u := aptMirror(f); u != "" {
			return u, nil
		}
	}
	return "", fmt.Errorf("no Debian mirror found in this host's apt sources: pass --debian-mirror URL")
}

// aptMirror returns the first main Debian archive URI in an apt sources file (one-line or deb822).
func aptMirror(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		var uri string
		if fields := strings.Fields(l); len(fields) >= 3 && fields[0] == "deb" {
			uri = fields[1]
			if strings.HasPrefix(uri, "[") { // deb [options] uri suite
				for i, x := range fields {
					if strings.HasSuffix(x, "]") && i+1 < len(fields) {
						uri = fields[i+1]
						break
					}
				}
			}
		} else if v, ok := strings.CutPrefix(l, "URIs:"); ok {
			uri = strings.Fields(v + " ")[0]
		}
		if uri != "" && !strings.Contains(uri, "security") {
			return uri
		}
	}
	return ""
}
