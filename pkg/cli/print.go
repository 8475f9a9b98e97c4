package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mkube/pkg/cluster"
	"mkube/pkg/node"
	"mkube/pkg/reason"
	"mkube/pkg/release"
)

// Every printer of the CLI lives here: the tables and JSON shapes are minikube's, so scripts that
// read minikube's output read mkube's.

// writeTable writes a table with minikube's "|" borders.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	line := func(cells []string) { fmt.Fprintf(tw, "\t%s\t\n", strings.Join(cells, "\t")) }
	line(header)
	for _, r := range rows {
		line(r)
	}
	return tw.Flush()
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// badFormat refuses an output format a command does not have.
func badFormat(format string, flag string, have ...string) error {
	var uses []string
	for _, h := range have {
		uses = append(uses, flag+" "+h)
	}
	return reason.Errorf(reason.Usage, "use "+strings.Join(uses, " or "), "unknown output format %q", format)
}

// printStatus writes a cluster's status as minikube does: a text block per node; in json one
// object for a one-node cluster, an array of them for more.
func printStatus(w io.Writer, ss []cluster.Status, format string) error {
	switch format {
	case "json":
		if len(ss) == 1 {
			return writeJSON(w, ss[0])
		}
		return writeJSON(w, ss)
	case "", "text":
		for _, s := range ss {
			var err error
			if s.Worker {
				_, err = fmt.Fprintf(w, "%s\ntype: Worker\nhost: %s\nkubelet: %s\n\n", s.Name, s.Host, s.Kubelet)
			} else {
				_, err = fmt.Fprintf(w, "%s\ntype: Control Plane\nhost: %s\nkubelet: %s\napiserver: %s\nkubeconfig: %s\n\n",
					s.Name, s.Host, s.Kubelet, s.APIServer, s.Kubeconfig)
			}
			if err != nil {
				return err
			}
		}
		return nil
	default:
		return badFormat(format, "-o", "text", "json")
	}
}

// printProfiles writes the profile table, or json like minikube's {"valid": [...], "invalid": []}.
func printProfiles(w io.Writer, rows []cluster.ProfileRow, format string) error {
	switch format {
	case "json":
		if rows == nil {
			rows = []cluster.ProfileRow{}
		}
		return writeJSON(w, map[string]any{"valid": rows, "invalid": []any{}})
	case "", "table":
		var cells [][]string
		for _, r := range rows {
			active := ""
			if r.Active {
				active = "*"
			}
			cells = append(cells, []string{r.Name, r.Driver, r.Runtime, r.IP, fmt.Sprint(r.Port), r.Version, r.Status, fmt.Sprint(r.Nodes), active})
		}
		return writeTable(w, []string{"Profile", "Driver", "Runtime", "IP", "Port", "Version", "Status", "Nodes", "Active"}, cells)
	default:
		return badFormat(format, "-o", "table", "json")
	}
}

// printAddons writes the addon table, or json keyed by addon name as minikube's `addons list -o json`.
func printAddons(w io.Writer, rows []cluster.AddonStatus, format string) error {
	switch format {
	case "json":
		byName := map[string]cluster.AddonStatus{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		return writeJSON(w, byName)
	case "", "table":
		var cells [][]string
		for _, r := range rows {
			st := r.Status
			if st == "enabled" {
				st += " ✅"
			}
			cells = append(cells, []string{r.Name, r.Profile, st, r.Maintainer})
		}
		return writeTable(w, []string{"ADDON NAME", "PROFILE", "STATUS", "MAINTAINER"}, cells)
	default:
		return badFormat(format, "-o", "table", "json")
	}
}

// printImages writes images as `mkube image ls` does: short (one reference per line, as minikube),
// table or json.
func printImages(w io.Writer, imgs []node.Image, format string) error {
	switch format {
	case "", "short":
		for _, i := range imgs {
			fmt.Fprintln(w, i.Ref)
		}
		return nil
	case "table":
		var cells [][]string
		for _, i := range imgs {
			repo, tag := i.Ref, ""
			if at := strings.LastIndex(i.Ref, ":"); at > strings.LastIndex(i.Ref, "/") {
				repo, tag = i.Ref[:at], i.Ref[at+1:]
			}
			digest := strings.TrimPrefix(i.Digest, "sha256:")
			cells = append(cells, []string{repo, tag, digest[:min(12, len(digest))], i.Size})
		}
		return writeTable(w, []string{"IMAGE", "TAG", "DIGEST", "SIZE"}, cells)
	case "json":
		if imgs == nil {
			imgs = []node.Image{}
		}
		return writeJSON(w, imgs)
	default:
		return badFormat(format, "--format", "short", "table", "json")
	}
}

// printServices writes `mkube service list`'s table.
func printServices(w io.Writer, rows []cluster.ServiceRow) error {
	var cells [][]string
	for _, r := range rows {
		cells = append(cells, []string{r.Namespace, r.Name, r.Target, r.URL})
	}
	return writeTable(w, []string{"NAMESPACE", "NAME", "TARGET PORT", "URL"}, cells)
}

// versionInfo is `mkube version -o json`: minikube's keys (mkubeVersion for minikubeVersion,
// commit), the default Kubernetes version, and a release build's registry and image references.
type versionInfo struct {
	release.Info
	DefaultKubernetes string `json:"defaultKubernetesVersion"`
}

// printVersion prints `mkube version` as text, --short or json.
func printVersion(w io.Writer, v versionInfo, short bool, format string) error {
	switch {
	case short:
		_, err := fmt.Fprintln(w, v.Version)
		return err
	case format == "json":
		return writeJSON(w, v)
	case format != "":
		return badFormat(format, "--output", "json")
	}
	fmt.Fprintf(w, "mkube version: %s\n", v.Version)
	if v.Commit != "" {
		fmt.Fprintf(w, "commit: %s\n", v.Commit)
	}
	fmt.Fprintf(w, "default Kubernetes version: %s\n", v.DefaultKubernetes)
	if v.Registry != "" {
		fmt.Fprintf(w, "release registry: %s\n", v.Registry)
		for _, r := range release.OwnRepos {
			fmt.Fprintf(w, "  %s: %s\n", r, v.Images[r])
		}
	}
	return nil
}
