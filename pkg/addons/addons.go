// Package addons knows mkube's addons: their manifests (embedded from deploy/addons), the images
// they run (cached and preloaded like the core images), and which are on by default.
package addons

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"text/template"

	deploy "mkube/deploy/addons"
	"mkube/pkg/release"
)

// Addon describes one addon.
type Addon struct {
	Name        string
	Default     bool // enabled unless the user says otherwise
	Maintainer  string
	Description string
	Images      []string // canonical references of the images it runs
}

// ProvisionerImage is mkube's own storage provisioner, tagged with this mkube's version (stamped
// into a release), published with the release and built into the offline mirror.
func ProvisionerImage() string { return release.LocalRef(release.ProvisionerRepo) }

// DashboardImage is mkube's own dashboard, tagged like ProvisionerImage.
func DashboardImage() string { return release.LocalRef(release.DashboardRepo) }

// The upstream images addons run keep their upstream names and versions, so an online start pulls
// them from their own registries and the offline mirror builds the same versions from source.
const (
	MetricsServerImage = "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
	RegistryImage      = "docker.io/library/registry:3.0.0"
	TraefikImage       = "docker.io/library/traefik:v3.6.12"
)

// All lists the addons, by name.
var All = []Addon{
	{Name: "default-storageclass", Default: true, Maintainer: "mkube",
		Description: "marks the standard StorageClass as the default"},
	{Name: "storage-provisioner", Default: true, Maintainer: "mkube", Images: []string{ProvisionerImage()},
		Description: "provisions PersistentVolumes as directories on the node"},
	{Name: "dashboard", Maintainer: "mkube", Images: []string{DashboardImage()},
		Description: "web UI: namespaces, workloads, pods with logs and events, services, nodes (mkube dashboard)"},
	{Name: "ingress", Maintainer: "3rd party (Traefik Labs)", Images: []string{TraefikImage},
		Description: "Traefik ingress controller on the node's ports 80 and 443"},
	{Name: "metrics-server", Maintainer: "Kubernetes", Images: []string{MetricsServerImage},
		Description: "resource metrics for kubectl top and autoscaling"},
	{Name: "registry", Maintainer: "3rd party (CNCF distribution)", Images: []string{RegistryImage},
		Description: "in-cluster image registry on the node's port 5000"},
}

// Find returns the addon called name.
func Find(name string) (Addon, error) {
	for _, a := range All {
		if a.Name == name {
			return a, nil
		}
	}
	var names []string
	for _, a := range All {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	return Addon{}, fmt.Errorf("addon %q does not exist (addons: %v)", name, names)
}

// Enabled resolves which addons are on: the defaults, overridden by the profile's choices.
func Enabled(choices map[string]bool) []Addon {
	var out []Addon
	for _, a := range All {
		on, set := choices[a.Name]
		if (set && on) || (!set && a.Default) {
			out = append(out, a)
		}
	}
	return out
}

// Values are the cluster settings addon templates may use.
type Values struct {
	NodeIP string // the node's address, where node ports, hostPorts and the ingress answer
}

// Render returns the addon's manifests as one multi-document YAML.
func Render(a Addon, v Values) ([]byte, error) {
	files, err := fs.Glob(deploy.FS, a.Name+"/*.yaml")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("addon %s has no manifests", a.Name)
	}
	sort.Strings(files)
	var out bytes.Buffer
	for _, f := range files {
		raw, err := fs.ReadFile(deploy.FS, f)
		if err != nil {
			return nil, err
		}
		t, err := template.New(path.Base(f)).Option("missingkey=error").Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if out.Len() > 0 {
			out.WriteString("\n---\n")
		}
		if err := t.Execute(&out, values{v}); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return out.Bytes(), nil
}

// values is what addon templates see: the Values and the Image function.
type values struct{ Values }

// Image names the image to run: images are preloaded under their canonical references whatever
// repository they were pulled from, so the canonical reference is always right.
func (values) Image(ref string) string { return ref }

// OwnImage names one of mkube's own images (release.ProvisionerRepo, …): tagged with this mkube's
// version, which a release stamps in, so the manifests cannot name it literally.
func (values) OwnImage(repo string) string { return release.LocalRef(repo) }
