// Command loadgen is the benchmark's load: one kind of work (open+close, fork+exec of
// /bin/true, TCP connect or UDP sendto over loopback in a tight loop; or a flood: an rg-like
// walk that opens every file of a tree once, a runner-like fan-out of short processes), timed,
// printed as one JSON line.
// The driver (go run ./bench) runs it as built (untracked) and as a copy named like an agent
// (tracked), so the same binary measures both sides of Vigil's in-kernel filter.
//
// Usage: loadgen -work open|forkexec|connect|sendto|walk|fanout -n N [-warmup N]
//
// walk: -n is the number of files; the tree (N files, -per-dir to a directory) is made
// untimed before the walk, or made once by `loadgen -make-tree DIR -n N -warmup W` and walked
// with -tree DIR (the driver does that with the untracked binary, so a tracked run's JSONL
// holds the walk and not the tree's creation). fanout: -n processes of /bin/true, -parallel at
// a time.
//
// Throughput mode (the driver's loss measurement): loadgen -work open -duration D -threads T
// [-rate R] runs the open+close loop on T OS threads for D, paced to R operations per second
// in all when R > 0, and prints {work, threads, rate, seconds, n, ops_per_sec, target}: n is
// the ground truth, the number of opens of target made.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// result is the line loadgen prints. EventsPerOp says which kernel events Vigil records for
// one operation of the loop when this process is tracked (the timed loop's events by action
// over n: a fraction where the work has events that are not per operation, the walk's
// directory opens); EventsExpected is their sum over the timed loop. EventsGenerated counts,
// by action, every event the loops made, warm-up included: what a tracked run should write.
// The process adds a few events of its own (its exec and exit, the Go runtime's and the
// set-up's opens): bench/README.md lists them.
type result struct {
	Work    string  `json:"work"`
	N       int     `json:"n"`
	Warmup  int     `json:"warmup"`
	NsPerOp float64 `json:"ns_per_op"`
	// CPUNsPerOp is this process's own user+system CPU time in the loop per operation
	// (getrusage, children excluded). Wall time above it is time spent waiting for a CPU:
	// it separates what probes cost the caller in the kernel from contention with a sensor's
	// user space on a small machine.
	CPUNsPerOp      float64            `json:"cpu_ns_per_op"`
	EventsExpected  int                `json:"events_expected"`
	EventsPerOp     map[string]float64 `json:"events_per_op"`
	EventsGenerated map[string]int     `json:"events_generated"`
	// Parallel is the fan-out's processes at a time (fanout only).
	Parallel int `json:"parallel,omitempty"`
}

func main() {
	work := flag.String("work", "open", "work to loop: open, forkexec, connect or sendto")
	n := flag.Int("n", 100000, "timed operations")
	warmup := flag.Int("warmup", 1000, "untimed operations before the timed loop")
	duration := flag.Duration("duration", 0, "throughput mode: run for this long instead of -n operations")
	threads := flag.Int("threads", 1, "throughput mode: OS threads running the loop")
	rate := flag.Float64("rate", 0, "throughput mode: operations per second in all (0: as fast as possible)")
	var s settings
	flag.StringVar(&s.tree, "tree", "", "walk: walk the tree made by -make-tree in this directory instead of making one")
	flag.IntVar(&s.perDir, "per-dir", 100, "walk: files per directory of the tree")
	flag.IntVar(&s.parallel, "parallel", 8, "fanout: processes running at a time")
	makeTree := flag.String("make-tree", "", "make the walk's tree (-n files timed, -warmup files for the warm-up) in this directory and exit")
	flag.Parse()
	if *makeTree != "" {
		if err := buildTrees(*makeTree, *n, *warmup, s.perDir); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *duration > 0 {
		if err := stream(*work, s, *duration, *threads, *rate); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*work, s, *n, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// settings are the works' own flags.
type settings struct {
	tree     string // walk: a tree made by -make-tree ("" = make one, untimed)
	perDir   int    // walk: files per directory
	parallel int    // fanout: processes at a time
}

func run(work string, s settings, n, warmup int) error {
	if n <= 0 || warmup < 0 {
		return fmt.Errorf("need -n > 0 and -warmup >= 0, got %d and %d", n, warmup)
	}
	w, err := newWorker(work, s, n, warmup)
	if err != nil {
		return fmt.Errorf("set up %s: %w", work, err)
	}
	defer w.close()
	if err := w.warmUp(warmup); err != nil {
		return fmt.Errorf("%s warm-up: %w", work, err)
	}
	warmEvents := w.events(warmup)
	cpu0, err := cpuTime()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := w.loop(n); err != nil {
		return fmt.Errorf("%s loop: %w", work, err)
	}
	elapsed := time.Since(start)
	cpu1, err := cpuTime()
	if err != nil {
		return err
	}

	res := result{Work: work, N: n, Warmup: warmup, NsPerOp: float64(elapsed.Nanoseconds()) / float64(n),
		CPUNsPerOp: float64((cpu1 - cpu0).Nanoseconds()) / float64(n), EventsPerOp: map[string]float64{},
		EventsGenerated: map[string]int{}}
	if work == "fanout" {
		res.Parallel = s.parallel
	}
	all := w.events(warmup + n)
	for a, k := range all {
		timed := k - warmEvents[a]
		res.EventsExpected += timed
		res.EventsPerOp[a] = float64(timed) / float64(n)
		res.EventsGenerated[a] = k
	}
	line, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Println(string(line))
	return err
}

// streamResult is the throughput mode's line.
type streamResult struct {
	Work      string  `json:"work"`
	Threads   int     `json:"threads"`
	Rate      float64 `json:"rate"` // requested, 0 = unpaced
	Seconds   float64 `json:"seconds"`
	N         int64   `json:"n"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Target    string  `json:"target"`
	// TargetSetupOpens are the opens of target made before the loop (its creation), which a
	// tracked run's JSONL also holds.
	TargetSetupOpens int `json:"target_setup_opens"`
}

// stream runs the loop on threads OS threads until d has passed, each paced to rate/threads
// operations per second (checked every millisecond's worth of operations) when rate > 0.
func stream(work string, s settings, d time.Duration, threads int, rate float64) error {
	if threads < 1 || rate < 0 {
		return fmt.Errorf("need -threads >= 1 and -rate >= 0, got %d and %g", threads, rate)
	}
	if work == "walk" {
		return fmt.Errorf("-duration: the walk opens each file of its tree once, it cannot loop for a time")
	}
	w, err := newWorker(work, s, 0, 0)
	if err != nil {
		return fmt.Errorf("set up %s: %w", work, err)
	}
	defer w.close()
	per := rate / float64(threads)
	chunk := 256
	if per > 0 {
		chunk = max(1, int(per/1000))
	}
	var total atomic.Int64
	errs := make(chan error, threads)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := 0; i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			var done int64
			for {
				now := time.Now()
				if !now.Before(deadline) {
					break
				}
				if per > 0 {
					due := int64(per * now.Sub(start).Seconds())
					if done >= due {
						time.Sleep(time.Duration(float64(done-due+1) / per * float64(time.Second)))
						continue
					}
				}
				if err := w.loop(chunk); err != nil {
					errs <- err
					return
				}
				done += int64(chunk)
			}
			total.Add(done)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return fmt.Errorf("%s loop: %w", work, err)
	default:
	}
	res := streamResult{Work: work, Threads: threads, Rate: rate, Seconds: elapsed.Seconds(), N: total.Load(),
		OpsPerSec: float64(total.Load()) / elapsed.Seconds(), Target: w.target, TargetSetupOpens: 1}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(line))
	return err
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
