package linux

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Merged opens (issue 16): a thread that opens one file again and again is reported as the
// run's first open plus merged lines counting the repeats. The ground truth is the helper's
// own loop count, never Vigil's output: lines + the merged counts must equal it exactly.

const (
	mergeHelperArg = "vigil-merge-helper"
	mergeLoopOpens = 100000
)

// In the helper, the main goroutine keeps the main thread (LockOSThread in an init): a
// goroutine that ends locked to its thread makes the thread exit, unless that thread is the
// main thread, which the runtime keeps. The "threads" mode needs its threads to exit.
func init() {
	if slices.Contains(os.Args, mergeHelperArg) {
		runtime.LockOSThread()
	}
}

// TestMergeHelperProcess opens files in tight loops on locked threads, as the mode says, and
// prints what it did (tid, loop start and end in Unix ns). It runs only as a child of the
// tests below.
func TestMergeHelperProcess(t *testing.T) {
	args := flag.Args() // mergeHelperArg mode n file...
	if len(args) < 4 || args[0] != mergeHelperArg {
		t.Skip("helper process of the TestMerge* tests")
	}
	mode, files := args[1], args[3:]
	n, err := strconv.Atoi(args[2])
	if err != nil {
		helperFail("count", err)
	}
	switch mode {
	case "loop": // n opens of files[0], then 300 ms before exiting
		runtime.LockOSThread()
		openLoop("", files[0], n)
		time.Sleep(300 * time.Millisecond)
	case "alternate": // n opens alternating between files[0] and files[1]
		runtime.LockOSThread()
		fmt.Printf("tid=%d\nstart=%d\n", unix.Gettid(), time.Now().UnixNano())
		for i := range n {
			openClose(files[i%2])
		}
		fmt.Printf("end=%d\n", time.Now().UnixNano())
	case "idle": // n opens of files[0], then the thread idles for 3 s before the process exits
		runtime.LockOSThread()
		openLoop("", files[0], n)
		time.Sleep(3 * time.Second)
		fmt.Printf("exit=%d\n", time.Now().UnixNano())
	case "threads": // two threads open files[0] n times each at once; each thread then exits
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread() // not unlocked: the thread exits with the goroutine
				openLoop(strconv.Itoa(i), files[0], n)
			}()
		}
		wg.Wait()
		time.Sleep(2 * time.Second) // the exits report the runs, not the sweep
		fmt.Printf("exit=%d\n", time.Now().UnixNano())
	case "epoch": // n opens, the ready directory, wait for the go directory, n opens
		// Signalled by mkdir and access, which are not opens: an open of another file would
		// end the run itself.
		runtime.LockOSThread()
		openLoop("0", files[0], n)
		if err := unix.Mkdir(files[1], 0o755); err != nil {
			helperFail("mkdir ready", err)
		}
		for {
			if err := unix.Access(files[2], unix.F_OK); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		openLoop("1", files[0], n)
	default:
		helperFail("mode", fmt.Errorf("unknown mode %q", mode))
	}
	os.Exit(0)
}

// openLoop opens and closes path n times on this thread and prints the thread and the
// loop's span, suffixed by tag.
func openLoop(tag, path string, n int) {
	fmt.Printf("tid%s=%d\nstart%s=%d\n", tag, unix.Gettid(), tag, time.Now().UnixNano())
	for range n {
		openClose(path)
	}
	fmt.Printf("end%s=%d\n", tag, time.Now().UnixNano())
}

func openClose(path string) {
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		helperFail("open", err)
	}
	unix.Close(fd)
}

// startTrackedHelper starts TestMergeHelperProcess in a tracked tree; wait returns what it
// said once it has exited.
func startTrackedHelper(t *testing.T, args ...string) (wait func() map[string]string) {
	t.Helper()
	shell, _ := agentShell(t, "claude")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", fmt.Sprintf("%s -test.run='^TestMergeHelperProcess$' -- %s %s", self, mergeHelperArg, strings.Join(args, " ")))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() map[string]string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v\n%.2000s", err, out.String())
		}
		said := map[string]string{}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				said[k] = v
			}
		}
		return said
	}
}

// arrivals stamps each event with when the source emitted it.
type arrivals struct {
	mu sync.Mutex
	at map[*proto.Event]time.Time
}

func (a *arrivals) wrap(emit func(*proto.Event)) func(*proto.Event) {
	return func(e *proto.Event) {
		a.mu.Lock()
		a.at[e] = time.Now()
		a.mu.Unlock()
		emit(e)
	}
}

func (a *arrivals) of(e *proto.Event) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.at[e]
}

// opensOf matches the open lines (merged or not) of thread tid of path.
func opensOf(tid int, path string) func(*proto.Event) bool {
	return func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionOpen && e.Process.Thread != nil && e.Process.Thread.ID == tid &&
			e.File != nil && e.File.Path == path
	}
}

