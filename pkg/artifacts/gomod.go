package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// moduleInfo is what `go mod download -json` says about a module version.
type moduleInfo struct {
	Path, Version, Dir, GoMod, Error string
}

// downloadModule fetches a module version through the Go module proxy and returns where it lives.
func (b *builder) downloadModule(ctx context.Context, path, version string) (moduleInfo, error) {
	out, err := b.output(ctx, b.opts.Work, nil, "go", "mod", "download", "-json", path+"@"+version)
	var mi moduleInfo
	if jerr := json.Unmarshal(out, &mi); jerr != nil {
		if err != nil {
			return mi, err
		}
		return mi, jerr
	}
	if mi.Error != "" {
		return mi, fmt.Errorf("%s", mi.Error)
	}
	return mi, err
}

var (
	goDirective  = regexp.MustCompile(`(?m)^go\s+(\S+)`)
	requireLine  = regexp.MustCompile(`^\s*(?:require\s+)?(\S+)\s+(v\S+)`)
	localReplace = regexp.MustCompile(`^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\.\.?/\S*)\s*$`)
	otherReplace = regexp.MustCompile(`^\s*(?:replace\s+)?(\S+(?:\s+v\S+)?\s+=>\s+\S+\s+v\S+)\s*$`)
)

// wrapperGoMod writes the go.mod of a module that builds main packages of mod@version.
//
// Big projects (Kubernetes, etcd) replace their own sub-modules with local paths, which makes
// `go install mod@version` refuse them. A wrapper that requires the module and replaces each of those
// sub-modules with its published version builds the same source. Sub-modules required at a placeholder
// version (Kubernetes' staging modules are v0.0.0) take their version from placeholder(path).
func wrapperGoMod(mainPath, mainVersion string, goMod []byte, placeholder func(string) string) (string, error) {
	goVer := "1.22"
	if m := goDirective.FindSubmatch(goMod); m != nil {
		goVer = string(m[1])
	}
	required := map[string]string{}
	var replaced, kept []string
	for _, line := range strings.Split(string(goMod), "\n") {
		line = strings.TrimSpace(strings.SplitN(line, "//", 2)[0])
		if m := localReplace.FindStringSubmatch(line); m != nil {
			replaced = append(replaced, m[1])
			continue
		}
		if m := otherReplace.FindStringSubmatch(line); m != nil {
			// A dependency's own replaces are ignored when it is built as a dependency; keep them
			// so the wrapper builds what upstream builds.
			kept = append(kept, m[1])
			continue
		}
		if m := requireLine.FindStringSubmatch(line); m != nil && !strings.Contains(line, "=>") {
			required[m[1]] = m[2]
		}
	}
	sort.Strings(replaced)
	var sb strings.Builder
	fmt.Fprintf(&sb, "module mkube.local/build\n\ngo %s\n\nrequire %s %s\n", goVer, mainPath, mainVersion)
	if len(replaced)+len(kept) > 0 {
		sb.WriteString("\nreplace (\n")
		for _, r := range kept {
			fmt.Fprintf(&sb, "\t%s\n", r)
		}
		for _, p := range replaced {
			v, ok := required[p]
			if !ok {
				continue // replaced but never required (etcd's FORBIDDEN_DEPENDENCY guard): nothing to pin
			}
			if strings.HasPrefix(v, "v0.0.0") {
				v = placeholder(p)
			}
			if v == "" {
				return "", fmt.Errorf("%s@%s replaces %s locally and no published version is known for it", mainPath, mainVersion, p)
			}
			fmt.Fprintf(&sb, "\t%s => %s %s\n", p, p, v)
		}
		sb.WriteString(")\n")
	}
	return sb.String(), nil
}

// prepareWrapper downloads mod@version and writes a wrapper module for it in dir.
func (b *builder) prepareWrapper(ctx context.Context, dir, path, version string, placeholder func(string) string) (moduleInfo, error) {
	mi, err := b.downloadModule(ctx, path, version)
	if err != nil {
		return mi, err
	}
	raw, err := os.ReadFile(mi.GoMod)
	if err != nil {
		return mi, err
	}
	gomod, err := wrapperGoMod(path, version, raw, placeholder)
	if err != nil {
		return mi, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return mi, err
	}
	if old, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && string(old) == gomod {
		return mi, nil // keep go.sum: it saves re-verifying every module
	}
	os.Remove(filepath.Join(dir, "go.sum"))
	return mi, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
}
