package main

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The test binary doubles as the loadgen: with LOADGEN_TEST_MAIN=1 it runs main with its
// arguments, so the tests below can run the real loadgen under strace, an independent
// recorder of every system call it makes.
func TestMain(m *testing.M) {
	if os.Getenv("LOADGEN_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// straced runs the loadgen (this test binary) with args under strace -f, tracing calls, and
// returns the strace log's lines and the loadgen's result line.
func straced(t *testing.T, calls string, args ...string) ([]string, result) {
	t.Helper()
	st, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed: the independent count of the loadgen's system calls needs it")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	cmd := exec.Command(st, append([]string{"-f", "-q", "-y", "-e", "trace=" + calls, "-o", log, self}, args...)...)
	cmd.Env = append(os.Environ(), "LOADGEN_TEST_MAIN=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		if strings.Contains(stderr, "PTRACE") || strings.Contains(stderr, "Operation not permitted") {
			t.Skipf("strace cannot trace here: %s", stderr)
		}
		t.Fatalf("strace loadgen %v: %v\n%s", args, err, stderr)
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("loadgen output %q: %v", out, err)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines, res
}

// openedRe is a successful openat's result in strace -y: the fd and the kernel's path of
// the opened file (on the call's line, or on its "resumed" line when another thread's call
// came between).
var openedRe = regexp.MustCompile(`= \d+<([^>]*)>$`)

// TestWalkOpensEachFileOnce walks a tree made by -make-tree's builder and counts, with
// strace, the successful opens inside it by the kernel's path of the opened file: every file
// and every directory of both trees (listed independently with filepath.WalkDir) is opened
// exactly once, nothing else in the trees is, and the loadgen's own counts agree.
func TestWalkOpensEachFileOnce(t *testing.T) {
	const n, warmup, perDir = 250, 30, 7 // 36 + 5 directories, the last ones partly full
	dir := t.TempDir()
	if err := buildTrees(dir, n, warmup, perDir); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{} // path → is a directory
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			want[p] = d.IsDir()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lines, res := straced(t, "openat", "-work", "walk", "-tree", dir, "-n", strconv.Itoa(n), "-warmup", strconv.Itoa(warmup))

	opened := map[string]int{}
	total := 0
	for _, l := range lines {
		if !strings.Contains(l, "openat") {
			continue
		}
		m := openedRe.FindStringSubmatch(l)
		if m == nil || !strings.HasPrefix(m[1], dir+"/") {
			continue
		}
		opened[m[1]]++
		total++
	}
	files, dirs := 0, 0
	for p, isDir := range want {
		if isDir {
			dirs++
		} else {
			files++
		}
		if opened[p] != 1 {
			t.Errorf("%s opened %d times, want once", p, opened[p])
		}
	}
	for p := range opened {
		if _, ok := want[p]; !ok {
			t.Errorf("opened %s, which is not in the trees", p)
		}
	}
	if files != n+warmup || dirs != 2+(n+perDir-1)/perDir+(warmup+perDir-1)/perDir {
		t.Fatalf("the builder made %d files and %d directories", files, dirs)
	}
	if res.EventsGenerated["open"] != total {
		t.Errorf("loadgen says it generated %d opens, strace saw %d in the trees", res.EventsGenerated["open"], total)
	}
	timedDirs := 1 + (n+perDir-1)/perDir
	if res.EventsExpected != n+timedDirs {
		t.Errorf("events_expected %d, want %d files + %d directories of the timed tree", res.EventsExpected, n, timedDirs)
	}
	if got := res.EventsPerOp["open"] * n; got < float64(n+timedDirs)-0.5 || got > float64(n+timedDirs)+0.5 {
		t.Errorf("events_per_op %v × %d = %v, want %d", res.EventsPerOp["open"], n, got, n+timedDirs)
	}
}

// TestWalkRefusesAWrongTree: a tree with another file count is an error, not a silent
// miscount.
func TestWalkRefusesAWrongTree(t *testing.T) {
	dir := t.TempDir()
	if err := buildTrees(dir, 20, 0, 5); err != nil {
		t.Fatal(err)
	}
	w, err := newWorker("walk", settings{tree: dir}, 21, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := w.loop(21); err == nil || !strings.Contains(err.Error(), "holds 20 files, want 21") {
		t.Errorf("walk of a 20-file tree as 21: %v", err)
	}
}

// TestFanoutRunsExactlyN counts, with strace, the execve calls of /bin/true the fan-out's
// processes make: n + warmup, each in a process of its own, each of which exits 0.
func TestFanoutRunsExactlyN(t *testing.T) {
	const n, warmup = 37, 5
	lines, res := straced(t, "execve", "-work", "fanout", "-n", strconv.Itoa(n), "-warmup", strconv.Itoa(warmup), "-parallel", "4")
	execs, exited := map[string]int{}, map[string]bool{}
	for _, l := range lines {
		pid, rest, _ := strings.Cut(l, " ")
		switch {
		case strings.HasPrefix(strings.TrimSpace(rest), `execve("/bin/true"`):
			execs[pid]++
		case strings.Contains(rest, "+++ exited with 0 +++"):
			exited[pid] = true
		}
	}
	if len(execs) != n+warmup {
		t.Errorf("strace saw /bin/true exec'd in %d processes, want %d", len(execs), n+warmup)
	}
	for pid, k := range execs {
		if k != 1 || !exited[pid] {
			t.Errorf("process %s: %d execve of /bin/true, exited 0: %v", pid, k, exited[pid])
		}
	}
	if res.Parallel != 4 || res.EventsExpected != 5*n {
		t.Errorf("result: parallel %d, events_expected %d; want 4 and %d", res.Parallel, res.EventsExpected, 5*n)
	}
	for a, k := range trueEvents {
		if res.EventsGenerated[a] != k*(n+warmup) || res.EventsPerOp[a] != float64(k) {
			t.Errorf("%s: generated %d, per op %v; want %d and %d", a, res.EventsGenerated[a], res.EventsPerOp[a], k*(n+warmup), k)
		}
	}
}