// opensCounted is how many opens lines stand for: one each, or a merged line's count.
func opensCounted(lines []*proto.Event) (opens, merged uint64) {
	for _, e := range lines {
		if e.Vigil.Merged != nil {
			opens += e.Vigil.Merged.Count
			merged += e.Vigil.Merged.Count
			continue
		}
		opens++
	}
	return opens, merged
}

// waitOpens waits until the lines of tid's opens of path stand for want opens, and returns them.
func waitOpens(c *collector, tid int, path string, want uint64, timeout time.Duration) []*proto.Event {
	deadline := time.Now().Add(timeout)
	for {
		lines := filter(c.snapshot(), opensOf(tid, path))
		if n, _ := opensCounted(lines); n >= want || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mergedTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(proto.TimeLayout, s)
	if err != nil {
		t.Fatalf("merged time %q: %v", s, err)
	}
	return ts
}

func saidInt(t *testing.T, said map[string]string, key string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(said[key], 10, 64)
	if err != nil {
		t.Fatalf("helper said %s=%q: %v (all: %q)", key, said[key], err, said)
	}
	return n
}

// clockSlack allows for the conversion of the kernel's boot-time stamps to wall time.
const clockSlack = 5 * time.Millisecond

// checkSpan fails unless every merged line's repeats lie inside [start, end] (Unix ns).
func checkSpan(t *testing.T, lines []*proto.Event, start, end int64) {
	t.Helper()
	lo, hi := time.Unix(0, start).Add(-clockSlack), time.Unix(0, end).Add(clockSlack)
	for _, e := range lines {
		m := e.Vigil.Merged
		if m == nil {
			continue
		}
		first, last := mergedTime(t, m.First), mergedTime(t, m.Last)
		if first.Before(lo) || last.After(hi) || last.Before(first) || !e.Timestamp.Equal(first) {
			t.Errorf("merged line of %d: first %s last %s @timestamp %s; the loop ran from %s to %s",
				m.Count, first, last, e.Timestamp, time.Unix(0, start).UTC(), time.Unix(0, end).UTC())
		}
	}
}

func TestMergeTightLoopLosesNothing(t *testing.T) {
	src, c := startSource(t, nil, nil)
	marker := writeFile(t, canonicalDir(t), "marker")
	said := startTrackedHelper(t, "loop", strconv.Itoa(mergeLoopOpens), marker)()
	tid := int(saidInt(t, said, "tid"))
	lines := waitOpens(c, tid, marker, mergeLoopOpens, 15*time.Second)
	opens, merged := opensCounted(lines)
	lost := src.Lost()
	t.Logf("%d opens in %s: %d lines, merged counts %d, lines + merged %d, lost %v", mergeLoopOpens,
		time.Duration(saidInt(t, said, "end")-saidInt(t, said, "start")), len(lines), merged, opens, lost)
	if opens != mergeLoopOpens {
		t.Errorf("lines stand for %d opens, the helper made %d", opens, mergeLoopOpens)
	}
	if lost["open"] != 0 {
		t.Errorf("lost %d opens", lost["open"])
	}
	if len(lines) > mergeLoopOpens/100 {
		t.Errorf("%d lines for %d opens of one file: not merged", len(lines), mergeLoopOpens)
	}
	checkSpan(t, lines, saidInt(t, said, "start"), saidInt(t, said, "end"))
	for _, e := range lines {
		if m := e.Vigil.Merged; m != nil && (e.Process.Pid == 0 || e.Process.Name == "" || e.File.Flags != "O_RDONLY" || m.Ino == 0) {
			t.Errorf("merged line without its run's details: pid %d name %q flags %q ino %d", e.Process.Pid, e.Process.Name, e.File.Flags, m.Ino)
		}
	}
}

func TestMergeAlternatingFilesAreNotMerged(t *testing.T) {
	_, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	a, b := writeFile(t, dir, "a"), writeFile(t, dir, "b")
	const n = 2000
	said := startTrackedHelper(t, "alternate", strconv.Itoa(n), a, b)()
	tid := int(saidInt(t, said, "tid"))
	for _, p := range []string{a, b} {
		lines := waitOpens(c, tid, p, n/2, 15*time.Second)
		opens, merged := opensCounted(lines)
		if opens != n/2 || merged != 0 || len(lines) != n/2 {
			t.Errorf("%s: %d lines standing for %d opens (%d merged); want %d lines, none merged", p, len(lines), opens, merged, n/2)
		}
	}
}

func TestMergeIdleRunIsSweptWhileTheThreadLives(t *testing.T) {
	var arr = &arrivals{at: map[*proto.Event]time.Time{}}
	_, c := startSource(t, nil, arr.wrap)
	marker := writeFile(t, canonicalDir(t), "marker")
	const n = 1000
	said := startTrackedHelper(t, "idle", strconv.Itoa(n), marker)()
	tid := int(saidInt(t, said, "tid"))
	lines := waitOpens(c, tid, marker, n, 10*time.Second)
	if opens, _ := opensCounted(lines); opens != n {
		t.Fatalf("lines stand for %d opens, the helper made %d", opens, n)
	}
	end, exit := time.Unix(0, saidInt(t, said, "end")), time.Unix(0, saidInt(t, said, "exit"))
	for _, e := range lines {
		if e.Vigil.Merged == nil {
			continue
		}
		at := arr.of(e)
		t.Logf("merged line of %d arrived %s after the loop, %s before the thread exited", e.Vigil.Merged.Count, at.Sub(end), exit.Sub(at))
		if at.Sub(end) > 2500*time.Millisecond || !at.Before(exit) {
			t.Errorf("the idle run was reported %s after its last open (thread exit %s after it): want within 2.5 s, before the exit", at.Sub(end), exit.Sub(end))
		}
	}
	checkSpan(t, lines, saidInt(t, said, "start"), saidInt(t, said, "end"))
}

func TestMergeThreadsAreSeparateRunsEndedByTheirExit(t *testing.T) {
	var arr = &arrivals{at: map[*proto.Event]time.Time{}}
	_, c := startSource(t, nil, arr.wrap)
	marker := writeFile(t, canonicalDir(t), "marker")
	const n = 20000
	said := startTrackedHelper(t, "threads", strconv.Itoa(n), marker)()
	for _, tag := range []string{"0", "1"} {
		tid := int(saidInt(t, said, "tid"+tag))
		lines := waitOpens(c, tid, marker, n, 10*time.Second)
		opens, merged := opensCounted(lines)
		t.Logf("thread %d: %d lines, merged %d, opens %d", tid, len(lines), merged, opens)
		if opens != n || merged == 0 {
			t.Errorf("thread %d: lines stand for %d opens (%d merged), the thread made %d", tid, opens, merged, n)
		}
		end := time.Unix(0, saidInt(t, said, "end"+tag))
		for _, e := range lines {
			// The thread's exit ends its run at once; the sweep would wait for a second of idle.
			if e.Vigil.Merged != nil && arr.of(e).Sub(end) > 900*time.Millisecond {
				t.Errorf("thread %d's run reported %s after its end: not by its exit", tid, arr.of(e).Sub(end))
			}
		}
		checkSpan(t, lines, saidInt(t, said, "start"+tag), saidInt(t, said, "end"+tag))
	}
}

func TestMergeEpochBumpSplitsARun(t *testing.T) {
	src, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	marker := writeFile(t, dir, "marker")
	ready, goFile := filepath.Join(dir, "ready"), filepath.Join(dir, "go")
	const n = 1000
	wait := startTrackedHelper(t, "epoch", strconv.Itoa(n), marker, ready, goFile)
	deadline := time.Now().Add(10 * time.Second)
	for unix.Access(ready, unix.F_OK) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the helper never got ready")
		}
		time.Sleep(time.Millisecond)
	}
	if err := src.BumpMergeEpoch(); err != nil {
		t.Fatal(err)
	}
	bump := time.Now()
	if err := unix.Mkdir(goFile, 0o755); err != nil {
		t.Fatal(err)
	}
	said := wait()
	tid := int(saidInt(t, said, "tid0"))
	lines := waitOpens(c, tid, marker, 2*n, 10*time.Second)
	opens, merged := opensCounted(lines)
	full := len(lines)
	for _, e := range lines {
		if e.Vigil.Merged != nil {
			full--
			if mergedTime(t, e.Vigil.Merged.First).Before(bump) && mergedTime(t, e.Vigil.Merged.Last).After(bump) {
				t.Errorf("a merged line spans the epoch bump at %s: %s to %s", bump, e.Vigil.Merged.First, e.Vigil.Merged.Last)
			}
		}
	}
	t.Logf("%d opens: %d lines (%d full), merged %d", 2*n, len(lines), full, merged)
	if opens != 2*n {
		t.Errorf("lines stand for %d opens, the helper made %d", opens, 2*n)
	}
	if full != 2 {
		t.Errorf("%d full open lines; want 2: one run before the bump, one after", full)
	}
}

// When the source stops, the runs still open in the kernel are written: a thread that
// repeated an open and then idles, alive, is not lost.
func TestMergeStopWritesOpenRuns(t *testing.T) {
	requireKernel(t)
	src, err := NewEBPF(Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatalf("NewEBPF: %v", err)
	}
	defer src.Close()
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c.emit) }()
	marker := writeFile(t, canonicalDir(t), "marker")
	const n = 1000
	wait := startTrackedHelper(t, "idle", strconv.Itoa(n), marker)
	first := c.waitFor(t, "the run's first open", 10*time.Second, isOpenOf(marker))
	// The loop takes a few ms; stop well before the run has been idle for the window.
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines := filter(c.snapshot(), opensOf(first.Process.Thread.ID, marker))
	opens, merged := opensCounted(lines)
	said := wait()
	t.Logf("%d opens: %d lines, merged %d, written by the stop", n, len(lines), merged)
	if opens != n || merged == 0 {
		t.Errorf("after the stop, lines stand for %d opens (%d merged); the helper made %d", opens, merged, n)
	}
	checkSpan(t, lines, saidInt(t, said, "start"), saidInt(t, said, "end"))
}
