package framework

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
)

// Main starts a control plane, points *cp at it, runs the package's tests and
// stops it again. When a test failed it prints the tail of every component's
// log. SIGINT or SIGTERM (Ctrl-C) stops the control plane, a node's Pods,
// containers, cgroups and bridge included, before the process exits. What
// Build and BuildImages wrote goes too. It returns the exit code for os.Exit.
func Main(m *testing.M, opts Options, cp **ControlPlane) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running atomic.Pointer[ControlPlane]
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		s, ok := <-signals
		if !ok {
			return
		}
		cancel() // a start in progress gives up and stops what it started
		c := running.Load()
		if c == nil {
			return
		}
		fmt.Fprintf(os.Stderr, "%v: stopping the test control plane\n", s)
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the test control plane: %v\n", err)
		}
		_ = RemoveBuilds()
		os.Exit(1)
	}()

	// What the package built (its binaries, its images) goes when it is done.
	defer func() {
		if err := RemoveBuilds(); err != nil {
			fmt.Fprintf(os.Stderr, "removing the test's builds: %v\n", err)
		}
	}()
	started, err := Start(ctx, opts)
	if err != nil {
		// A package whose node this machine cannot run fails, with the
		// reason: a suite that did not run must never read as passed.
		fmt.Fprintf(os.Stderr, "FAIL: starting the test control plane: %v\n", err)
		return 1
	}
	running.Store(started)
	if ctx.Err() != nil { // a signal came as Start returned
		_ = started.Stop()
		return 1
	}
	*cp = started
	code := m.Run()
	if code != 0 {
		started.DumpLogs(os.Stderr)
	}
	if err := started.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the test control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
