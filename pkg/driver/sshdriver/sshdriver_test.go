package sshdriver

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mkube/pkg/bootstrapper/kubeadm"
	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
)

func TestOptions(t *testing.T) {
	e := Entry("linux")
	tests := []struct {
		name    string
		values  map[string]string
		wantErr string
	}{
		{"defaults", map[string]string{"ssh-ip-address": "192.168.56.10"}, ""},
		{"everything", map[string]string{"ssh-ip-address": "fd00::10", "ssh-user": "vagrant", "ssh-key": "/home/u/.ssh/id_rsa", "ssh-port": "2222"}, ""},
		{"a key under ~/", map[string]string{"ssh-key": "~/.ssh/id_ed25519"}, ""},
		{"a Windows key path", map[string]string{"ssh-key": `C:\Users\u\.ssh\id_rsa`}, ""},
		{"a host name", map[string]string{"ssh-ip-address": "node.example.com"}, "not an IP address"},
		{"a shell command after the address", map[string]string{"ssh-ip-address": "10.0.0.1;reboot"}, "not an IP address"},
		{"an ssh option as the address", map[string]string{"ssh-ip-address": "-oProxyCommand=sh"}, "not an IP address"},
		{"an ssh option in the user", map[string]string{"ssh-user": "root -oProxyCommand=sh"}, "not a login name"},
		{"a user with a host", map[string]string{"ssh-user": "root@10.0.0.1"}, "not a login name"},
		{"an uppercase user", map[string]string{"ssh-user": "Root"}, "not a login name"},
		{"a relative key", map[string]string{"ssh-key": "id_rsa"}, "absolute path"},
		{"a key with a newline", map[string]string{"ssh-key": "/k\nHost *"}, "not a file path"},
		{"port 0", map[string]string{"ssh-port": "0"}, "not a port number"},
		{"port too high", map[string]string{"ssh-port": "65536"}, "not a port number"},
		{"port with text", map[string]string{"ssh-port": "22 -p 23"}, "not a port number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := e.Settings(tc.values)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s["ssh-user"] == "" || s["ssh-port"] == "" {
					t.Errorf("defaults not filled in: %v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := Entry("linux").Settings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s["ssh-user"] != "root" || s["ssh-port"] != "22" || s["ssh-ip-address"] != "" {
		t.Errorf("defaults %v, want minikube's (root, 22, no address)", s)
	}
	if h := Health(context.Background(), s); h.Healthy || !strings.Contains(h.Fix, "--ssh-ip-address") {
		t.Errorf("health without an address: %+v", h)
	}
	if _, err := New("p", driver.Options{Owner: driver.Owner{HomeID: "h"}, Settings: s}); err == nil || !strings.Contains(err.Error(), "--ssh-ip-address") {
		t.Errorf("New without an address: %v", err)
	}
}

func TestKeyPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	if _, err := keyPath(driver.Settings{}); err == nil {
		t.Error("no key given and none in ~/.ssh: want an error")
	}
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), nil, 0o600)
	if got, _ := keyPath(driver.Settings{}); got != filepath.Join(home, ".ssh", "id_rsa") {
		t.Errorf("default key %q", got)
	}
	if got, _ := keyPath(driver.Settings{"ssh-key": "~/keys/k"}); got != filepath.Join(home, "keys", "k") {
		t.Errorf("~/ expanded to %q", got)
	}
}

// The /etc/hosts line delete removes is the one provisioning writes.
func TestControlPlaneHost(t *testing.T) {
	if controlPlaneHost != kubeadm.ControlPlaneHost {
		t.Errorf("controlPlaneHost %q, provisioning writes %q", controlPlaneHost, kubeadm.ControlPlaneHost)
	}
}

