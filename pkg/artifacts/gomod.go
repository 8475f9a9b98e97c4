package artifacts

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
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

// wrapperGoMod writes the go.mod of a module that builds main packages of mod@version.
//
// Big projects (Kubernetes, etcd) replace their own sub-modules with local paths, which makes
// `go install mod@version` refuse them. A wrapper that requires the module and replaces each of those
// sub-modules with its published version builds the same source. Sub-modules required at a placeholder
// version (Kubernetes' staging modules are v0.0.0) take their version from placeholder(path).
func wrapperGoMod(mainPath, mainVersion string, goMod []byte, placeholder func(string) string) (string, error) {
	// Parse, not ParseLax: the lax parser drops replace directives, which are what this reads.
	f, err := modfile.Parse(mainPath+"@"+mainVersion+"/go.mod", goMod, nil)
	if err != nil {
		return "", err
	}
	goVer := "1.22"
	if f.Go != nil {
		goVer = f.Go.Version
	}
	required := map[string]string{}
	for _, r := range f.Require {
		required[r.Mod.Path] = r.Mod.Version
	}
	var replaced, kept []string
	for _, r := range f.Replace {
		switch {
		case r.New.Version == "" && isRelativeDir(r.New.Path):
			replaced = append(replaced, r.Old.Path)
		case r.New.Version != "":
			// A dependency's own replaces are ignored when it is built as a dependency; keep them
			// so the wrapper builds what upstream builds.
			kept = append(kept, replaceText(r.Old, r.New))
		}
		// Any other replacement (an absolute directory) can't be reproduced and is left out.
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

// isRelativeDir says whether a replacement path names a directory relative to the module (./x, ../x).
func isRelativeDir(path string) bool {
	return strings.HasPrefix(path, "./") || strings.HasPrefix(path, "../")
}

// replaceText is the body of a replace line: "old [version] => new version".
func replaceText(from, to module.Version) string {
	lhs := modfile.AutoQuote(from.Path)
	if from.Version != "" {
		lhs += " " + from.Version
	}
	return lhs + " => " + modfile.AutoQuote(to.Path) + " " + to.Version
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
