package kubeconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	api "k8s.io/client-go/tools/clientcmd/api"
)

// ExtensionName is the key of mkube's mark among the extensions of every cluster, user and context
// it writes, beside whatever other tools keep there (minikube's "cluster_info", for one).
const ExtensionName = "mkube"

// provider is what a mark's Provider says; an extension called "mkube" that says anything else was
// not written by us.
const provider = "mkube"

// Mark records which mkube home and profile wrote a kubeconfig entry, so that mkube only ever
// replaces or removes its own entries, never a user's "prod" that happens to share a profile's
// name. It is stored as the entry's "mkube" extension:
//
//	extensions:
//	- extension:
//	    home: 5b0c...
//	    profile: dev
//	    provider: mkube
//	  name: mkube
//
// client-go serialises a runtime.Object extension with encoding/json, and hands it back on load as
// a *runtime.Unknown holding that JSON; markOf reads both.
type Mark struct {
	runtime.TypeMeta `json:",inline"` // empty: only here to make Mark a runtime.Object
	Provider         string           `json:"provider"`
	Home             string           `json:"home"`
	Profile          string           `json:"profile"`
}

// DeepCopyObject makes Mark a runtime.Object; client-go deep-copies configs (kubectl does).
func (m *Mark) DeepCopyObject() runtime.Object {
	c := *m
	return &c
}

func newMark(home, profile string) *Mark {
	return &Mark{Provider: provider, Home: home, Profile: profile}
}

// markOf returns the mark among exts, or nil when there is none or it is not mkube's.
func markOf(exts map[string]runtime.Object) *Mark {
	var m Mark
	switch v := exts[ExtensionName].(type) {
	case *Mark:
		m = *v
	case *runtime.Unknown: // as loaded from a file
		if err := json.Unmarshal(v.Raw, &m); err != nil {
			return nil
		}
	default:
		return nil
	}
	if m.Provider != provider {
		return nil
	}
	return &m
}

// whose says why an entry with these extensions is not (home, profile)'s to change, as the phrase
// ErrNotOurs' message uses, or "" when it is.
func whose(exts map[string]runtime.Object, home, profile string) string {
	m := markOf(exts)
	switch {
	case m == nil:
		return "that mkube did not create"
	case m.Home != home:
		return "that belongs to another mkube home"
	case m.Profile != profile: // only if someone renamed or copied an entry by hand
		return "that another mkube profile created"
	}
	return ""
}

// ErrNotOurs is wrapped by the error Update returns when the kubeconfig already has an entry of the
// profile's name that mkube (this home, this profile) did not write.
var ErrNotOurs = errors.New("kubeconfig entry not created by this mkube profile")

// notOursError names the file and entry mkube refused to overwrite; its message is one line, for
// the user.
type notOursError struct {
	file, kind, name, why string
}

func (e *notOursError) Error() string {
	return fmt.Sprintf("kubeconfig %s already has a %s %q %s: mkube will not overwrite it; pick another profile name with -p",
		e.file, e.kind, e.name, e.why)
}

func (e *notOursError) Unwrap() error { return ErrNotOurs }

// CheckOwned returns the error Update would return for an entry of this name, without writing:
// `mkube start` asks it before it creates anything, so a refused start leaves nothing behind.
// A file that cannot be read now is left for Update to report.
func CheckOwned(paths []string, name, homeID, clientCert string) error {
	for _, path := range paths {
		s, err := read(path)
		if err != nil {
			continue
		}
		legacy := legacyOurs(s.cfg, name, clientCert)
		for _, p := range parts(s.cfg, name) {
			if why := whose(p.exts, homeID, name); why != "" && !(legacy && markOf(p.exts) == nil) {
				return &notOursError{file: path, kind: p.kind, name: name, why: why}
			}
		}
	}
	return nil
}

// legacyOurs says whether the unmarked entry called name was written by an mkube from before marks
// existed, for this very profile: its user authenticates with the client certificate this home
// keeps for the profile (clientCert, a path inside $MKUBE_HOME that nothing else refers to). Such an
// entry is adopted — and marked at the next write — so upgrading mkube does not orphan it.
func legacyOurs(cfg *api.Config, name, clientCert string) bool {
	u, ok := cfg.AuthInfos[name]
	return ok && clientCert != "" && markOf(u.Extensions) == nil && filepath.Clean(u.ClientCertificate) == filepath.Clean(clientCert)
}
