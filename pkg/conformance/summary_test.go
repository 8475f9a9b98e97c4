package conformance

import (
	"path/filepath"
	"testing"

	"mkube/internal/golden"
)

// The summary counts the specs that ran, names the failures and the specs that skipped
// themselves with their reason, leaves out the specs --focus left out, and ends with the counts.
func TestSummarize(t *testing.T) {
	s, err := Summarize(filepath.Join("testdata", "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "summary.golden", []byte(s.String()))
	if _, err := Summarize(filepath.Join("testdata", "missing.xml")); err == nil {
		t.Error("a missing report gave a summary")
	}
}

func TestHostsTOML(t *testing.T) {
	want := "# mkube conformance: registry.k8s.io from the mirror built from source\nserver = \"https://registry.k8s.io\"\n\n[host.\"http://192.168.49.1:40000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
	if got := hostsTOML("192.168.49.1:40000"); got != want {
		t.Errorf("hosts.toml:\n%s\nwant:\n%s", got, want)
	}
}
