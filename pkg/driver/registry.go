package driver

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Health is what a driver's pre-check found on this host.
type Health struct {
	Installed bool
	Running   bool   // the hypervisor's service answers
	Healthy   bool   // usable as is
	Problem   string // what is wrong, when not healthy
	Fix       string // what the user should do about it
	Doc       string // where to read more
}

// Entry is a driver the registry knows.
type Entry struct {
	Name     string
	Priority int // higher wins auto-selection
	// Supported reports whether the driver exists on this OS/arch at all.
	Supported bool
	// ISO says the driver boots mkube's ISO (VM drivers); the cluster caches it and passes its path.
	ISO bool
	// NodeFiles says the driver installs mkube's container runtime from the node image's files onto
	// a machine that already runs Linux (ssh): start passes them as Spec.NodeFiles.
	NodeFiles bool
	// Options are the driver's own settings (flags and config keys).
	Options []Option
	// Health checks the hypervisor with the driver's settings (e.g. which libvirt URI).
	Health func(ctx context.Context, s Settings) Health
	New    func(profile string, opts Options) (Driver, error)
	// MultiNode says the driver runs more than one node per profile (Options.Machine, Spec.Ordinal).
	MultiNode bool
}

// Options carry host-wide settings a driver may need.
type Options struct {
	MachineDir string // $MKUBE_HOME/machines/<profile>
	// Machine names the node this driver manages: "" (or the profile's name) is the primary,
	// <profile>-m02 … the others (drivers with Entry.MultiNode).
	Machine string
	// Owner is what every host object the driver creates is marked with; the driver never reuses,
	// stops or deletes an object that does not carry exactly this mark.
	Owner Owner
	// Settings are the driver's option values, validated, defaults filled in.
	Settings Settings
	// Log tells the user about something the driver decided (e.g. falling back to software
	// emulation); nil prints nothing.
	Log func(format string, args ...any)
}

// NodeFile is where a driver keeps one of a node's files (a disk, a seed, a console log) in the
// profile's machine directory, which the profile's nodes share: the primary's (machine is the
// profile) under its own name, as single-node profiles always had them, the others' prefixed
// with the node's name.
func NodeFile(machineDir, profile, machine, name string) string {
	if machine == "" || machine == profile {
		return filepath.Join(machineDir, name)
	}
	return filepath.Join(machineDir, machine+"-"+name)
}

// Logf calls Log when it is set.
func (o Options) Logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// Registry holds the drivers for this build.
type Registry struct{ entries map[string]Entry }

// NewRegistry builds a registry.
func NewRegistry(entries ...Entry) *Registry {
	r := &Registry{entries: map[string]Entry{}}
	for _, e := range entries {
		r.entries[e.Name] = e
	}
	return r
}

// Lookup finds a driver by name.
func (r *Registry) Lookup(name string) (Entry, bool) {
	e, ok := r.entries[name]
	return e, ok
}

// Names lists supported drivers, best first.
func (r *Registry) Names() []string {
	var es []Entry
	for _, e := range r.entries {
		if e.Supported {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Priority > es[j].Priority })
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

// Choice is the result of auto-selection.
type Choice struct {
	Entry    Entry
	Others   []string          // other healthy drivers, best first
	Rejected map[string]Health // drivers passed over, with why
}

// Choose picks the healthy driver with the highest priority (docker, then kvm2, then the other
// hypervisors, as minikube prefers), and says what else could have been used. values are the
// drivers' option values the user gave.
func (r *Registry) Choose(ctx context.Context, values map[string]string) (Choice, error) {
	c := Choice{Rejected: map[string]Health{}}
	for _, n := range r.Names() {
		e := r.entries[n]
		h := Health{Problem: "invalid settings"}
		if s, err := e.Settings(values); err != nil {
			h.Fix = err.Error()
		} else {
			h = e.Health(ctx, s)
		}
		switch {
		case !h.Healthy:
			c.Rejected[n] = h
		case c.Entry.Name == "":
			c.Entry = e
		default:
			c.Others = append(c.Others, n)
		}
	}
	if c.Entry.Name != "" {
		return c, nil
	}
	var lines []string
	for _, n := range r.Names() {
		h := c.Rejected[n]
		lines = append(lines, fmt.Sprintf("%s: %s (%s)", n, h.Problem, h.Fix))
	}
	return c, fmt.Errorf("no usable driver found: %s", strings.Join(lines, "; "))
}
