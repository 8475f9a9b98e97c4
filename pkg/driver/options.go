package driver

import (
	"fmt"
	"slices"
)

// Option is a setting a driver declares. The CLI makes a `mkube start` flag and a `mkube config`
// key of each; the profile stores the values given; New and Health receive them as Settings.
type Option struct {
	Name    string // the flag and config key, e.g. kvm-qemu-uri
	Default string
	Help    string
	// Choices, when set, are the only values accepted.
	Choices []string
	// Validate checks a value beyond Choices; nil accepts any.
	Validate func(string) error
}

// Check validates a value of the option.
func (o Option) Check(v string) error {
	if len(o.Choices) > 0 && !slices.Contains(o.Choices, v) {
		return fmt.Errorf("--%s=%q: use one of %v", o.Name, v, o.Choices)
	}
	if o.Validate != nil {
		if err := o.Validate(v); err != nil {
			return fmt.Errorf("--%s=%q: %w", o.Name, v, err)
		}
	}
	return nil
}

// Settings are one driver's option values: every option it declares, defaults filled in.
type Settings map[string]string

// Settings validates values (by option name; names of other drivers' options are ignored) against
// the entry's options and fills in the defaults.
func (e Entry) Settings(values map[string]string) (Settings, error) {
	s := Settings{}
	for _, o := range e.Options {
		v, ok := values[o.Name]
		if !ok || v == "" {
			s[o.Name] = o.Default
			continue
		}
		if err := o.Check(v); err != nil {
			return nil, err
		}
		s[o.Name] = v
	}
	return s, nil
}

// Options lists every option of the registry's drivers, once each, sorted by name: also those of
// drivers this host cannot run, so a script or a saved setting written for another host is not
// refused as an unknown flag (the driver that is used checks its own).
func (r *Registry) Options() []Option {
	var out []Option
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, o := range r.entries[n].Options {
			if !slices.ContainsFunc(out, func(x Option) bool { return x.Name == o.Name }) {
				out = append(out, o)
			}
		}
	}
	slices.SortFunc(out, func(a, b Option) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Option finds an option of any driver by name.
func (r *Registry) Option(name string) (Option, bool) {
	for _, o := range r.Options() {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}
