// Package release says which release of mkube this binary is and where that release's own
// artifacts (node image, ISO, addon images) are published: values `make release` stamps into the
// binary with -ldflags -X (see Stamp). A development build (`make build`) has no release registry:
// it uses the node image, ISO and mirror built locally.
//
// It also names mkube's artifacts inside a registry, so the release tool that pushes them and the
// start that pulls them agree: REGISTRY/node:VERSION, REGISTRY/iso:VERSION, and so on.
package release

import (
	"fmt"
	"sort"
	"strings"
)

// Stamped at link time by the release build and never changed at run time: the defaults are a
// development build's.
var (
	version  = "v0.1.0-dev"
	commit   = ""
	registry = "" // HOST[:PORT]/PATH of the release registry
	// digests of the release's artifacts, "repo=sha256:…,repo=sha256:…"
	digests = ""
)

// Repositories of mkube's own artifacts under a release registry or a mirror.
const (
	NodeRepo        = "node"
	ISORepo         = "iso"
	ProvisionerRepo = "storage-provisioner"
	DashboardRepo   = "dashboard"
	// BinariesRepo holds the Kubernetes binaries of a mirror, tagged VERSION-linux-amd64.
	BinariesRepo = "kubernetes-binaries"
)

// OwnRepos are the artifacts a release publishes.
var OwnRepos = []string{NodeRepo, ProvisionerRepo, DashboardRepo, ISORepo}

// Media types of mkube's OCI artifacts (OCI 1.1 artifacts: the config's media type is the
// artifact type, so registries that predate the artifactType field keep it too).
const (
	ISOArtifactType      = "application/vnd.mkube.iso.v1+json"
	ISOLayerType         = "application/vnd.mkube.iso.layer.v1"
	BinariesArtifactType = "application/vnd.mkube.kubernetes-binaries.v1+json"
	BinaryLayerType      = "application/vnd.mkube.kubernetes-binary.layer.v1"
	// TitleAnnotation names a layer's file (the annotation ORAS and others use).
	TitleAnnotation = "org.opencontainers.image.title"
)

// LocalPrefix is the registry name mkube's own images carry inside a node and the Docker engine,
// wherever they were pulled from.
const LocalPrefix = "mkube.local/"

// Version is this mkube's version; mkube's own images and the ISO carry it as their tag.
func Version() string { return version }

// Commit is the source commit a release was built from ("" in a development build).
func Commit() string { return commit }

// Registry is the release registry stamped into this build, "" in a development build.
func Registry() string { return registry }

// LocalRef is the name an own image has in the node and the engine: mkube.local/REPO:VERSION.
func LocalRef(repo string) string { return LocalPrefix + repo + ":" + version }

// ISOName is the file name of this mkube's ISO.
func ISOName() string { return ISOFileName(version) }

// ISOFileName is the file name of mkube's ISO of a version.
func ISOFileName(version string) string { return "mkube-" + version + "-amd64.iso" }

// BinariesTag is the tag of a Kubernetes version's binaries artifact.
func BinariesTag(kubernetesVersion string) string { return kubernetesVersion + "-linux-amd64" }

// Digest is the digest of an own artifact's manifest this release published, "" if unknown.
func Digest(repo string) string { return parseDigests(digests)[repo] }

// Ref is where an own artifact is pulled from under base (a mirror or the release registry):
// BASE/REPO:VERSION, pinned by digest when this build knows it. A mirror made from this release
// serves the same digests.
func Ref(base, repo string) string {
	r := strings.TrimSuffix(base, "/") + "/" + repo + ":" + version
	if d := Digest(repo); d != "" {
		r += "@" + d
	}
	return r
}

// Info is what `mkube version -o json` shows.
type Info struct {
	Version  string            `json:"mkubeVersion"`
	Commit   string            `json:"commit,omitempty"`
	Registry string            `json:"releaseRegistry,omitempty"`
	Images   map[string]string `json:"releaseImages,omitempty"` // repo → pullable reference
}

// Current describes this build.
func Current() Info {
	i := Info{Version: version, Commit: commit, Registry: registry}
	if registry != "" {
		i.Images = map[string]string{}
		for _, r := range OwnRepos {
			i.Images[r] = Ref(registry, r)
		}
	}
	return i
}

// Stamp is the -ldflags that make a build this release: version, commit, registry and digests
// (repo → sha256:…).
func Stamp(version, commit, registry string, digests map[string]string) string {
	const pkg = "mkube/pkg/release."
	return fmt.Sprintf("-X %sversion=%s -X %scommit=%s -X %sregistry=%s -X %sdigests=%s",
		pkg, version, pkg, commit, pkg, registry, pkg, formatDigests(digests))
}

func formatDigests(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func parseDigests(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
