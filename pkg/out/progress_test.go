package out

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Written to a log (not a terminal), a bar redraws every logRefresh, not five times a second: a
// bar that lives a second leaves its final state and not much more.
func TestBarInALogDoesNotFlood(t *testing.T) {
	var buf bytes.Buffer
	bar := Bar(&buf, "kubeadm", 100, true)
	for i := 0; i < 10; i++ {
		bar.Add(10)
		time.Sleep(100 * time.Millisecond)
	}
	bar.Finish()
	got := buf.String()
	if n := strings.Count(got, "\r"); n > 2 {
		t.Errorf("a one-second bar in a log drew itself %d times:\n%q", n, got)
	}
	if !strings.HasSuffix(got, "\n") || !strings.Contains(got, "100 B / 100 B") {
		t.Errorf("the bar's last state: %q, want it complete and its line ended", got)
	}
}
