// Package addons holds the manifests of mkube's addons, embedded in the binary. Each addon is a
// directory of YAML files; they are Go templates whose {{.Image "ref"}} names the image to run ({{.OwnImage "repo"}} one of mkube's own).
package addons

import "embed"

// FS is every addon's manifests: <addon>/<file>.yaml.
//
//go:embed */*.yaml
var FS embed.FS
