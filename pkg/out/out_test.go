package out

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"mkube/pkg/reason"
)

func TestFailIsOneLine(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{reason.Errorf(reason.InsufficientCores, "use --cpus=2", "requested cpu count %d is too low", 1), "Exiting due to RSRC_INSUFFICIENT_CORES: requested cpu count 1 is too low — use --cpus=2"},
		{errors.New("boom\nstack details"), "Exiting due to MK_INTERNAL: boom"},
	}
	for _, tt := range tests {
		var o, e bytes.Buffer
		New(&o, &e, 0).Fail(tt.err)
		lines := strings.Split(strings.TrimSpace(e.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
			t.Errorf("Fail(%v) = %q", tt.err, e.String())
		}
	}
	if reason.ExitCode(reason.New(reason.GuestNotFound, errors.New("x"), "")) != 85 || reason.ExitCode(errors.New("x")) != 1 || reason.ExitCode(nil) != 0 {
		t.Error("exit codes")
	}
}
