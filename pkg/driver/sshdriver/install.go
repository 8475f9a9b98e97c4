package sshdriver

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"

	"mkube/pkg/ssh"
)

// bundleFile is one file mkube installs on the machine, taken from the node image.
type bundleFile struct {
	Src  string // path in the node image
	Dst  string // path on the machine
	Mode int64
}

// bundle is the container runtime of mkube's node image, and nothing else of it: containerd (built
// from source by the mirror), Debian's runc, the CNI plugins the node keeps, and the node's
// configuration for them (nodefs in pkg/artifacts). Programs go under /usr/local and /opt/cni, the
// places a machine keeps for software its package manager does not own; runc goes to
// /usr/local/sbin (first in systemd's PATH) rather than beside a distribution's /usr/sbin/runc.
var bundle = func() []bundleFile {
	files := []bundleFile{
		{"/usr/local/bin/containerd", "/usr/local/bin/containerd", 0o755},
		{"/usr/local/bin/containerd-shim-runc-v2", "/usr/local/bin/containerd-shim-runc-v2", 0o755},
		{"/usr/local/bin/ctr", "/usr/local/bin/ctr", 0o755},
		{"/usr/sbin/runc", "/usr/local/sbin/runc", 0o755},
		{"/usr/local/bin/mkube-kubelet-cgroup", "/usr/local/bin/mkube-kubelet-cgroup", 0o755},
		{"/etc/containerd/config.toml", "/etc/containerd/config.toml", 0o644},
		{"/etc/systemd/system/containerd.service", "/etc/systemd/system/containerd.service", 0o644},
		{"/etc/systemd/system/kubelet.service", "/etc/systemd/system/kubelet.service", 0o644},
		{"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o644},
		{"/etc/sysctl.d/99-kubernetes.conf", "/etc/sysctl.d/99-kubernetes.conf", 0o644},
		{"/etc/modules-load.d/kubernetes.conf", "/etc/modules-load.d/kubernetes.conf", 0o644},
	}
	// The plugins of mkube's own network and those other CNIs chain to (pkg/artifacts nodeCNIPlugins).
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback", "bandwidth", "firewall", "tuning"} {
		files = append(files, bundleFile{"/usr/lib/cni/" + p, "/opt/cni/bin/" + p, 0o755})
	}
	return files
}()

// units are the systemd units mkube installs and enables.
var units = []string{"containerd.service", "kubelet.service"}

// claims are paths the cluster's shared provisioning (pkg/node, kubeadm) writes outside the state
// directories below: mkube refuses a machine where they exist without being its own, and removes
// them at delete.
var claims = []string{
	"/usr/local/bin/kubeadm", "/usr/local/bin/kubelet", "/usr/local/bin/kubectl", "/usr/local/bin/.mkube-binaries",
	"/etc/cni/net.d/10-mkube-bridge.conflist", "/var/lib/cni/networks/mkube",
}

// stateDirs are where the cluster's programs keep their state (mkube's markers, kubeadm, the kubelet,
// etcd, containerd, CNI, pod logs). Those the machine did not have before mkube are recorded and
// removed whole at delete; one it had is left (only mkube's claims in it go).
var stateDirs = []string{
	"/var/lib/mkube", "/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/var/lib/containerd",
	"/run/containerd", "/opt/containerd", "/var/lib/cni", "/etc/cni", "/var/log/pods", "/var/log/containers",
	"/usr/libexec/kubernetes", "/run/netns", "/run/nri",
}

// controlPlaneHost is the name node.SetHost points at the node in /etc/hosts
// (kubeadm.ControlPlaneHost; a test keeps the two equal): delete removes that line.
const controlPlaneHost = "control-plane.mkube.internal"

// manifestPath is mkube's record on the machine of everything it installed there.
const manifestPath = "/var/lib/mkube/installed"

// Manifest kinds, one line each: "owner TAG", "state DIR", "dir DIR", "file PATH SHA256",
// "claim PATH", "unit NAME", "complete".
const (
	kindState = "state" // a state directory mkube's cluster made: removed whole
	kindDir   = "dir"   // a directory made to hold installed files: removed when empty
	kindFile  = "file"  // a file installed, with the digest of what was written
	kindClaim = "claim" // a path the provisioning writes: removed
	kindUnit  = "unit"  // a unit enabled: disabled
)