func TestParseManifest(t *testing.T) {
	m, err := parseManifest("owner mkube-owner:h/p\nstate /etc/kubernetes\ndir /opt/cni\nclaim /usr/local/bin/kubelet\nfile /opt/cni/bin/bridge abc\nunit containerd.service\ncomplete\n")
	if err != nil {
		t.Fatal(err)
	}
	if m.Owner != "mkube-owner:h/p" || !m.Complete || len(m.Entries) != 5 {
		t.Errorf("%+v", m)
	}
	if e, ok := m.has(kindFile, "/opt/cni/bin/bridge"); !ok || e.Digest != "abc" {
		t.Errorf("file entry %+v %v", e, ok)
	}
	for _, bad := range []string{"state /a\n", "owner o\nrm -rf /\n", "owner o\nfile /a\n", "owner o\nstate /a b\n"} {
		if _, err := parseManifest(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// payloads are the bundle with made-up contents.
func payloads() []payload {
	var out []payload
	for _, f := range bundle {
		out = append(out, payload{bundleFile: f, Data: []byte(f.Src), Digest: "d-" + f.Dst})
	}
	return out
}

func TestPlan(t *testing.T) {
	owner := "mkube-owner:h/p"
	files := payloads()
	containerd := "/usr/local/bin/containerd"
	none := facts{Exists: map[string]bool{"/usr": true, "/usr/local": true, "/usr/local/bin": true, "/etc": true, "/etc/systemd": true, "/etc/systemd/system": true, "/var": true, "/var/lib": true}, Digests: map[string]string{}, Units: map[string]bool{}}
	with := func(change func(f *facts)) facts {
		f := facts{Exists: map[string]bool{}, Digests: map[string]string{}, Units: map[string]bool{}}
		for k, v := range none.Exists {
			f.Exists[k] = v
		}
		change(&f)
		return f
	}
	tests := []struct {
		name      string
		m         *manifest
		facts     facts
		wantErr   string
		wantWrite int
		check     func(t *testing.T, add []entry, write []payload)
	}{
		{name: "a bare machine gets everything", facts: none, wantWrite: len(bundle), check: func(t *testing.T, add []entry, _ []payload) {
			for _, want := range []entry{{Kind: kindState, Path: "/var/lib/kubelet"}, {Kind: kindClaim, Path: "/usr/local/bin/kubelet"}, {Kind: kindDir, Path: "/opt/cni"}, {Kind: kindDir, Path: "/opt/cni/bin"}, {Kind: kindDir, Path: "/usr/local/sbin"}} {
				if !slices.Contains(add, want) {
					t.Errorf("no %+v in %+v", want, add)
				}
			}
			if slices.Contains(add, entry{Kind: kindDir, Path: "/usr/local/bin"}) {
				t.Error("claims /usr/local/bin, which the machine had")
			}
			if i, j := slices.Index(add, entry{Kind: kindDir, Path: "/opt/cni"}), slices.Index(add, entry{Kind: kindDir, Path: "/opt/cni/bin"}); i > j {
				t.Error("a directory recorded before its parent")
			}
		}},
		{name: "a state directory the machine had stays its own", facts: with(func(f *facts) { f.Exists["/etc/cni"] = true }), wantWrite: len(bundle), check: func(t *testing.T, add []entry, _ []payload) {
			if slices.Contains(add, entry{Kind: kindState, Path: "/etc/cni"}) {
				t.Error("records /etc/cni, which the machine had")
			}
		}},
		{name: "a distribution's containerd is refused", facts: with(func(f *facts) { f.Exists[containerd], f.Digests[containerd] = true, "other" }), wantErr: containerd + " on m exists and was not installed by mkube"},
		{name: "an identical file is left as the machine's", facts: with(func(f *facts) { f.Exists[containerd], f.Digests[containerd] = true, "d-"+containerd }), wantWrite: len(bundle) - 1},
		{name: "a containerd unit of the machine's is refused", facts: with(func(f *facts) { f.Units["containerd.service"] = true }), wantErr: "containerd.service on m is already a systemd unit"},
		{name: "a kubelet of the machine's is refused", facts: with(func(f *facts) { f.Exists["/usr/local/bin/kubelet"] = true }), wantErr: "/usr/local/bin/kubelet on m exists"},
		{name: "an interrupted install resumes where it stopped",
			m: &manifest{Owner: owner, Entries: []entry{{Kind: kindState, Path: "/var/lib/kubelet"}, {Kind: kindClaim, Path: "/usr/local/bin/kubelet"}, {Kind: kindFile, Path: containerd, Digest: "d-" + containerd}, {Kind: kindFile, Path: "/usr/local/bin/ctr", Digest: "d-/usr/local/bin/ctr"}}},
			facts: with(func(f *facts) {
				f.Exists[containerd], f.Digests[containerd] = true, "d-"+containerd
				f.Exists["/usr/local/bin/ctr"], f.Digests["/usr/local/bin/ctr"] = true, "half written"
				f.Exists["/usr/local/bin/kubelet"] = true
				f.Exists["/var/lib/kubelet"] = true
			}),
			wantWrite: len(bundle) - 1, check: func(t *testing.T, add []entry, write []payload) {
				if slices.ContainsFunc(add, func(e entry) bool { return e.Kind == kindClaim || e.Path == "/var/lib/kubelet" }) {
					t.Errorf("records again what the manifest has: %+v", add)
				}
				if !slices.ContainsFunc(write, func(p payload) bool { return p.Dst == "/usr/local/bin/ctr" }) {
					t.Error("does not rewrite the half-written ctr")
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			add, write, err := plan("m", tc.m, tc.facts, files)
			if tc.wantErr != "" {
				var c *ConflictError
				if !errors.As(err, &c) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want a conflict with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(write) != tc.wantWrite {
				t.Errorf("writes %d files, want %d", len(write), tc.wantWrite)
			}
			if tc.check != nil {
				tc.check(t, add, write)
			}
		})
	}
}

func TestRemoveScript(t *testing.T) {
	m := &manifest{Owner: "o", Entries: []entry{
		{Kind: kindState, Path: "/var/lib/kubelet"}, {Kind: kindClaim, Path: "/usr/local/bin/kubelet"},
		{Kind: kindDir, Path: "/opt/cni"}, {Kind: kindDir, Path: "/opt/cni/bin"},
		{Kind: kindFile, Path: "/etc/systemd/system/containerd.service", Digest: "x"}, {Kind: kindFile, Path: "/opt/cni/bin/bridge", Digest: "y"},
		{Kind: kindUnit, Path: "containerd.service"},
	}}
	s := removeScript(m)
	for _, want := range []string{
		"kubeadm reset -f", "systemctl disable --now containerd.service",
		"rm -rf /usr/local/bin/kubelet /usr/local/bin/kubelet.mkube-tmp /etc/systemd/system/containerd.service /etc/systemd/system/containerd.service.mkube-tmp /opt/cni/bin/bridge /opt/cni/bin/bridge.mkube-tmp\n",
		"rm -rf /var/lib/kubelet\n", "rmdir /opt/cni/bin 2>/dev/null\nrmdir /opt/cni 2>/dev/null\n",
		"control-plane\\.mkube\\.internal$", "rm -f " + manifestPath,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("remove script lacks %q:\n%s", want, s)
		}
	}
	if i, j := strings.Index(s, "kubeadm reset"), strings.Index(s, "systemctl disable"); i > j {
		t.Error("units stopped before kubeadm reset could remove the pods through containerd")
	}
	if i, j := strings.Index(s, "tasks kill"), strings.Index(s, "systemctl disable"); i > j {
		t.Error("containerd stopped before the containers were ended through it")
	}
	if strings.Index(s, "rm -f "+manifestPath) < strings.Index(s, "rm -rf /var/lib/kubelet") {
		t.Error("the manifest goes before what it records")
	}
	// Nothing that is not in the manifest is removed.
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "rm -rf") && (strings.Contains(line, "/usr/local/bin ") || strings.Contains(line, " /opt/cni ")) {
			t.Errorf("removes a directory whole: %s", line)
		}
	}
	// An install interrupted before the runtime's unit was written needs no kubeadm reset.
	if s := removeScript(&manifest{Owner: "o"}); strings.Contains(s, "kubeadm reset") {
		t.Errorf("reset without a runtime:\n%s", s)
	}
}

// nodeImage is a node image's root file system with the bundle in it (and other files).
func nodeImage(t *testing.T, skip string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data string) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	add("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	for _, f := range bundle {
		if f.Src != skip {
			add("."+f.Src, "content of "+f.Src)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadBundle(t *testing.T) {
	files, err := readBundle(bytes.NewReader(nodeImage(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(bundle) || files[3].Dst != "/usr/local/sbin/runc" || string(files[3].Data) != "content of /usr/sbin/runc" || len(files[3].Digest) != 64 {
		t.Errorf("%d files, runc %+v", len(files), files[3].bundleFile)
	}
	if _, err := readBundle(bytes.NewReader(nodeImage(t, "/usr/sbin/runc"))); err == nil || !strings.Contains(err.Error(), "/usr/sbin/runc") {
		t.Errorf("an image without runc: %v", err)
	}
}

// machine plays the remote shell for install: the preflight, the probe, and the manifest appends.
type machine struct {
	preflight string
	manifest  []string // appended lines, in order
}

func (m *machine) reply(args []string) (string, int) {
	if len(args) != 3 || args[0] != "/bin/sh" {
		return "", 0
	}
	s := args[2]
	switch {
	case strings.Contains(s, "uname -s"):
		return m.preflight, 0
	case strings.Contains(s, "sha256sum"):
		return "exists /usr\nexists /usr/local\nexists /usr/local/bin\nexists /etc\nexists /var\nexists /var/lib\n", 0
	case strings.Contains(s, ">> "+manifestPath):
		m.manifest = append(m.manifest, s)
	}
	return "", 0
}

func TestInstall(t *testing.T) {
	image := nodeImage(t, "")
	spec := driver.Spec{NodeFiles: func(_ context.Context, w io.Writer) error { _, err := w.Write(image); return err }}
	for _, tc := range []struct {
		name, preflight, wantErr string
	}{
		{name: "a bare machine"},
		{name: "a machine without systemd or conntrack", preflight: "its init is not systemd\nit has no conntrack\n", wantErr: "10.0.0.5 cannot run an mkube node: its init is not systemd; it has no conntrack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &drivertest.Log{}
			fake := drivertest.NewDriver(log)
			fake.Create(context.Background(), driver.Spec{})
			m := &machine{preflight: tc.preflight}
			fake.Node.Reply = m.reply
			r, _ := fake.Runner(context.Background())
			defer r.Close()
			d := &Driver{profile: "p", ip: "10.0.0.5", owner: driver.Owner{HomeID: "h", Profile: "p"}, opts: driver.Options{MachineDir: t.TempDir()}}
			err := d.install(context.Background(), r, nil, spec)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
				for _, l := range log.Take() {
					if strings.HasPrefix(l, "write:") {
						t.Errorf("wrote on a machine that failed the preflight: %s", l)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.manifest[0], "'owner mkube-owner:h/p'") {
				t.Errorf("first append %q, want the owner", m.manifest[0])
			}
			if last := m.manifest[len(m.manifest)-1]; !strings.Contains(last, "complete") {
				t.Errorf("last append %q, want complete", last)
			}
			// Every file is recorded before it is written.
			var recorded []string
			for _, l := range log.Take() {
				if strings.Contains(l, ">> "+manifestPath) {
					recorded = append(recorded, l)
				}
				if dst, ok := strings.CutPrefix(l, "write: "); ok {
					dst = strings.Fields(dst)[0]
					if !slices.ContainsFunc(recorded, func(r string) bool { return strings.Contains(r, "'file "+dst+" ") }) {
						t.Errorf("%s written before the manifest records it", dst)
					}
				}
			}
			if _, err := os.Stat(d.installedMark()); err != nil {
				t.Errorf("no record on the host of the install: %v", err)
			}
		})
	}
}

// Another home's install on the machine is not this profile's machine in any state.
func TestReadManifestOwner(t *testing.T) {
	log := &drivertest.Log{}
	fake := drivertest.NewDriver(log)
	fake.Create(context.Background(), driver.Spec{})
	fake.Node.Reply = func([]string) (string, int) { return "owner mkube-owner:other/p\ncomplete\n", 0 }
	r, _ := fake.Runner(context.Background())
	defer r.Close()
	d := &Driver{profile: "p", ip: "10.0.0.5", owner: driver.Owner{HomeID: "h", Profile: "p"}}
	if _, err := d.readManifest(context.Background(), r); !errors.Is(err, driver.ErrNotOwned) {
		t.Errorf("another home's manifest: %v, want ErrNotOwned", err)
	}
	fake.Node.Reply = func([]string) (string, int) { return "absent\n", 0 }
	if m, err := d.readManifest(context.Background(), r); m != nil || err != nil {
		t.Errorf("no manifest: %v %v", m, err)
	}
}
