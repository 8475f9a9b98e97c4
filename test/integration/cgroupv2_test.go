//go:build integration

package integration

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dockerdriver "mkube/pkg/driver/docker"
	"mkube/pkg/k8sversion"
)

// TestCgroupV2Host is the docker driver on the host most developers have: a cgroup v2 kernel with
// systemd managing cgroups and Debian's Docker engine (systemd cgroup driver). This build machine is
// cgroup v1, so the host is a VM booted from the host flavor of mkube's ISO (under software
// emulation here); mkube runs inside it as an unprivileged user in the docker group, against the
// offline mirror forwarded into the VM over SSH. For each version (MKUBE_CGROUPV2_VERSIONS, default
// the default version; make test-cgroupv2): a start, pod limits enforced by the kernel, stop and
// start keeping the workload, a second profile beside the first (MKUBE_CGROUPV2_SIDE_BY_SIDE=1, as
// make test-cgroupv2 sets), delete leaving nothing.
func TestCgroupV2Host(t *testing.T) {
	versions := strings.Fields(os.Getenv("MKUBE_CGROUPV2_VERSIONS"))
	if len(versions) == 0 {
		versions = []string{k8sversion.DefaultString}
	}
	mirror := serveMirror(t)
	vm := bootHostVM(t, "itest-cgv2-host", 7168)
	vm.forward(mirror)
	c := &cluster{t: t, mirror: mirror}
	flags := c.mirrorFlags()

	t.Run("the host is cgroup v2 with the systemd cgroup driver", func(t *testing.T) {
		if got := strings.TrimSpace(vm.must(t, "stat", "-fc", "%T", "/sys/fs/cgroup/")); got != "cgroup2fs" {
			t.Fatalf("the VM's /sys/fs/cgroup is %q, want cgroup2fs", got)
		}
		if got := strings.TrimSpace(vm.must(t, "docker", "info", "-f", "{{.CgroupVersion}} {{.CgroupDriver}}")); got != "2 systemd" {
			t.Fatalf("docker info: cgroup version and driver %q, want \"2 systemd\"", got)
		}
	})
	begin := time.Now()
	vm.install(outPath(t, "mkube"), "/usr/local/bin/mkube", 0o755)
	vm.loadImage(dockerdriver.DefaultImage())
	t.Logf("mkube and the node image copied into the VM in %s", time.Since(begin).Round(time.Second))

	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			const a, b = "cgv2-a", "cgv2-b"
			start := func(t *testing.T, p string) {
				t.Helper()
				begin := time.Now()
				// -v 1: each step's time, and a failure's details (kubeadm's output) in the test's log.
				// --wait-timeout: two control planes under software emulation take their time.
				args := append([]string{"start", "-p", p, "-v", "1", "--driver=docker", "--memory=2500mb", "--cpus=2", "--wait-timeout=15m", "--kubernetes-version=" + v}, flags...)
				out, err := vm.mkube(args...)
				if err != nil || !strings.Contains(out, "Done!") {
					logs, _ := vm.mkube("-p", p, "logs", "--length=80")
					t.Fatalf("start %s: %v\n%s\nmkube logs:\n%s", p, err, out, logs)
				}
				t.Logf("start %s (%s) on the cgroup v2 host: %s; its steps:\n%s", p, v, time.Since(begin).Round(time.Second), stepTimes(out))
			}
			kubectl := func(t *testing.T, p string, args ...string) string {
				t.Helper()
				return vm.mustMkube(t, append([]string{"-p", p, "kubectl", "--"}, args...)...)
			}
			// diagnose logs both profiles' pods and logs when t fails (before "delete" removes them).
			diagnose := func(t *testing.T) {
				t.Cleanup(func() {
					if !t.Failed() {
						return
					}
					for _, p := range []string{a, b} {
						out, _ := vm.mkube("-p", p, "kubectl", "--", "get", "pods", "-A", "-o", "wide")
						t.Logf("%s pods:\n%s", p, out)
						out, _ = vm.mkube("-p", p, "logs", "--length=60")
						t.Logf("%s logs:\n%s", p, out)
						out, _ = vm.mkube("-p", p, "ssh", "--", "head", "/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/cgroup.subtree_control", "/sys/fs/cgroup/cgroup.procs")
						t.Logf("%s node's root cgroup:\n%s", p, out)
					}
				})
			}
			t.Cleanup(func() {
				for _, p := range []string{a, b} {
					vm.mkube("delete", "-p", p)
				}
			})

			start(t, a)
			t.Run("node Ready at the version, kubelet on the systemd cgroup driver", func(t *testing.T) {
				got := kubectl(t, a, "get", "nodes", "-o", `jsonpath={.items[0].status.nodeInfo.kubeletVersion} {.items[0].status.conditions[?(@.type=="Ready")].status}`)
				if got != v+" True" {
					t.Errorf("node: %q, want %q", got, v+" True")
				}
				if out := vm.mustMkube(t, "-p", a, "ssh", "--", "sudo", "grep", "-h", "cgroupDriver", "/var/lib/kubelet/config.yaml"); !strings.Contains(out, "cgroupDriver: systemd") {
					t.Errorf("kubelet config: %s", out)
				}
				if out := vm.mustMkube(t, "-p", a, "ssh", "--", "sudo", "grep", "-h", "SystemdCgroup", "/etc/containerd/config.toml"); !strings.Contains(out, "SystemdCgroup = true") {
					t.Errorf("containerd config: %s", out)
				}
				// Every controller the node has is enabled for its children (mkube-kubelet-cgroup).
				have := strings.Fields(vm.mustMkube(t, "-p", a, "ssh", "--", "cat", "/sys/fs/cgroup/cgroup.controllers"))
				enabled := strings.Fields(vm.mustMkube(t, "-p", a, "ssh", "--", "cat", "/sys/fs/cgroup/cgroup.subtree_control"))
				for _, c := range have {
					if !slices.Contains(enabled, c) {
						t.Errorf("the node's root cgroup has %v but enables only %v for the kubelet's pods", have, enabled)
						break
					}
				}
			})

			t.Run("pod limits are enforced by the kernel", func(t *testing.T) {
				diagnose(t)
				// kube-proxy's image is in every node already (no image to load under emulation),
				// and it has a shell and coreutils.
				if out, err := vm.mkubeIn(strings.NewReader(limitsPods("registry.k8s.io/kube-proxy:"+v)), "-p", a, "kubectl", "--", "apply", "-f", "-"); err != nil {
					t.Fatalf("kubectl apply: %v\n%s", err, out)
				}
				kubectl(t, a, "wait", "--for=condition=Ready", "pod/limited", "--timeout=5m")
				if got := strings.TrimSpace(kubectl(t, a, "exec", "limited", "--", "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max")); got != "67108864\n25000 100000" {
					t.Errorf("the pod's cgroup: %q, want memory.max 67108864 and cpu.max \"25000 100000\"", got)
				}
				// A process that outgrows the memory limit is killed by the kernel's OOM killer.
				eventually(t, 5*time.Minute, func() string {
					reason := kubectl(t, a, "get", "pod", "hog", "-o", `jsonpath={.status.containerStatuses[0].state.terminated.reason}`)
					if reason != "OOMKilled" {
						return fmt.Sprintf("the pod over its memory limit: terminated %q, want OOMKilled", reason)
					}
					return ""
				})
			})

			t.Run("stop and start keep the workload", func(t *testing.T) {
				diagnose(t)
				vm.mustMkube(t, "stop", "-p", a)
				if out, _ := vm.mkube("status", "-p", a); !strings.Contains(out, "host: Stopped") {
					t.Errorf("status after stop:\n%s", out)
				}
				start(t, a)
				kubectl(t, a, "wait", "--for=condition=Ready", "pod/limited", "--timeout=5m")
			})

			// Two control planes under software emulation: the second start takes about 11 minutes.
			// Two control planes under software emulation on 2 cores take 20 minutes more and
			// starve each other (CI of stop 22 failed here after 21 minutes): make test-cgroupv2
			// runs this part, CI does not. TestCluster covers two profiles on the host's engine.
			sideBySide := os.Getenv("MKUBE_CGROUPV2_SIDE_BY_SIDE") != ""
			if !sideBySide {
				t.Log("a second profile beside the first: not in this run (make test-cgroupv2 runs it)")
			}
			if sideBySide {
				t.Run("a second profile beside the first", func(t *testing.T) {
					diagnose(t)
					start(t, b)
					// Under software emulation the second control plane's start starves the first
					// one's API server, which its liveness probe then restarts: wait until both
					// answer again, as they do once the second start is over.
					for _, p := range []string{a, b} {
						eventually(t, 5*time.Minute, func() string {
							got, err := vm.mkube("-p", p, "kubectl", "--", "get", "nodes", "-o", `jsonpath={.items[0].metadata.name} {.items[0].status.conditions[?(@.type=="Ready")].status}`)
							if err != nil || got != p+" True" {
								return fmt.Sprintf("profile %s sees node %q (%v), want %q", p, got, err, p+" True")
							}
							return ""
						})
					}
					if got := kubectl(t, b, "get", "pods", "-o", "name"); strings.Contains(got, "limited") {
						t.Errorf("profile %s sees profile %s's pods: %s", b, a, got)
					}
					if got := kubectl(t, a, "get", "pods", "-o", "name"); !strings.Contains(got, "limited") {
						t.Errorf("profile %s lost its pods beside profile %s: %s", a, b, got)
					}
					if st := strings.TrimSpace(vm.must(t, "docker", "inspect", "-f", "{{.State.Running}}", a, b)); st != "true\ntrue" {
						t.Errorf("node containers running: %q", st)
					}
				})
			}

			t.Run("delete leaves nothing", func(t *testing.T) {
				for _, p := range []string{a, b} {
					vm.mustMkube(t, "delete", "-p", p)
				}
				if out := vm.must(t, "docker", "ps", "-aq", "--filter", "label=created_by.mkube=true"); strings.TrimSpace(out) != "" {
					t.Errorf("containers left: %s", out)
				}
				if out := vm.must(t, "docker", "volume", "ls", "-q", "--filter", "label=created_by.mkube=true"); strings.TrimSpace(out) != "" {
					t.Errorf("volumes left: %s", out)
				}
				if out := vm.must(t, "docker", "network", "ls", "-q", "--filter", "label=created_by.mkube=true"); strings.TrimSpace(out) != "" {
					t.Errorf("networks left: %s", out)
				}
			})
		})
	}
}

// limitsPods: one pod whose limits are read back from its cgroup files, one that outgrows its
// memory limit, both from an image the node has (with a shell and coreutils).
func limitsPods(image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: limited}
spec:
  containers:
  - name: c
    image: %[1]s
    command: [sleep, infinity]
    resources:
      limits: {cpu: 250m, memory: 64Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: %[1]s
    command: [sh, -c, "tail /dev/zero"]
    resources:
      limits: {cpu: 250m, memory: 32Mi}
`, image)
}

// stepTimes is the "step … took …" lines of a start at -v 1: where the time of a slow start went.
func stepTimes(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " took ") || strings.Contains(l, "trying once more") {
			b.WriteString("  " + strings.TrimSpace(l) + "\n")
		}
	}
	return b.String()
}