// entry is one line of the manifest.
type entry struct{ Kind, Path, Digest string }

func (e entry) line() string {
	if e.Digest != "" {
		return e.Kind + " " + e.Path + " " + e.Digest
	}
	return e.Kind + " " + e.Path
}

// manifest is what mkube installed on the machine. It is appended to before each change is made,
// so an interrupted install is still removed whole by delete.
type manifest struct {
	Owner    string
	Entries  []entry
	Complete bool
}

// parseManifest reads a manifest; a line it does not know is an error rather than something delete
// would silently leave behind.
func parseManifest(s string) (*manifest, error) {
	m := &manifest{}
	for i, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "owner" && len(f) == 2:
			m.Owner = f[1]
		case f[0] == "complete" && len(f) == 1:
			m.Complete = true
		case (f[0] == kindState || f[0] == kindDir || f[0] == kindClaim || f[0] == kindUnit) && len(f) == 2,
			f[0] == kindFile && len(f) == 3:
			e := entry{Kind: f[0], Path: f[1]}
			if len(f) == 3 {
				e.Digest = f[2]
			}
			m.Entries = append(m.Entries, e)
		default:
			return nil, fmt.Errorf("%s line %d: cannot read %q", manifestPath, i+1, line)
		}
	}
	if m.Owner == "" {
		return nil, fmt.Errorf("%s names no owner", manifestPath)
	}
	return m, nil
}

// has finds the entry of kind for path.
func (m *manifest) has(kind, p string) (entry, bool) {
	if m == nil {
		return entry{}, false
	}
	i := slices.IndexFunc(m.Entries, func(e entry) bool { return e.Kind == kind && e.Path == p })
	if i < 0 {
		return entry{}, false
	}
	return m.Entries[i], true
}

// payload is a bundle file read from the node image.
type payload struct {
	bundleFile
	Data   []byte
	Digest string
}

// readBundle picks the bundle's files out of the node image's root file system (a tar stream).
func readBundle(r io.Reader) ([]payload, error) {
	want := map[string]bundleFile{}
	for _, f := range bundle {
		want[f.Src] = f
	}
	got := map[string]payload{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the node image: %w", err)
		}
		p := path.Clean("/" + h.Name)
		f, ok := want[p]
		if !ok {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("the node image's %s is not a regular file", p)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading the node image's %s: %w", p, err)
		}
		sum := sha256.Sum256(data)
		got[p] = payload{bundleFile: f, Data: data, Digest: hex.EncodeToString(sum[:])}
	}
	out := make([]payload, 0, len(bundle))
	for _, f := range bundle {
		p, ok := got[f.Src]
		if !ok {
			return nil, fmt.Errorf("the node image has no %s: is it mkube's node image?", f.Src)
		}
		out = append(out, p)
	}
	return out, nil
}

// facts are what the machine has at the paths mkube would use, before it installs anything.
type facts struct {
	Exists  map[string]bool   // paths that exist
	Digests map[string]string // sha256 of regular files among them
	Units   map[string]bool   // units systemd already knows (loaded) among units
}

// probeScript lists what exists at every path mkube would touch and the digest of each existing
// file, and which of mkube's units systemd already has: facts in one round trip.
func probeScript(paths []string) string {
	var b strings.Builder
	b.WriteString("for p in " + ssh.Quote(paths) + "; do\n")
	b.WriteString("  if [ -f \"$p\" ]; then echo \"sum $(sha256sum < \"$p\" | cut -d' ' -f1) $p\"; elif [ -e \"$p\" ] || [ -L \"$p\" ]; then echo \"exists $p\"; fi\n")
	b.WriteString("done\n")
	b.WriteString("for u in " + ssh.Quote(units) + "; do\n")
	b.WriteString("  [ \"$(systemctl show -p LoadState --value \"$u\" 2>/dev/null)\" = loaded ] && echo \"unit $u\"\n")
	b.WriteString("done\ntrue\n")
	return b.String()
}

