package node_test

import (
	"context"
	"strings"
	"testing"

	"mkube/pkg/driver"
	"mkube/pkg/driver/drivertest"
	"mkube/pkg/node"
)

// The cgroup driver follows the node's cgroup version, except that a node set up before keeps its
// kubelet's: the runtime and the kubelet must never disagree.
func TestCgroupFacts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fsType  string
		kubelet string // cgroupDriver in an existing kubelet config, "" when there is none
		proc1   string // PID 1's memory cgroup on v1
		want    node.Cgroups
	}{
		{name: "cgroup v2: systemd", fsType: "cgroup2fs", want: node.Cgroups{Driver: "systemd"}},
		{name: "cgroup v2, node made with cgroupfs", fsType: "cgroup2fs", kubelet: "cgroupfs", want: node.Cgroups{Driver: "cgroupfs"}},
		{name: "cgroup v2, node made with systemd", fsType: "cgroup2fs", kubelet: "systemd", want: node.Cgroups{Driver: "systemd"}},
		{name: "cgroup v1 container", fsType: "tmpfs", proc1: "/docker/abc/init.scope", want: node.Cgroups{V1: true, Root: "/docker/abc/mkube", Driver: "cgroupfs"}},
		{name: "cgroup v1, private view", fsType: "tmpfs", proc1: "/init.scope", want: node.Cgroups{V1: true, Driver: "cgroupfs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := drivertest.NewDriver(&drivertest.Log{})
			if err := d.Create(context.Background(), driver.Spec{Name: "n"}); err != nil {
				t.Fatal(err)
			}
			d.Node.Reply = func(args []string) (string, int) {
				line := strings.Join(args, " ")
				switch {
				case strings.HasPrefix(line, "stat -fc %T"):
					return tc.fsType + "\n", 0
				case strings.Contains(line, "cgroupDriver"):
					return tc.kubelet + "\n", 0
				case strings.Contains(line, ":memory:"):
					return tc.proc1 + "\n", 0
				}
				return "", 0
			}
			r, err := d.Runner(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := node.CgroupFacts(context.Background(), r)
			if err != nil || got != tc.want {
				t.Errorf("CgroupFacts = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
