package hyperv

// Running PowerShell, and quoting for it.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// psError is PowerShell failing, with what it wrote on stderr.
type psError struct {
	script string
	output string
}

func (e *psError) Error() string {
	return fmt.Sprintf("powershell %q: %s", e.script, strings.TrimSpace(e.output))
}

// ps runs one script with Windows PowerShell and returns its output.
func ps(ctx context.Context, script string) (string, error) {
	bin, err := exec.LookPath("powershell")
	if err != nil {
		return "", fmt.Errorf("PowerShell was not found: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, "-NoProfile", "-NonInteractive", "-Command", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return stdout.String(), &psError{script: script, output: stderr.String()}
		}
		return "", err
	}
	return strings.TrimSpace(stdout.String()), nil
}

// quote makes a PowerShell single-quoted string literal, in which nothing ($, `, ;, line breaks)
// is special but the quote itself. PowerShell takes the typographic single quotes ‘ ’ ‚ ‛ for
// quotes too, so each of them is doubled like ' (as PowerShell's own
// CodeGeneration.EscapeSingleQuotedStringContent does); otherwise a name with ’ would end the
// literal and the rest would run as script. Every value from the user (profile, switch name,
// paths) goes into a script through quote; numbers are formatted by %d.
func quote(s string) string { return "'" + singleQuotes.Replace(s) + "'" }

var singleQuotes = strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201a", "\u201a\u201a", "\u201b", "\u201b\u201b")