func parseFacts(out string) facts {
	f := facts{Exists: map[string]bool{}, Digests: map[string]string{}, Units: map[string]bool{}}
	for _, line := range strings.Split(out, "\n") {
		w := strings.Fields(line)
		switch {
		case len(w) == 3 && w[0] == "sum":
			f.Exists[w[2]], f.Digests[w[2]] = true, w[1]
		case len(w) == 2 && w[0] == "exists":
			f.Exists[w[1]] = true
		case len(w) == 2 && w[0] == "unit":
			f.Units[w[1]] = true
		}
	}
	return f
}

// probePaths are every path the facts must cover: the bundle's destinations and their parent
// directories, the claims and the state directories.
func probePaths() []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, f := range bundle {
		for _, d := range parents(f.Dst) {
			add(d)
		}
		add(f.Dst)
	}
	for _, p := range append(slices.Clone(claims), stateDirs...) {
		add(p)
	}
	return out
}

// parents are the directories above p, outermost first, without "/".
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// ConflictError is a path on the machine mkube would install to that holds something mkube did
// not install: mkube leaves the machine's own software alone.
type ConflictError struct {
	Host, Path, What string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s on %s %s and was not installed by mkube: mkube installs its own and leaves the machine's alone; remove it, or use a machine without it", e.Path, e.Host, e.What)
}

// plan decides an install: the manifest lines to add (state and parent directories first, in the
// order they are created) and the files to write, given what an earlier, interrupted install
// recorded (m, nil when none) and what the machine has. A path that holds something mkube did not
// install is a *ConflictError, unless it is an identical file, which is left as it is (and stays
// at delete).
func plan(host string, m *manifest, f facts, files []payload) ([]entry, []payload, error) {
	for _, u := range units {
		unitFile := "/etc/systemd/system/" + u
		if _, ours := m.has(kindFile, unitFile); f.Units[u] && !ours && !f.Exists[unitFile] {
			return nil, nil, &ConflictError{Host: host, Path: u, What: "is already a systemd unit"}
		}
	}
	for _, c := range claims {
		if _, ours := m.has(kindClaim, c); f.Exists[c] && !ours {
			return nil, nil, &ConflictError{Host: host, Path: c, What: "exists"}
		}
	}
	var add []entry
	for _, d := range stateDirs {
		if _, ours := m.has(kindState, d); !ours && !f.Exists[d] {
			add = append(add, entry{Kind: kindState, Path: d})
		}
	}
	if m == nil {
		for _, c := range claims {
			add = append(add, entry{Kind: kindClaim, Path: c})
		}
	}
	dirs := map[string]bool{}
	var write []payload
	for _, p := range files {
		rec, ours := m.has(kindFile, p.Dst)
		have, exists := f.Digests[p.Dst]
		switch {
		case ours && exists && have == p.Digest && rec.Digest == p.Digest:
			continue // installed before this install was interrupted
		case ours:
		case exists && have == p.Digest:
			continue // the machine's own copy is the same file: it stays the machine's
		case f.Exists[p.Dst]:
			return nil, nil, &ConflictError{Host: host, Path: p.Dst, What: "exists"}
		}
		for _, d := range parents(p.Dst) {
			if _, ours := m.has(kindDir, d); !ours && !f.Exists[d] && !dirs[d] {
				dirs[d] = true
				add = append(add, entry{Kind: kindDir, Path: d})
			}
		}
		write = append(write, p)
	}
	return add, write, nil
}

