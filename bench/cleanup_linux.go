package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// cleanups are what must be undone however the driver ends: the audit state, the sensor and
// auditd processes it started, the work directory. They run in reverse order on return from
// run and on SIGINT or SIGTERM (then the driver exits 130).
var cleanups = &cleanupList{fns: map[int]func() error{}}

type cleanupList struct {
	mu    sync.Mutex
	next  int
	order []int
	fns   map[int]func() error
}

// add registers fn and returns its id, for run or remove.
func (c *cleanupList) add(fn func() error) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.fns[c.next] = fn
	c.order = append(c.order, c.next)
	return c.next
}

// remove forgets a cleanup that the normal path has done itself.
func (c *cleanupList) remove(id int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.fns, id)
}

// run runs one cleanup now (once) and forgets it.
func (c *cleanupList) run(id int) error {
	c.mu.Lock()
	fn := c.fns[id]
	delete(c.fns, id)
	c.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn()
}

// runAll runs every registered cleanup, newest first.
func (c *cleanupList) runAll() error {
	c.mu.Lock()
	order := append([]int(nil), c.order...)
	c.order = nil
	c.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		if err := c.run(order[i]); err != nil {
			errs = append(errs, err)
			fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
		}
	}
	return errors.Join(errs...)
}

// handleSignals runs every cleanup and exits on SIGINT or SIGTERM; the returned func stops it.
func (c *cleanupList) handleSignals() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			fmt.Fprintf(os.Stderr, "\nbench: %v: cleaning up (audit state, sensor, work directory)\n", sig)
			c.runAll()
			os.Exit(130)
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
