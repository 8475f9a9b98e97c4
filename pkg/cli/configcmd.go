package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/config"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

func newConfig(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Remembers defaults for `mkube start` flags (driver, cpus, memory, ...)"}
	set := a.command("set PROPERTY VALUE", "Sets a default, e.g. mkube config set driver kvm2", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if len(args) != 2 {
			return reason.Errorf(reason.Usage, "e.g. mkube config set driver kvm2", "config set takes a property and a value")
		}
		if err := validateSetting(cmd.Root(), m, args[0], args[1]); err != nil {
			return err
		}
		if err := m.Home.SetSetting(cmd.Context(), args[0], args[1], driverKeys(m)); err != nil {
			return reason.New(reason.Usage, err, "")
		}
		a.out.Step(out.Tip, "These changes will take effect upon a mkube delete and then a mkube start")
		return nil
	})
	get := a.command("get PROPERTY", "Prints a default", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return reason.Errorf(reason.Usage, "e.g. mkube config get driver", "config get takes one property")
		}
		if err := config.CheckSettingKey(args[0], driverKeys(m)); err != nil {
			return reason.New(reason.Usage, err, "")
		}
		s, err := m.Home.Settings()
		if err != nil {
			return err
		}
		v, ok := s[args[0]]
		if !ok {
			return reason.Errorf(reason.Usage, "set it with mkube config set "+args[0]+" VALUE", "specified key could not be found in config")
		}
		fmt.Fprintln(a.stdout, v)
		return nil
	})
	unset := a.command("unset PROPERTY", "Removes a default", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return reason.Errorf(reason.Usage, "e.g. mkube config unset driver", "config unset takes one property")
		}
		if err := m.Home.SetSetting(cmd.Context(), args[0], "", driverKeys(m)); err != nil {
			return reason.New(reason.Usage, err, "")
		}
		return nil
	})
	view := a.command("view", "Prints every default", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		s, err := m.Home.Settings()
		if err != nil {
			return err
		}
		for _, l := range config.SortedSettings(s) {
			fmt.Fprintln(a.stdout, l)
		}
		return nil
	})
	cmd.AddCommand(set, get, unset, view)
	return cmd
}

// validateSetting checks a value the way `mkube start` would parse it: through the flag itself.
func validateSetting(root *cobra.Command, m *cluster.Manager, key, value string) error {
	if err := config.CheckSettingKey(key, driverKeys(m)); err != nil {
		return reason.New(reason.Usage, err, "")
	}
	if o, ok := m.Drivers.Option(key); ok && value != "" { // "" unsets
		if err := o.Check(value); err != nil {
			return reason.New(reason.Usage, err, "")
		}
	}
	if key == "driver" && !slices.Contains(m.Drivers.Names(), value) {
		return reason.Errorf(reason.DriverUnsupported, "supported drivers here: "+strings.Join(m.Drivers.Names(), ", "),
			"the driver %q is not supported on this system", value)
	}
	if key == "memory" || key == "disk-size" { // string flags: parse them as start would
		if _, err := cluster.ParseMB(value); err != nil {
			return reason.Errorf(reason.Usage, "", "invalid value for %s: %v", key, err)
		}
	}
	start, _, err := root.Find([]string{"start"})
	if err != nil {
		return err
	}
	if f := start.Flags().Lookup(key); f != nil {
		if err := f.Value.Set(value); err != nil { // this process only validates: the value is not used
			return reason.Errorf(reason.Usage, "", "invalid value %q for %s: %v", value, key, err)
		}
	}
	return nil
}

// applySettings gives `mkube start` the saved defaults for the flags the user did not pass, and
// says which it gave.
func applySettings(cmd *cobra.Command, m *cluster.Manager) (map[string]bool, error) {
	s, err := m.Home.Settings()
	if err != nil {
		return nil, err
	}
	applied := map[string]bool{}
	for k, v := range s {
		f := cmd.Flags().Lookup(k)
		if k == "profile" || f == nil || f.Changed { // the profile was settled before any command ran
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return nil, reason.Errorf(reason.Usage, "fix it with mkube config set "+k+" VALUE", "saved setting %s=%q is invalid: %v", k, v, err)
		}
		applied[k] = true
		// Not marked as changed: an existing profile keeps its own settings (as minikube, defaults
		// take effect on the next new cluster).
	}
	return applied, nil
}

// driverKeys are the drivers' option names: `mkube config` keys besides config.SettingKeys.
func driverKeys(m *cluster.Manager) []string {
	var keys []string
	for _, o := range m.Drivers.Options() {
		keys = append(keys, o.Name)
	}
	return keys
}
