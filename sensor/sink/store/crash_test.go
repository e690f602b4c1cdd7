package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv makes the test binary, run again by TestCrashSafety, the writer it kills.
const crashChildEnv = "VIGIL_STORE_CRASH_CHILD"

// TestCrashSafety kills (SIGKILL) a process writing batches to a store, mid-write, and
// checks the database it leaves: it opens, SQLite finds it sound, and every batch the writer
// had seen committed (Flush returned) is in it, whole.
func TestCrashSafety(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("kills a child process: not in -short")
	}
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "vigil.db")
		committed := runAndKill(t, path, 20+round*7)
		s := openTemp(t, Options{Path: path})
		integrityCheck(t, s)
		got := queryRows(t, s, "SELECT count(*) AS n, max(seq) AS last FROM events WHERE run_id = 1 AND seq <= ?", committed)
		if got[0]["n"] != int64(committed) || got[0]["last"] != int64(committed) {
			t.Errorf("round %d: the writer saw lines 1 to %d committed; the database has %v", round, committed, got)
		}
		// Batches are whole: the lines past the last reported commit, if any, are a
		// multiple of the batch.
		if n := queryInt(t, s, "SELECT count(*) FROM event_rows"); n%crashBatch != 0 {
			t.Errorf("round %d: %d lines: a batch was cut", round, n)
		}
		// And the next run writes on.
		writeAll(t, s, readFixture(t)[:5])
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashBatch is the lines the child commits at a time.
const crashBatch = 250

// runAndKill starts the child writing to path, lets it commit at least batches batches,
// kills it a random moment later, and returns the last line it reported committed.
func runAndKill(t *testing.T, path string, batches int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reports := make(chan int, 1024)
	go func() {
		defer close(reports)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if seq, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				n, err := strconv.Atoi(seq)
				if err == nil {
					reports <- n
				}
			}
		}
	}()
	last := 0
	deadline := time.After(time.Minute)
	for seen := 0; seen < batches; seen++ {
		select {
		case n, ok := <-reports:
			if !ok {
				t.Fatalf("the writer exited after %d batches: %v", seen, cmd.Wait())
			}
			last = n
		case <-deadline:
			t.Fatal("the writer committed too slowly")
		}
	}
	time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond) // somewhere in a batch
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed, as intended
	for n := range reports {
		last = n // reported before the kill landed
	}
	return last
}

// crashChild writes batches of workload lines to path until killed, reporting each commit.
func crashChild(path string) {
	s, err := Open(Options{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := newWorkload(11)
	for {
		for range crashBatch {
			if err := s.Write(w.next()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		if err := s.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("committed %d\n", w.seq)
	}
}
