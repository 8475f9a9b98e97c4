package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/reason"
)

func newCache(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Keeps images in the cache and loads them into every cluster start"}
	add := a.command("add IMAGE...", "Pulls images into the cache, loads them into the running cluster and every future start", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return reason.Errorf(reason.Usage, "e.g. mkube cache add registry.k8s.io/e2e-test-images/agnhost:2.56", "no image given")
		}
		return m.CacheAdd(cmd.Context(), a.profile, args)
	})
	del := a.command("delete IMAGE...", "Removes images from the cache", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return reason.Errorf(reason.Usage, "see `mkube cache list`", "no image given")
		}
		return m.CacheDelete(cmd.Context(), args)
	})
	list := a.command("list", "Lists the images in the cache", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		refs, err := m.CachedImages()
		if err != nil {
			return err
		}
		for _, r := range refs {
			fmt.Fprintln(a.stdout, r)
		}
		return nil
	})
	reload := a.command("reload", "Loads every cached image into the running cluster again", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		return m.CacheReload(cmd.Context(), a.profile)
	})
	cmd.AddCommand(add, del, list, reload)
	return cmd
}
