package cli

import (
	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/reason"
)

func newImage(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Loads, lists and removes images in the cluster's container runtime"}
	load := a.command("load IMAGE|ARCHIVE...", "Loads images from the local engine (Podman's for a podman profile, else Docker), an archive (docker save / OCI), or a registry into the node", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return reason.Errorf(reason.Usage, "e.g. mkube image load my-app:dev", "no image given")
		}
		return m.ImageLoad(cmd.Context(), a.profile, args)
	})
	var format string
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "Lists the images in the node",
		Args:    noArgs,
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
			imgs, err := m.ImageList(cmd.Context(), a.profile)
			if err != nil {
				return err
			}
			return printImages(cmd.OutOrStdout(), imgs, format)
		}),
	}
	ls.Flags().StringVar(&format, "format", "short", "output format: short, table or json")
	rm := &cobra.Command{
		Use:     "rm IMAGE...",
		Aliases: []string{"remove"},
		Short:   "Removes images from the node",
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return reason.Errorf(reason.Usage, "see `mkube image ls`", "no image given")
			}
			return m.ImageRemove(cmd.Context(), a.profile, args)
		}),
	}
	cmd.AddCommand(load, ls, rm)
	return cmd
}
