// Command pause is the sandbox image's process: it holds a Pod's namespaces
// open by blocking until SIGTERM or SIGINT, then exits 0.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// As PID 1 of its namespace the kernel delivers it no signal it has no
	// handler for, so catching SIGTERM and SIGINT is what lets the runtime
	// stop it at once. In a Pod sharing its process namespace, orphans are
	// reparented to it: reap them on SIGCHLD, as Kubernetes' pause does.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
