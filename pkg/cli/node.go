package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
)

func newNode(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Lists a cluster's nodes"}
	list := a.command("list", "Lists the cluster's nodes and their IP addresses, as minikube does", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		rows, err := m.NodeList(cmd.Context(), a.profile)
		if err != nil {
			return err
		}
		for _, r := range rows {
			fmt.Fprintf(a.stdout, "%s\t%s\n", r.Name, r.IP)
		}
		return nil
	})
	cmd.AddCommand(list)
	return cmd
}
