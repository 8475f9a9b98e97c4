package driver

import "testing"

// A failure shows only the first line of its error without -v: that line must carry the
// command's own complaint, not a bare exit status.
func TestExitErrorFirstLineSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name, stderr, want string
	}{
		{"no stderr", "", "ctr import -: exit status 1"},
		{"one line", "ctr: content digest sha256:ab: not found\n", "ctr import -: exit status 1: ctr: content digest sha256:ab: not found"},
		{"last line first", "unpacking a\nunpacking b\nctr: failed\n", "ctr import -: exit status 1: ctr: failed\nunpacking a\nunpacking b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := (&ExitError{Args: []string{"ctr", "import", "-"}, Code: 1, Stderr: tc.stderr}).Error()
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
