// Package kubeadm is the kubeadm bootstrapper: it turns a machine into a single-node control plane
// with mkube's certificates, preloaded images and a bridge CNI, and waits until it serves.
package kubeadm

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"mkube/pkg/k8sversion"
)

//go:embed kubeadm.yaml.tmpl
var configTemplate string

// templates maps each supported minor release to its kubeadm configuration template. All of them
// speak kubeadm.k8s.io/v1beta4 (v1.31+); a release that changes the API gets its own entry here.
var templates = map[string]*template.Template{}

func init() {
	t := template.Must(template.New("kubeadm").Funcs(template.FuncMap{"quote": quote}).Parse(configTemplate))
	for _, v := range k8sversion.Known() {
		templates[v.MinorString()] = t
	}
}

// ControlPlaneHost is the name the node and the kubeconfigs inside it use for the API server.
const ControlPlaneHost = "control-plane.mkube.internal"

// Params describe one cluster's kubeadm configuration.
type Params struct {
	Version       k8sversion.Version
	ClusterName   string
	NodeName      string
	NodeIP        string
	APIServerPort int
	PodCIDR       string
	ServiceCIDR   string
	DNSDomain     string
	CgroupV1      bool     // the node runs on a cgroup v1 host
	CgroupRoot    string   // the kubelet's cgroupRoot, when the node shares the host's hierarchy
	CgroupDriver  string   // node.CgroupSystemd or node.CgroupFS (default)
	ExtraConfig   []string // component.key=value, as minikube's --extra-config
	ExtraNames    []string // --apiserver-names
	ExtraIPs      []string // --apiserver-ips
	// NodePodCIDR is this node's pod range (its bridge's); "" until the node is registered and the
	// controller manager gave it one (a joining node).
	NodePodCIDR string
	// HA: three control planes behind a load balancer (leader election on).
	HA bool
	// ControlPlane: this node joins as a control plane (an --ha cluster's second and third).
	ControlPlane bool
	// NoWorkloads: a joining control plane keeps kubeadm's control-plane taint (`node add
	// --control-plane --worker=false`); the others run workloads, as minikube's do.
	NoWorkloads bool
	// MultiNode: the cluster has (or will have) more than one node, each with its own pod range.
	MultiNode bool
	// ControlPlaneIP is where this node reaches the API server (ControlPlaneHost); "" is NodeIP.
	ControlPlaneIP string
}

func (p Params) controlPlaneIP() string {
	if p.ControlPlaneIP != "" {
		return p.ControlPlaneIP
	}
	return p.NodeIP
}

// Arg is one command-line flag for a component.
type Arg struct{ Name, Value string }

// Components --extra-config accepts, as minikube names them.
var Components = []string{"apiserver", "controller-manager", "scheduler", "etcd", "kubelet", "kubeadm"}

// extraConfigKey is what a flag name looks like. Keys end up as YAML values, as kubeadm's
// command-line flags and as the components' flags: anything else (a space, "=", a leading "-")
// is a typo or an attempt to smuggle in something else.
var extraConfigKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseExtraConfig splits component.key=value settings by component. Keys must look like flag
// names; values may hold anything but a line break or NUL, which no flag needs and which would
// end a flag or a line in the files and command lines they are written to.
func ParseExtraConfig(settings []string) (map[string][]Arg, error) {
	out := map[string][]Arg{}
	for _, s := range settings {
		kv, value, ok := strings.Cut(s, "=")
		comp, key, ok2 := strings.Cut(kv, ".")
		if !ok || !ok2 || key == "" {
			return nil, fmt.Errorf("--extra-config %q: use component.key=value, e.g. kubelet.max-pods=200", s)
		}
		if !slices.Contains(Components, comp) {
			return nil, fmt.Errorf("--extra-config %q: unknown component %q (known: %s)", s, comp, strings.Join(Components, ", "))
		}
		if !extraConfigKey.MatchString(key) {
			return nil, fmt.Errorf("--extra-config %q: the key %q is not a flag name (letters, digits, '.', '_', '-', starting with a letter or digit)", s, key)
		}
		if strings.ContainsAny(value, "\n\r\x00") {
			return nil, fmt.Errorf("--extra-config %q: the value holds a line break or NUL", s)
		}
		out[comp] = append(out[comp], Arg{Name: key, Value: value})
	}
	return out, nil
}

// quote renders s as a double-quoted scalar, for every value in the configuration that comes
// from the user or a profile: a JSON string is a valid YAML one, so text such as "*.nip.io",
// "a: b", "# c", "{", quotes or a line break stays one value and cannot change the structure.
// (Go's %q is not: its \x escapes and invalid UTF-8 mean something else to YAML.)
func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<" and ">" need no escaping in YAML; keep values readable
	if err := enc.Encode(s); err != nil {
		panic(err) // a string always encodes
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// SANs are the names and addresses the API server certificate must carry: everything kubeadm
// requires (it refuses a provided certificate lacking any) plus what reaches it from the host.
func SANs(p Params) (dns []string, ips []net.IP, err error) {
	dns = []string{p.NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + p.DNSDomain, ControlPlaneHost, "localhost"}
	dns = append(dns, p.ExtraNames...)
	svc, err := firstServiceIP(p.ServiceCIDR)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range append([]string{p.NodeIP, "127.0.0.1", svc.String(), "10.0.0.1"}, p.ExtraIPs...) {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, fmt.Errorf("%q is not an IP address", s)
		}
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return dns, ips, nil
}

// firstServiceIP is the kubernetes Service's ClusterIP: the first address of the service range.
func firstServiceIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	ip := slices.Clone(n.IP.To4())
	if ip == nil {
		return nil, fmt.Errorf("service CIDR %q is not IPv4", cidr)
	}
	ip[3]++
	return ip, nil
}

// GenerateConfig renders the kubeadm configuration for p.
func GenerateConfig(p Params) ([]byte, error) {
	t, ok := templates[p.Version.MinorString()]
	if !ok {
		return nil, fmt.Errorf("no kubeadm configuration template for Kubernetes %s", p.Version)
	}
	extra, err := ParseExtraConfig(p.ExtraConfig)
	if err != nil {
		return nil, err
	}
	dns, ips, err := SANs(p)
	if err != nil {
		return nil, err
	}
	sans := slices.Clone(dns)
	for _, ip := range ips {
		sans = append(sans, ip.String())
	}
	data := struct {
		Params
		ControlPlaneHost                                                           string
		CertSANs                                                                   []string
		KubeletArgs, APIServerArgs, ControllerManagerArgs, SchedulerArgs, EtcdArgs []Arg
	}{
		Params: p, ControlPlaneHost: ControlPlaneHost, CertSANs: sans,
		KubeletArgs: extra["kubelet"], APIServerArgs: extra["apiserver"], ControllerManagerArgs: extra["controller-manager"],
		SchedulerArgs: extra["scheduler"], EtcdArgs: extra["etcd"],
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// KubeadmFlags are --extra-config kubeadm.key=value settings, passed to `kubeadm init`.
func KubeadmFlags(settings []string) ([]string, error) {
	extra, err := ParseExtraConfig(settings)
	if err != nil {
		return nil, err
	}
	var flags []string
	for _, a := range extra["kubeadm"] {
		flags = append(flags, "--"+a.Name+"="+a.Value)
	}
	return flags, nil
}
