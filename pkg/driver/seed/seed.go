// Package seed makes the user data every mkube VM driver hands its guest (iso/README.md): a small
// ISO 9660 image labelled CIDATA, in the shape of a cloud-init NoCloud seed, with the node's
// hostname and the SSH key of its "docker" user.
package seed

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/kdomanski/iso9660"
)

// Label is the volume label the guest looks for.
const Label = "CIDATA"

// Data is what a guest learns at boot.
type Data struct {
	Hostname      string
	AuthorizedKey string // one line, as in authorized_keys
}

// MetaData and UserData are the files' contents.
func (d Data) MetaData() string {
	return fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", d.Hostname, d.Hostname)
}

func (d Data) UserData() string {
	return fmt.Sprintf("#cloud-config\nssh_authorized_keys:\n  - %s\n", strings.TrimSpace(d.AuthorizedKey))
}

// ISO returns the seed image.
func ISO(d Data) ([]byte, error) {
	if d.Hostname == "" || strings.TrimSpace(d.AuthorizedKey) == "" {
		return nil, fmt.Errorf("seed: a hostname and an SSH key are required")
	}
	w, err := iso9660.NewWriter()
	if err != nil {
		return nil, err
	}
	defer w.Cleanup()
	for name, content := range map[string]string{"meta-data": d.MetaData(), "user-data": d.UserData()} {
		if err := w.AddFile(strings.NewReader(content), name); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := w.WriteTo(&buf, Label); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
