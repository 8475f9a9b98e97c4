package cli

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

func newService(a *app) *cobra.Command {
	var namespace, format string
	var urlOnly, https bool
	var wait int
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Prints (--url) or opens the URL of a NodePort or LoadBalancer service",
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return reason.Errorf(reason.Usage, "e.g. mkube service echo --url", "service takes one service name")
			}
			urls, err := m.ServiceURLs(cmd.Context(), a.profile, namespace, args[0], format, https, time.Duration(wait)*time.Second)
			if err != nil {
				return err
			}
			if urlOnly {
				for _, u := range urls {
					fmt.Fprintln(a.stdout, u)
				}
				return nil
			}
			for _, u := range urls {
				a.out.Step(out.Celebrate, "Opening service %s/%s in default browser: %s", namespace, args[0], u)
				if err := openBrowser(u); err != nil {
					a.out.Warn("no browser could be opened (%v): use the URL above", err)
				}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&namespace, "namespace", "n", "default", "the service's namespace")
	f.BoolVar(&urlOnly, "url", false, "print the URLs instead of opening them")
	f.BoolVar(&https, "https", false, "use https:// instead of http://")
	f.StringVar(&format, "format", cluster.DefaultServiceFormat, "Go template for each URL: .IP, .Port, .Name")
	f.IntVar(&wait, "wait", 20, "seconds to wait for a running pod behind the service")

	var listNS string
	list := &cobra.Command{
		Use:   "list",
		Short: "Lists services and their URLs",
		Args:  noArgs,
		RunE: a.withManager(func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
			rows, err := m.ServiceList(cmd.Context(), a.profile, listNS)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', tabwriter.Debug)
			fmt.Fprintln(tw, "\tNAMESPACE\tNAME\tTARGET PORT\tURL\t")
			for _, r := range rows {
				fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t\n", r.Namespace, r.Name, r.Target, r.URL)
			}
			return tw.Flush()
		}),
	}
	list.Flags().StringVarP(&listNS, "namespace", "n", "", "only this namespace (default: all)")
	cmd.AddCommand(list)
	return cmd
}

// openBrowser asks the desktop to open u.
func openBrowser(u string) error {
	var c *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		c = exec.Command("open", u)
	case "windows":
		c = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return fmt.Errorf("no display")
		}
		c = exec.Command("xdg-open", u)
	}
	return c.Start()
}
