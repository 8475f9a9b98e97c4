//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EImages runs the test images the mirror builds for Conformance (make e2e-images) the way
// the specs use them, in a cluster started from the mirror: busybox's applets and wget, nginx
// serving its page through a Service, DNS lookups from glibc-dns-testing, nonewprivs' setuid bit
// honoured only when privilege escalation is allowed, sample-apiserver's binary, kitten serving
// its picture. The full suite (make conformance) is too long for CI.
func TestE2EImages(t *testing.T) {
	images := e2eImages(t)
	for _, name := range []string{"busybox", "nginx", "glibc-dns-testing", "nonewprivs", "kitten", "sample-apiserver"} {
		if images[name] == "" {
			t.Fatalf("no %s image in the mirror (make e2e-images builds them): %v", name, images)
		}
	}
	c := newCluster(t, serveMirror(t))
	const p = "itest-e2eimg"
	t.Cleanup(func() { c.run("delete", "-p", p) })
	defer c.dumpOnFailure(p)
	c.must(append([]string{"start", "-p", p}, c.mirrorFlags()...)...)
	c.must("-p", p, "cache", "add", images["busybox"], images["nginx"], images["glibc-dns-testing"], images["nonewprivs"], images["kitten"], images["sample-apiserver"])
	manifest := filepath.Join(t.TempDir(), "pods.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(e2eImagesManifest, images["nginx"], images["busybox"], images["glibc-dns-testing"],
		images["nonewprivs"], images["nonewprivs"], images["sample-apiserver"], images["kitten"], images["busybox"])), 0o644)
	c.kubectl(p, "apply", "-f", manifest)
	for pod, want := range map[string][]string{
		"bb":      {"uid=0(root)", "Welcome to nginx!"},
		"dns":     {"10.96.0.1", "kubernetes.default.svc.cluster.local"},
		"nnp-off": {"Effective uid: 1000"},
		"nnp-on":  {"Effective uid: 0"},
		"sample":  {"wardle"},
		"kitten":  {"kitten-ok"},
	} {
		eventually(t, 2*time.Minute, func() string {
			if phase := c.kubectl(p, "get", "pod", pod, "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
				return pod + ": " + phase
			}
			return ""
		})
		logs := c.kubectl(p, "logs", pod)
		for _, w := range want {
			if !strings.Contains(logs, w) {
				t.Errorf("%s: logs lack %q:\n%s", pod, w, logs)
			}
		}
	}
}

// e2eImages maps each e2e test image in the mirror (registry.k8s.io/e2e-test-images/NAME) to its
// reference; of two agnhost tags, either.
func e2eImages(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ref := range mirrorRefs(t) {
		if rest, ok := strings.CutPrefix(ref, "registry.k8s.io/e2e-test-images/"); ok {
			out[strings.SplitN(rest, ":", 2)[0]] = ref
		}
	}
	return out
}

const e2eImagesManifest = `apiVersion: v1
kind: Pod
metadata: {name: nginx, labels: {app: nginx}}
spec: {containers: [{name: c, image: %s}]}
---
apiVersion: v1
kind: Service
metadata: {name: nginx-svc}
spec: {selector: {app: nginx}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: bb}
spec:
  restartPolicy: Never
  containers: [{name: c, image: %s, command: [sh, -c, "id; for i in $(seq 1 30); do wget -qO- http://nginx-svc/ && exit 0; sleep 2; done; exit 1"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: dns}
spec:
  restartPolicy: Never
  containers: [{name: c, image: %s, command: [sh, -c, "dig +short +search kubernetes.default.svc.cluster.local && getent hosts kubernetes.default"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: nnp-off}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000}
  containers: [{name: c, image: %s, securityContext: {allowPrivilegeEscalation: false}}]
---
apiVersion: v1
kind: Pod
metadata: {name: nnp-on}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 1000}
  containers: [{name: c, image: %s, securityContext: {allowPrivilegeEscalation: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: sample}
spec:
  restartPolicy: Never
  containers: [{name: c, image: %s, args: ["--help"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: kitten-srv, labels: {app: kitten}}
spec: {containers: [{name: c, image: %s}]}
---
apiVersion: v1
kind: Service
metadata: {name: kitten-svc}
spec: {selector: {app: kitten}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: kitten}
spec:
  restartPolicy: Never
  containers: [{name: c, image: %s, command: [sh, -c, "for i in $(seq 1 30); do wget -qO /tmp/k.jpg http://kitten-svc/kitten.jpg && [ -s /tmp/k.jpg ] && echo kitten-ok && exit 0; sleep 2; done; exit 1"]}]
`
