package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/reason"
)

func newCache(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Keeps images in the cache and loads them into every cluster start"}
	add := &cobra.Command{
		Use:   "add IMAGE...",
		Short: "Pulls images into the cache, loads them into the running cluster and every future start",
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return reason.Errorf(reason.Usage, "e.g. mkube cache add registry.k8s.io/e2e-test-images/agnhost:2.56", "no image given")
			}
			return m.CacheAdd(cmd.Context(), a.profile, args)
		}),
	}
	del := &cobra.Command{
		Use:   "delete IMAGE...",
		Short: "Removes images from the cache",
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return reason.Errorf(reason.Usage, "see `mkube cache list`", "no image given")
			}
			return m.CacheDelete(cmd.Context(), args)
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Lists the images in the cache",
		Args:  noArgs,
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
			refs, err := m.CachedImages()
			if err != nil {
				return err
			}
			for _, r := range refs {
				fmt.Fprintln(a.stdout, r)
			}
			return nil
		}),
	}
	reload := &cobra.Command{
		Use:   "reload",
		Short: "Loads every cached image into the running cluster again",
		Args:  noArgs,
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
			return m.CacheReload(cmd.Context(), a.profile)
		}),
	}
	cmd.AddCommand(add, del, list, reload)
	return cmd
}
