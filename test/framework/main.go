package framework

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// Main starts a control plane, points *cp at it, runs the package's tests and
// stops it again. When a test failed it prints the tail of every component's
// log. It returns the exit code for os.Exit.
func Main(m *testing.M, opts Options, cp **ControlPlane) int {
	started, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the test control plane: %v\n", err)
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
