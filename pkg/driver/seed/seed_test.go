package seed

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"
)

func TestISOHoldsHostnameAndKey(t *testing.T) {
	raw, err := ISO(Data{Hostname: "mkube", AuthorizedKey: "ssh-ed25519 AAAAC3Nza mkube\n"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := iso9660.OpenImage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	label, err := img.Label()
	if err != nil || label != Label {
		t.Errorf("label %q %v", label, err)
	}
	root, err := img.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	children, err := root.GetChildren()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range children {
		b, _ := io.ReadAll(c.Reader())
		got[c.Name()] = string(b)
	}
	// Without Rock Ridge the names are stored as ISO 9660 allows; the guest reads either spelling.
	meta, user := got["meta-data"]+got["meta_data"], got["user-data"]+got["user_data"]
	if !strings.Contains(meta, "local-hostname: mkube\n") {
		t.Errorf("meta-data: %q (files %v)", meta, got)
	}
	if !strings.Contains(user, "ssh_authorized_keys:\n  - ssh-ed25519 AAAAC3Nza mkube\n") {
		t.Errorf("user-data: %q", user)
	}
	if _, err := ISO(Data{Hostname: "x"}); err == nil {
		t.Error("a seed without a key was made")
	}
}
