package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestPause(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signals []os.Signal
		returns bool
	}{
		{"SIGTERM stops it", []os.Signal{syscall.SIGTERM}, true},
		{"SIGINT stops it", []os.Signal{syscall.SIGINT}, true},
		{"SIGCHLD does not", []os.Signal{syscall.SIGCHLD, syscall.SIGCHLD}, false},
		{"SIGTERM after SIGCHLD", []os.Signal{syscall.SIGCHLD, syscall.SIGTERM}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := make(chan os.Signal, len(tc.signals))
			for _, s := range tc.signals {
				sig <- s
			}
			defer close(sig) // ends a pause still waiting
			done := make(chan struct{})
			go func() { pause(sig); close(done) }()
			select {
			case <-done:
				if !tc.returns {
					t.Error("returned")
				}
			case <-time.After(300 * time.Millisecond):
				if tc.returns {
					t.Error("still paused")
				}
			}
		})
	}
}

// On SIGCHLD it reaps the children that exited: none is left a zombie.
func TestPauseReaps(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	time.Sleep(200 * time.Millisecond) // /bin/true has exited: a zombie until reaped
	sig := make(chan os.Signal, 2)
	sig <- syscall.SIGCHLD
	sig <- syscall.SIGTERM
	pause(sig)
	if _, err := syscall.Wait4(pid, nil, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
		t.Errorf("wait4(%d) after pause = %v, want ECHILD: the child was not reaped", pid, err)
	}
}
