// Package netpol enforces Kubernetes NetworkPolicies on multi-node clusters with kube-router in its
// NetworkPolicy-only mode: a DaemonSet that keeps iptables and ipset rules on each node in step with
// the cluster's policies. Pods keep the bridge CNI and the routes between nodes that mkube sets up;
// kube-router neither routes (no BGP) nor proxies services (kube-proxy does).
package netpol

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"text/template"
)

// Image is kube-router under its upstream name and version; the offline mirror builds the same
// version from source (pkg/artifacts).
const Image = "docker.io/cloudnativelabs/kube-router:v2.1.0"

// Images are the images the manifest runs.
func Images() []string { return []string{Image} }

// Values are the cluster settings the manifest needs.
type Values struct {
	// ServiceCIDR is the cluster's service range (kube-router's --service-cluster-ip-range). Pod
	// addresses kube-router learns from the API, so it needs no pod range.
	ServiceCIDR string
}

//go:embed kube-router.yaml
var manifest string

var tmpl = template.Must(template.New("kube-router.yaml").Option("missingkey=error").Parse(manifest))

// Render returns the manifest: kube-router's ServiceAccount, ClusterRole, ClusterRoleBinding and
// DaemonSet in kube-system.
func Render(v Values) ([]byte, error) {
	if _, _, err := net.ParseCIDR(v.ServiceCIDR); err != nil {
		return nil, fmt.Errorf("service CIDR %q: %w", v.ServiceCIDR, err)
	}
	var out bytes.Buffer
	err := tmpl.Execute(&out, struct {
		Values
		Image string
	}{v, Image})
	return out.Bytes(), err
}
