package cli

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"mkube/pkg/cluster"
	"mkube/pkg/out"
	"mkube/pkg/reason"
)

func newService(a *app) *cobra.Command {
	var urlOnly, all bool
	o := cluster.ServiceOptions{}
	var wait int
	cmd := a.command("service NAME", "Prints (--url) or opens the URLs of NodePort and LoadBalancer services", nil, func(m *cluster.Manager, cmd *cobra.Command, args []string) error {
		if (len(args) != 1 && !all) || (len(args) > 0 && all) {
			return reason.Errorf(reason.Usage, "e.g. mkube service echo --url, or mkube service --all", "service takes one service name, or --all")
		}
		o.Wait = time.Duration(wait) * time.Second
		o.Tunnel = os.Getenv("MKUBE_SERVICE_TUNNEL") == "true"
		if urlOnly {
			m.Out = m.Out.ToStderr() // stdout is for the URLs only
		}
		targets, tunnel, err := m.Services(cmd.Context(), a.profile, args, o)
		if err != nil {
			return err
		}
		defer tunnel.Close()
		for _, t := range targets {
			if t.Note != "" {
				a.out.Warn("%s", t.Note)
			}
			for _, u := range t.URLs {
				if urlOnly {
					fmt.Fprintln(a.stdout, u)
					continue
				}
				a.out.Step(out.Celebrate, "Opening service %s/%s in default browser: %s", t.Namespace, t.Name, u)
				if err := openBrowser(u); err != nil {
					a.out.Warn("no browser could be opened (%v): use the URL above", err)
				}
			}
		}
		if tunnel == nil {
			return nil
		}
		a.out.ToStderr().Warn("the host does not reach the node directly: the URLs above are tunnels that live until Ctrl-C")
		<-cmd.Context().Done()
		return nil
	})
	f := cmd.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", "default", "the service's namespace")
	f.BoolVar(&urlOnly, "url", false, "print the URLs instead of opening them")
	f.BoolVar(&all, "all", false, "every service of the namespace")
	f.BoolVar(&o.HTTPS, "https", false, "use https:// instead of http://")
	f.StringVar(&o.Format, "format", cluster.DefaultServiceFormat, "Go template for each URL: .IP, .Port, .Name")
	f.IntVar(&wait, "wait", 20, "seconds to wait for a running pod behind the service")

	var listNS string
	list := a.command("list", "Lists services and their URLs", noArgs, func(m *cluster.Manager, cmd *cobra.Command, _ []string) error {
		rows, err := m.ServiceList(cmd.Context(), a.profile, listNS)
		if err != nil {
			return err
		}
		return printServices(a.stdout, rows)
	})
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
