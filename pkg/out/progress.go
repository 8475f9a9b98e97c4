package out

import (
	"io"

	"github.com/cheggaaa/pb/v3"
)

// Bar starts a progress bar like minikube's download bars ("    > kubeadm: 71 MiB / 71 MiB [---] 100%").
// Finished bars end their line even when w is not a terminal (CI logs), so later output starts
// on a line of its own.
func Bar(w io.Writer, label string, total int64, bytes bool) *pb.ProgressBar {
	tmpl := `    > {{string . "label"}}: {{counters . }} {{bar . "[" "-" ">" " " "]"}} {{percent . }}`
	if bytes {
		tmpl += ` {{speed . "%s/s" "" }}`
	}
	return pb.New64(total).Set(pb.Bytes, bytes).Set(pb.ReturnSymbol, "\r").SetWriter(w).
		SetTemplateString(tmpl).Set("label", label).Start()
}
