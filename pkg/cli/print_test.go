package cli

import (
	"bytes"
	"strings"
	"testing"

	"mkube/internal/golden"
	"mkube/pkg/cluster"
	"mkube/pkg/node"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

func TestPrinters(t *testing.T) {
	t.Parallel()
	one := cluster.Status{Name: "mkube", Host: "Running", Kubelet: "Running", APIServer: "Running", Kubeconfig: "Configured"}
	status := []cluster.Status{one}
	multi := []cluster.Status{one, {Name: "mkube-m02", Host: "Running", Kubelet: "Stopped", APIServer: cluster.Irrelevant, Kubeconfig: cluster.Irrelevant, Worker: true}}
	profiles := []cluster.ProfileRow{{Name: "mkube", Driver: "docker", Runtime: "containerd", IP: "192.168.49.2", Port: 8443,
		Version: "v1.37.2", Status: "OK", Nodes: 1, Active: true}, {Name: "dev", Driver: "kvm2", Runtime: "containerd", Port: 8443, Version: "v1.35.0", Status: "Stopped", Nodes: 1}}
	addonRows := []cluster.AddonStatus{{Name: "dashboard", Profile: "mkube", Status: "disabled", Maintainer: "mkube"},
		{Name: "storage-provisioner", Profile: "mkube", Status: "enabled", Maintainer: "mkube"}}
	imgs := []node.Image{{Ref: "docker.io/mkube-test/hello:dev", Digest: "sha256:36b151384496aaaa", Size: "2.3 MiB"},
		{Ref: "registry.k8s.io/pause:3.10.2", Digest: "sha256:2e42e809210a", Size: "991.0 KiB"}}
	services := []cluster.ServiceRow{{Namespace: "default", Name: "hello", Target: "8080", URL: "http://192.168.49.2:30080"}}
	dev := versionInfo{Info: release.Info{Version: "v0.1.0"}, DefaultKubernetes: "v1.37.2"}
	rel := versionInfo{Info: release.Info{Version: "v0.2.0", Commit: "abc123", Registry: "registry.example.com/mkube", Images: map[string]string{
		"node": "registry.example.com/mkube/node:v0.2.0@sha256:aa", "iso": "registry.example.com/mkube/iso:v0.2.0@sha256:bb",
		"storage-provisioner": "registry.example.com/mkube/storage-provisioner:v0.2.0@sha256:cc", "dashboard": "registry.example.com/mkube/dashboard:v0.2.0@sha256:dd"}},
		DefaultKubernetes: "v1.37.2"}
	tests := []struct {
		name  string
		print func(*bytes.Buffer) error
		want  string
	}{
		{"status text", func(b *bytes.Buffer) error { return printStatus(b, status, "text") },
			"mkube\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\nkubeconfig: Configured\n\n"},
		{"status json", func(b *bytes.Buffer) error { return printStatus(b, status, "json") },
			`{"Name":"mkube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}` + "\n"},
		{"status text, two nodes", func(b *bytes.Buffer) error { return printStatus(b, multi, "text") },
			"mkube\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\nkubeconfig: Configured\n\nmkube-m02\ntype: Worker\nhost: Running\nkubelet: Stopped\n\n"},
		{"status json, two nodes", func(b *bytes.Buffer) error { return printStatus(b, multi, "json") },
			`[{"Name":"mkube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false},` +
				`{"Name":"mkube-m02","Host":"Running","Kubelet":"Stopped","APIServer":"Irrelevant","Kubeconfig":"Irrelevant","Worker":true}]` + "\n"},
		{"profiles table", func(b *bytes.Buffer) error { return printProfiles(b, profiles, "table") }, "@profiles.table"},
		{"profiles json, none", func(b *bytes.Buffer) error { return printProfiles(b, nil, "json") }, `{"invalid":[],"valid":[]}` + "\n"},
		{"addons table", func(b *bytes.Buffer) error { return printAddons(b, addonRows, "table") }, "@addons.table"},
		{"addons json", func(b *bytes.Buffer) error { return printAddons(b, addonRows, "json") },
			`{"dashboard":{"Profile":"mkube","Status":"disabled","Maintainer":"mkube"},"storage-provisioner":{"Profile":"mkube","Status":"enabled","Maintainer":"mkube"}}` + "\n"},
		{"images short", func(b *bytes.Buffer) error { return printImages(b, imgs, "short") }, "docker.io/mkube-test/hello:dev\nregistry.k8s.io/pause:3.10.2\n"},
		{"images table", func(b *bytes.Buffer) error { return printImages(b, imgs, "table") }, "@images.table"},
		{"images json, none", func(b *bytes.Buffer) error { return printImages(b, nil, "json") }, "[]\n"},
		{"services", func(b *bytes.Buffer) error { return printServices(b, services) }, "@services.table"},
		{"version short", func(b *bytes.Buffer) error { return printVersion(b, rel, true, "") }, "v0.2.0\n"},
		{"version dev json", func(b *bytes.Buffer) error { return printVersion(b, dev, false, "json") },
			`{"mkubeVersion":"v0.1.0","defaultKubernetesVersion":"v1.37.2"}` + "\n"},
		{"version release json", func(b *bytes.Buffer) error { return printVersion(b, rel, false, "json") }, "@version.release.json"},
		{"version release text", func(b *bytes.Buffer) error { return printVersion(b, rel, false, "") }, "@version.release.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.print(&b); err != nil {
				t.Fatal(err)
			}
			if name, ok := strings.CutPrefix(tt.want, "@"); ok {
				golden.Check(t, name+".golden", b.Bytes())
				return
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
	for _, bad := range []func() error{
		func() error { return printStatus(&bytes.Buffer{}, status, "xml") },
		func() error { return printVersion(&bytes.Buffer{}, dev, false, "yaml") },
		func() error { return printProfiles(&bytes.Buffer{}, profiles, "yaml") },
		func() error { return printAddons(&bytes.Buffer{}, addonRows, "yaml") },
		func() error { return printImages(&bytes.Buffer{}, imgs, "yaml") },
	} {
		if err := bad(); reason.ExitCode(err) != reason.Usage.ExitCode {
			t.Errorf("unknown format: %v", err)
		}
	}
}
