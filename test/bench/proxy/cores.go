package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// cores splits this machine's CPUs between the load (this process, the
// load generator, with the plain upstream's process) and a proxy, for the
// layout in which the proxy has cores of its own, as on a node where the
// scraper runs elsewhere. Without the split, all three share every core and each
// request crosses processes that preempt one another on the same CPUs.
type cores struct {
	all, load, proxy unix.CPUSet
}

// splitCores gives the first half of the CPUs this process may use to the
// load and the rest to the proxy. It fails with fewer than two.
func splitCores() (*cores, error) {
	c := &cores{}
	if err := unix.SchedGetaffinity(0, &c.all); err != nil {
		return nil, fmt.Errorf("reading this process's CPU affinity: %w", err)
	}
	var cpus []int
	for i := 0; i < len(c.all)*64; i++ {
		if c.all.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		return nil, fmt.Errorf("%d CPU available, the split layout needs 2", len(cpus))
	}
	for i, cpu := range cpus {
		if i < len(cpus)/2 {
			c.load.Set(cpu)
		} else {
			c.proxy.Set(cpu)
		}
	}
	return c, nil
}

// startOnProxyCores starts cmd confined to the proxy's CPUs.
func (c *cores) startOnProxyCores(cmd *exec.Cmd) error { return c.startOn(&c.proxy, cmd) }

// startOnLoadCores starts cmd confined to the load's CPUs.
func (c *cores) startOnLoadCores(cmd *exec.Cmd) error { return c.startOn(&c.load, cmd) }

// startOn starts cmd confined to set. A child inherits the affinity of the
// thread that forks it, so the fork runs on a locked thread that holds set
// for the moment; the child's Go runtime then sizes GOMAXPROCS to it, as in
// a container given those cores.
func (c *cores) startOn(set *unix.CPUSet, cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.SchedSetaffinity(0, set); err != nil {
		return fmt.Errorf("confining a child's CPUs: %w", err)
	}
	startErr := cmd.Start()
	if err := unix.SchedSetaffinity(0, &c.all); err != nil {
		return fmt.Errorf("restoring this thread's CPUs: %w", err)
	}
	return startErr
}

// confineLoad moves every thread of this process onto set (threads started
// later inherit it from theirs) and sizes GOMAXPROCS to it.
func confineLoad(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may exit between the listing and here.
		if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("setting the CPUs of thread %d: %w", tid, err)
		}
	}
	runtime.GOMAXPROCS(set.Count())
	return nil
}