// removeScript undoes an install as its manifest records it, whatever state the install got to:
// kubeadm reset (while containerd still runs, so it removes the pods through it), the units stopped
// and disabled, containers and shims killed, mounts under the state directories unmounted,
// mkube's bridge and iptables chains removed, then the claims, files, state and created
// directories, mkube's line in /etc/hosts, and last the manifest. Every step goes on after a
// failure: what one step cannot undo must not keep the others from running.
func removeScript(m *manifest) string {
	var states, dirs, files []string
	var unitNames []string
	for _, e := range m.Entries {
		switch e.Kind {
		case kindState:
			states = append(states, e.Path)
		case kindDir:
			dirs = append(dirs, e.Path)
		case kindFile, kindClaim:
			files = append(files, e.Path, e.Path+ssh.TempSuffix) // and what an interrupted write left
		case kindUnit:
			unitNames = append(unitNames, e.Path)
		}
	}
	// Deepest directories first, so each is empty when its turn comes.
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	var b strings.Builder
	b.WriteString(pathLine)
	if _, ok := m.has(kindFile, "/etc/systemd/system/containerd.service"); ok {
		b.WriteString(`if [ -x /usr/local/bin/kubeadm ] && [ -f /etc/kubernetes/admin.conf -o -d /etc/kubernetes/manifests ]; then
  systemctl start containerd.service >/dev/null 2>&1
  kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock >/dev/null 2>&1 || echo "kubeadm reset failed; removing the rest" >&2
fi
`)
	}
	// The kubelet first, so it restarts nothing; then the containers, while containerd can still
	// end them (containers outlive a stopped containerd, in the kubelet's cgroups).
	b.WriteString("systemctl stop kubelet.service >/dev/null 2>&1\n")
	b.WriteString(killContainers)
	if len(unitNames) > 0 {
		b.WriteString("systemctl disable --now " + ssh.Quote(unitNames) + " >/dev/null 2>&1\n")
	}
	if len(states) > 0 {
		// Longest mount points first: a mount inside another goes before it.
		b.WriteString("findmnt -rn -o TARGET | while read -r t; do for d in " + ssh.Quote(states) + "; do case \"$t\" in \"$d\"|\"$d\"/*) echo \"$t\";; esac; done; done | sort -r | while read -r t; do umount -l \"$t\"; done\n")
	}
	b.WriteString(`ip link delete cni0 >/dev/null 2>&1
for ipt in iptables ip6tables; do
  if command -v $ipt-save >/dev/null && $ipt-save 2>/dev/null | grep -q -e KUBE- -e CNI- -e '"mkube: '; then
    $ipt-save | grep -v -e KUBE- -e CNI- -e '"mkube: ' | $ipt-restore
  fi
done
`)
	if len(files) > 0 {
		b.WriteString("rm -rf " + ssh.Quote(files) + "\n")
	}
	if len(states) > 0 {
		b.WriteString("rm -rf " + ssh.Quote(states) + "\n")
	}
	for _, d := range dirs {
		b.WriteString("rmdir " + ssh.Quote([]string{d}) + " 2>/dev/null\n")
	}
	// node.SetHost's line (tab, then the control plane's name); rewritten in place, as Docker and
	// some VMs bind-mount /etc/hosts.
	hostsLine := ssh.Quote([]string{"\t" + strings.ReplaceAll(controlPlaneHost, ".", "\\.") + "$"})
	b.WriteString(`if grep -q ` + hostsLine + ` /etc/hosts; then
  grep -v ` + hostsLine + ` /etc/hosts > /etc/hosts.mkube; cat /etc/hosts.mkube > /etc/hosts; rm -f /etc/hosts.mkube
fi
systemctl daemon-reload
rm -f ` + manifestPath + "\nrmdir " + path.Dir(manifestPath) + " 2>/dev/null\ntrue\n")
	return b.String()
}

// pathLine makes sure a login's PATH (a user's over SSH may lack the sbin directories) finds the
// machine's tools and mkube's own.
const pathLine = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n"

// killContainers ends every container in containerd's Kubernetes namespace (gracefully, then by
// SIGKILL after ten seconds), then containerd and its shims: the units leave shims running when
// containerd stops (KillMode=process), and the kubelet leaves pods running when it stops.
const killContainers = `if systemctl is-active -q containerd.service && command -v ctr >/dev/null; then
  tasks=$(ctr -n k8s.io tasks ls -q 2>/dev/null)
  for t in $tasks; do ctr -n k8s.io tasks kill "$t" >/dev/null 2>&1; done
  for i in $(seq 1 100); do
    ctr -n k8s.io tasks ls 2>/dev/null | grep -q RUNNING || break
    sleep 0.1
  done
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
fi
systemctl stop containerd.service >/dev/null 2>&1
systemctl kill -s SIGKILL containerd.service >/dev/null 2>&1
`

// appendScript appends entries to the manifest (making its directory).
func appendScript(lines []string) string {
	var b bytes.Buffer
	b.WriteString("mkdir -p " + path.Dir(manifestPath) + " && printf '%s\\n'")
	for _, l := range lines {
		b.WriteString(" " + ssh.Quote([]string{l}))
	}
	b.WriteString(" >> " + manifestPath)
	return b.String()
}
