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
	// stop it at once.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	pause(sig)
}

// pause returns on the first signal other than SIGCHLD. On SIGCHLD it reaps
// every exited child: in a Pod sharing its process namespace, orphans are
// reparented to it, as to Kubernetes' own pause.
func pause(sig <-chan os.Signal) {
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
