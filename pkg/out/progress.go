package out

import (
	"io"
	"os"
	"time"

	"github.com/cheggaaa/pb/v3"
	"golang.org/x/term"
)

// logRefresh is how often a bar redraws when its writer is not a terminal (a CI log, a pipe): each
// redraw there is kept, not overwritten, and pb's five a second would flood the log.
const logRefresh = 10 * time.Second

// Bar starts a progress bar like minikube's download bars ("    > kubeadm: 71 MiB / 71 MiB [---] 100%").
// Finished bars end their line even when w is not a terminal (CI logs), so later output starts
// on a line of its own.
func Bar(w io.Writer, label string, total int64, bytes bool) *pb.ProgressBar {
	tmpl := `    > {{string . "label"}}: {{counters . }} {{bar . "[" "-" ">" " " "]"}} {{percent . }}`
	if bytes {
		tmpl += ` {{speed . "%s/s" "" }}`
	}
	bar := pb.New64(total).Set(pb.Bytes, bytes).Set(pb.ReturnSymbol, "\r").SetWriter(w).
		SetTemplateString(tmpl).Set("label", label)
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		bar.SetRefreshRate(logRefresh)
	}
	return bar.Start()
}
