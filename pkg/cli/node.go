package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/reason"
	"mkube/pkg/start"
)

func newNode(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Adds, removes, stops, starts and lists a cluster's nodes"}
	list := a.command("list", "Lists the cluster's nodes and their IP addresses", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		rows, err := m.NodeList(cmd.Context(), a.profile)
		if err != nil {
			return err
		}
		for _, r := range rows {
			fmt.Fprintf(a.stdout, "%s\t%s\n", r.Name, r.IP)
		}
		return nil
	})
	var controlPlane, worker bool
	var waitTimeout time.Duration
	add := a.command("add", "Adds a worker node (or a control plane of an --ha cluster) to the cluster", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		return start.AddNode(cmd.Context(), m, a.profile, controlPlane, worker, waitTimeout)
	})
	add.Flags().BoolVar(&controlPlane, "control-plane", false, "add a control-plane node (needs an --ha cluster)")
	add.Flags().BoolVar(&worker, "worker", true, "the node runs workloads (--worker=false with --control-plane: a control plane only)")
	add.Flags().DurationVar(&waitTimeout, "wait-timeout", 6*time.Minute, "how long to wait for the node to be Ready")
	del := a.command("delete NAME", "Drains a node, deletes it from the cluster and removes its machine", exactlyOneNode, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		return m.DeleteNode(cmd.Context(), a.profile, args[0])
	})
	stop := a.command("stop NAME", "Stops a node of the cluster", exactlyOneNode, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		return m.StopNode(cmd.Context(), a.profile, args[0])
	})
	var startTimeout time.Duration
	startCmd := a.command("start NAME", "Starts a stopped node of the cluster", exactlyOneNode, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		return start.StartNode(cmd.Context(), m, a.profile, args[0], startTimeout)
	})
	startCmd.Flags().DurationVar(&startTimeout, "wait-timeout", 6*time.Minute, "how long to wait for the node to be Ready")
	cmd.AddCommand(list, add, del, stop, startCmd)
	return cmd
}

// exactlyOneNode: the node commands take one node name, as minikube's do.
func exactlyOneNode(_ *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return reason.Errorf(reason.Usage, "see `mkube node list`", "give one node name")
	}
	return nil
}
