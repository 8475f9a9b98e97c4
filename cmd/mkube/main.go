// Command mkube runs a local Kubernetes cluster. See pkg/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"mkube/pkg/cli"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first Ctrl-C cancels the command, which stops at a safe point (every step can be
		// resumed by running it again); a second one means "now": exit at once, as 130 (SIGINT).
		<-sigs
		fmt.Fprintln(os.Stderr, "\n✋  Stopping (press Ctrl-C again to quit at once) ...")
		cancel()
		sig := <-sigs
		code := 130 // 128 + SIGINT, as a shell reports it
		if sig == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}
