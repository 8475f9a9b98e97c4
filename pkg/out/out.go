// Package out prints what mkube is doing the way minikube does: one emoji-led line per step,
// indented sub-steps, warnings, and failures with their reason and advice. Debug logs (-v) go
// to stderr with timestamps.
package out

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"mkube/pkg/reason"
)

// Printer writes user-facing output. Methods are safe for concurrent use.
type Printer struct {
	mu        sync.Mutex
	out, err  io.Writer
	verbosity int
	plain     bool // no emoji: MKUBE_IN_STYLE=false, as minikube's MINIKUBE_IN_STYLE
	start     time.Time
}

// New makes a printer; verbosity is -v.
func New(stdout, stderr io.Writer, verbosity int) *Printer {
	return &Printer{out: stdout, err: stderr, verbosity: verbosity, start: time.Now(),
		plain: os.Getenv("MKUBE_IN_STYLE") == "false"}
}

// Discard prints nothing.
func Discard() *Printer { return New(io.Discard, io.Discard, 0) }

// ToStderr is a copy of the printer whose steps go to stderr too, for commands whose stdout is
// for scripts (`mkube dashboard --url` prints only the URL there).
func (p *Printer) ToStderr() *Printer {
	return &Printer{out: p.err, err: p.err, verbosity: p.verbosity, plain: p.plain, start: p.start}
}

// Out is where command output (not progress) goes, e.g. `mkube ip`.
func (p *Printer) Out() io.Writer { return p.out }

// Err is stderr, where progress bars go.
func (p *Printer) Err() io.Writer { return p.err }

// Emoji that lead step lines.
const (
	Happy     = "😄"
	Sparkle   = "✨"
	ThumbsUp  = "👍"
	Fire      = "🔥"
	Docker    = "🐳"
	Link      = "🔗"
	Verify    = "🔎"
	Star      = "🌟"
	Surf      = "🏄"
	Stop      = "✋"
	Stopped   = "🛑"
	Skull     = "💀"
	Restart   = "🔄"
	Shrug     = "🤷"
	Warning   = "❗"
	Failure   = "❌"
	Tip       = "💡"
	Download  = "💾"
	Celebrate = "🎉"
	Running   = "🏃"
	Check     = "✅"
	Pulling   = "🚜"
)

// Step prints one step.
func (p *Printer) Step(emoji, format string, args ...any) {
	p.line(p.out, emoji, fmt.Sprintf(format, args...))
}

// Sub prints an indented sub-step.
func (p *Printer) Sub(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "    ▪ %s\n", fmt.Sprintf(format, args...))
}

// Warn prints a warning to stderr.
func (p *Printer) Warn(format string, args ...any) {
	p.line(p.err, Warning, " "+fmt.Sprintf(format, args...))
}

// V prints a debug line to stderr when -v is at least level.
func (p *Printer) V(level int, format string, args ...any) {
	if p.verbosity < level {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.err, "I %s %6.2fs] %s\n", time.Now().Format("15:04:05.000"), time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// Verbosity is the -v level.
func (p *Printer) Verbosity() int { return p.verbosity }

// Fail prints a failure on one line: its reason ID, message and advice.
func (p *Printer) Fail(err error) {
	msg := strings.TrimSpace(err.Error())
	id := reason.Internal.ID
	advice := ""
	if e, ok := reason.As(err); ok {
		id, advice = e.Kind.ID, e.Advice
	}
	// One line: the first line of the message carries what went wrong; details go to -v.
	first, rest, _ := strings.Cut(msg, "\n")
	line := fmt.Sprintf("Exiting due to %s: %s", id, first)
	if advice != "" {
		line += " — " + advice
	}
	p.line(p.err, Failure, " "+line)
	if rest != "" {
		p.V(1, "details: %s", rest)
	}
}

func (p *Printer) line(w io.Writer, emoji, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plain {
		emoji = "*"
	}
	fmt.Fprintf(w, "%s  %s\n", emoji, strings.TrimLeft(text, " "))
}
