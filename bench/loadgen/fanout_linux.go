package main

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// setupFanout: a test-runner-like or `npm install`-like burst of short processes. parallel
// lanes run at once; each lane fork+execs /bin/true and waits for it (the forkexec work's
// operation), taking the next number until n processes have run, so a run starts exactly n
// processes, parallel at a time. The lanes are goroutines, so the processes are all children
// of the loadgen (the runner), as a runner's workers' children are of the worker. Tracked, one
// operation is the forkexec work's 5 events (trueEvents).
func (w *worker) setupFanout(parallel int) error {
	if parallel < 1 {
		return fmt.Errorf("need -parallel >= 1, got %d", parallel)
	}
	attr, err := w.trueAttr()
	if err != nil {
		return err
	}
	w.eventsPerOp = trueEvents
	w.loop = func(n int) error {
		lanes := min(parallel, n)
		var next atomic.Int64
		errs := make(chan error, lanes)
		var wg sync.WaitGroup
		for i := 0; i < lanes; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					if err := runTrue(attr); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs // nil when no lane failed
	}
	return nil
}
