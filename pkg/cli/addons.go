package cli

import (
	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/reason"
)

func newAddons(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "addons", Short: "Lists, enables and disables addons (dashboard, metrics-server, ingress, registry, …)"}
	var format string
	list := a.command("list", "Lists every addon and whether it is enabled in the profile", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		rows, err := m.AddonsList(a.profile)
		if err != nil {
			return err
		}
		return printAddons(cmd.OutOrStdout(), rows, format)
	})
	list.Flags().StringVarP(&format, "output", "o", "table", "output format: table or json")
	toggle := func(use, short string, enable bool) *cobra.Command {
		return a.command(use+" ADDON_NAME", short, nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return reason.Errorf(reason.Usage, "e.g. mkube addons "+use+" dashboard; see `mkube addons list`", "usage: mkube addons %s ADDON_NAME", use)
			}
			if enable {
				return m.AddonEnable(cmd.Context(), a.profile, args[0])
			}
			return m.AddonDisable(cmd.Context(), a.profile, args[0])
		})
	}
	cmd.AddCommand(list,
		toggle("enable", "Enables an addon (on a stopped cluster: at its next start)", true),
		toggle("disable", "Disables an addon, deleting what enabling it created", false))
	return cmd
}
