package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/out"
)

func newDashboard(a *app) *cobra.Command {
	var urlOnly bool
	var o cluster.DashboardOptions
	cmd := a.command("dashboard", "Serves the cluster's dashboard on 127.0.0.1 and opens it in a browser; runs until Ctrl-C", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		if urlOnly {
			m.Out = m.Out.ToStderr()
		}
		o.Ready = func(u string) {
			if urlOnly {
				fmt.Fprintln(a.stdout, u)
				return
			}
			a.out.Step(out.Celebrate, "Opening %s in your default browser...", u)
			if err := openBrowser(u); err != nil {
				a.out.Warn("no browser could be opened (%v): open the URL above; Ctrl-C stops the proxy", err)
			}
		}
		return m.Dashboard(cmd.Context(), a.profile, o)
	})
	cmd.Flags().BoolVar(&urlOnly, "url", false, "print the URL instead of opening a browser (the proxy still runs until Ctrl-C)")
	cmd.Flags().IntVar(&o.Port, "port", 0, "local port for the proxy (default: a free one)")
	o.Wait = 5 * time.Minute
	return cmd
}
