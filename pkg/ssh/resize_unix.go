//go:build !windows

package ssh

import (
	"os"
	"os/signal"
	"syscall"
)

// watchResize calls fn whenever the terminal is resized.
func watchResize(fn func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		for range ch {
			fn()
		}
	}()
	return func() { signal.Stop(ch); close(ch) }
}
