package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// layout says where a setup's processes run: the load generator (this
// process, the scraper) and the node's processes (the upstream and, when
// there is one, the proxy in front of it).
type layout struct {
	name string
	// scraper is the CPU set this process moves to for a round, and all
	// the one it returns to; both nil when the load keeps every core.
	scraper, all *unix.CPUSet
	// startOnNode starts the upstream and the proxy.
	startOnNode func(*exec.Cmd) error
}

// shared is the layout in which the load generator, the upstream and the
// proxy share every core, so each scrape crosses processes that preempt
// one another on the same CPUs.
func shared() layout {
	return layout{name: "shared", startOnNode: (*exec.Cmd).Start}
}

// split is the layout of a GPU node scraped from elsewhere: the first half
// of the CPUs this process may use runs the load generator, the rest the
// upstream and the proxy. It fails with fewer than two CPUs.
func split() (layout, error) {
	var all, scraper, node unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return layout{}, fmt.Errorf("reading this process's CPU affinity: %w", err)
	}
	var cpus []int
	for i := 0; i < len(all)*64; i++ {
		if all.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		return layout{}, fmt.Errorf("%d CPU available, the split layout needs 2", len(cpus))
	}
	for i, cpu := range cpus {
		if i < len(cpus)/2 {
			scraper.Set(cpu)
		} else {
			node.Set(cpu)
		}
	}
	return layout{
		name:        "split",
		scraper:     &scraper,
		all:         &all,
		startOnNode: func(cmd *exec.Cmd) error { return startOn(&node, &all, cmd) },
	}, nil
}

// enter moves the load generator onto the layout's scraper CPUs for a round.
func (l layout) enter() error {
	if l.scraper == nil {
		return nil
	}
	return confine(l.scraper)
}

// leave gives the load generator back every core after a round.
func (l layout) leave() error {
	if l.all == nil {
		return nil
	}
	return confine(l.all)
}

// startOn starts cmd confined to set, then restores this thread's CPUs to
// all. A child inherits the affinity of the thread that forks it, so the
// fork runs on a locked thread that holds set for the moment; the child's
// Go runtime then sizes GOMAXPROCS to it, as in a container given those
// cores.
func startOn(set, all *unix.CPUSet, cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.SchedSetaffinity(0, set); err != nil {
		return fmt.Errorf("confining a child's CPUs: %w", err)
	}
	startErr := cmd.Start()
	if err := unix.SchedSetaffinity(0, all); err != nil {
		return fmt.Errorf("restoring this thread's CPUs: %w", err)
	}
	return startErr
}

// confine moves every thread of this process onto set (threads started
// later inherit it from theirs) and sizes GOMAXPROCS to it.
func confine(set *unix.CPUSet) error {
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
