package linux

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
)

// Kernel truth for file paths (issue 9, part 1): a successful open is reported with the path
// of the file the kernel opened, whatever the caller spelled and whatever another thread
// did to the caller's buffer meanwhile.

const (
	pathHelperArg = "vigil-path-helper"
	raceOpens     = 20000
	atFdcwd       = ^uintptr(99) // AT_FDCWD (-100) as a syscall argument
)

// TestPathHelperProcess is the racing opener: one thread opens the path in a shared buffer
// raceOpens times while another rewrites the buffer between two files of the same name
// length. It prints which file each successful open really got (fstat of the descriptor:
// 's' secret, 'd' decoy) and, before that, tries openat(dirfd, missing) once. It runs only as
// a child of the tests below.
func TestPathHelperProcess(t *testing.T) {
	args := flag.Args() // pathHelperArg dir
	if len(args) != 2 || args[0] != pathHelperArg {
		t.Skip("helper process of TestOpenPathSurvivesARacingRewrite")
	}
	dir := args[1]
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		helperFail("open dir", err)
	}
	if _, err := unix.Openat(dfd, "missing-under-dirfd", unix.O_RDONLY, 0); !errors.Is(err, unix.ENOENT) {
		helperFail("openat missing", err)
	}
	var st unix.Stat_t
	inode := func(name string) uint64 {
		if err := unix.Stat(filepath.Join(dir, name), &st); err != nil {
			helperFail("stat "+name, err)
		}
		return st.Ino
	}
	secretIno, decoyIno := inode("secret"), inode("decoy_")

	// The buffer lives outside the Go heap (the race detector does not watch it): the race
	// on it is the point of the test.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		helperFail("mmap", err)
	}
	secret, decoy := []byte(filepath.Join(dir, "secret")+"\x00"), []byte(filepath.Join(dir, "decoy_")+"\x00")
	copy(buf, secret)
	name := len(secret) - 7 // where the 6-byte names differ

	var stop atomic.Bool
	flipped := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(flipped)
		for i := 0; !stop.Load(); i++ {
			src := secret
			if i&1 == 1 {
				src = decoy
			}
			copy(buf[name:name+6], src[name:name+6])
		}
	}()

	runtime.LockOSThread()
	fmt.Printf("tid=%d\n", unix.Gettid())
	got := make([]byte, 0, raceOpens)
	for range raceOpens {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFdcwd), uintptr(unsafe.Pointer(&buf[0])), unix.O_RDONLY, 0, 0, 0)
		if errno != 0 {
			got = append(got, 'f') // a torn name that names no file
			continue
		}
		if err := unix.Fstat(int(fd), &st); err != nil {
			helperFail("fstat", err)
		}
		switch st.Ino {
		case secretIno:
			got = append(got, 's')
		case decoyIno:
			got = append(got, 'd')
		default:
			got = append(got, '?')
		}
		unix.Close(int(fd))
	}
	stop.Store(true)
	<-flipped
	fmt.Printf("opened=%s\n", got)
	os.Exit(0)
}

// helperFail ends a helper process (a test run as the child of another) with the step that
// failed; the parent test reports its output.
func helperFail(step string, err error) {
	fmt.Printf("helper: %s: %v\n", step, err)
	os.Exit(2)
}

// runTrackedHelper runs this test binary's helper test (name) with args under an agent
// shell, so that it is in a tracked tree, and returns its output's key=value lines.
func runTrackedHelper(t *testing.T, name string, args ...string) map[string]string {
	t.Helper()
	shell, _ := agentShell(t, "claude")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", fmt.Sprintf("%s -test.run='^%s$' -- %s", self, name, strings.Join(args, " ")))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%.2000s", err, out)
	}
	said := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			said[k] = v
		}
	}
	return said
}

// runPathHelper runs the racing opener in a tracked tree and returns what it said.
func runPathHelper(t *testing.T, dir string) map[string]string {
	t.Helper()
	said := runTrackedHelper(t, "TestPathHelperProcess", pathHelperArg, dir)
	if said["tid"] == "" || len(said["opened"]) != raceOpens {
		t.Fatalf("helper did not report its opens: %q", said)
	}
	return said
}

// canonicalDir is a fresh directory named by its canonical path (t.TempDir may sit behind a
// symlink).
func canonicalDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenPathsAreTheKernels(t *testing.T) {
	_, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	secret := writeFile(t, dir, "secret")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link-to-secret")); err != nil {
		t.Fatal(err)
	}
	deepDir := filepath.Join(append([]string{dir}, slices.Repeat([]string{strings.Repeat("d", 100)}, 12)...)...)
	if err := os.MkdirAll(deepDir, 0o755); err != nil {
		t.Fatal(err)
	}
	deep := writeFile(t, deepDir, "deep.txt")
	missing := filepath.Join(dir, "missing")

	spellings := []string{
		"/proc/self/root" + dir + "/secret",
		dir + "//secret",
		dir + "/link-to-secret",
		dir + "/sub/../secret",
	}
	var script strings.Builder
	for i, s := range spellings {
		// One child per spelling, so each open is told apart by its pid.
		fmt.Fprintf(&script, "( echo \"s%d=$BASHPID\"; read -r x < %s )\n", i, s)
	}
	fmt.Fprintf(&script, "{ read -r x < %s; } 2>/dev/null\nread -r x < %s\n", missing, deep)
	shell, _ := agentShell(t, "claude")
	cmd := exec.Command(shell, "-c", script.String())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agent shell: %v\n%s", err, out)
	}
	root := cmd.Process.Pid
	pids := map[string]int{}
	for _, line := range strings.Fields(string(out)) {
		if k, v, ok := strings.Cut(line, "="); ok {
			pids[k], _ = strconv.Atoi(v)
		}
	}

	seen := 0
	for i, s := range spellings {
		pid := pids[fmt.Sprintf("s%d", i)]
		e := c.waitFor(t, "open of "+s, 15*time.Second, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionOpen && e.Process.Pid == pid && e.File != nil && strings.Contains(e.File.Path, "secret")
		})
		if e.File.Path != secret || e.Vigil.PathSource != proto.PathSourceKernel || e.Event.Outcome != proto.OutcomeSuccess {
			t.Errorf("cat %s: path %q source %q outcome %s; want %q from the kernel", s, e.File.Path, e.Vigil.PathSource, e.Event.Outcome, secret)
			continue
		}
		seen++
	}
	t.Logf("%d of %d spellings reported as the canonical path of the file opened", seen, len(spellings))

	failed := c.waitFor(t, "failed open of "+missing, 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionOpen && e.Process.Pid == root && e.File != nil && e.File.Path == missing
	})
	if failed.Vigil.PathSource != proto.PathSourceCaller || failed.Event.Outcome != proto.OutcomeFailure || failed.Vigil.Errno != int(unix.ENOENT) {
		t.Errorf("failed open: source %q outcome %s errno %d; want caller, failure, ENOENT", failed.Vigil.PathSource, failed.Event.Outcome, failed.Vigil.Errno)
	}

	d := c.waitFor(t, "open of the deep file", 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionOpen && e.Process.Pid == root && e.File != nil && strings.HasSuffix(e.File.Path, "/deep.txt")
	})
	want := kernelTruncated(deep, 1024)
	if d.File.Path != want || !slices.Equal(d.Vigil.Truncated, []string{"file.path"}) || d.Vigil.PathSource != proto.PathSourceKernel {
		t.Errorf("deep open: path %q truncated %q source %q; want %q, [file.path], kernel", d.File.Path, d.Vigil.Truncated, d.Vigil.PathSource, want)
	}
	if strings.HasPrefix(d.File.Path, "/") {
		t.Errorf("a truncated path looks absolute: %q", d.File.Path)
	}
}

// A pipe has no path: opening /dev/fd/N of one (bash's process substitution) is reported as
// the kernel names the pipe, "pipe:[inode]", not as "/", where walking it would end.
func TestOpenOfAPipeIsNamedLikeProc(t *testing.T) {
	_, c := startSource(t, nil, nil)
	shell, _ := agentShell(t, "claude")
	cmd := exec.Command(shell, "-c", `exec 3< <(echo hi); echo "pipe=$(stat -L -c %i /proc/$$/fd/3)"; read -r x <&3`)
	cmd.Dir = canonicalDir(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agent shell: %v\n%s", err, out)
	}
	_, ino, ok := strings.Cut(strings.TrimSpace(string(out)), "pipe=")
	if !ok {
		t.Fatalf("no pipe inode in %q", out)
	}
	want := "pipe:[" + ino + "]"
	e := c.waitFor(t, "open of "+want, 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionOpen && e.Process.Pid == cmd.Process.Pid && e.File != nil && e.File.Path == want
	})
	if e.Vigil.PathSource != proto.PathSourceKernel || e.Event.Outcome != proto.OutcomeSuccess {
		t.Errorf("pipe open: source %q outcome %s", e.Vigil.PathSource, e.Event.Outcome)
	}
}

func TestOpenPathSurvivesARacingRewrite(t *testing.T) {
	_, c := startSource(t, func(o *Options) { o.RingBufferBytes = 32 << 20 }, nil)
	dir := canonicalDir(t)
	secret, decoy := writeFile(t, dir, "secret"), writeFile(t, dir, "decoy_")
	said := runPathHelper(t, dir)
	tid, _ := strconv.Atoi(said["tid"])
	opened := said["opened"]
	succeeded := strings.Count(opened, "s") + strings.Count(opened, "d")
	if strings.Count(opened, "s") == 0 || strings.Count(opened, "d") == 0 {
		t.Fatalf("the rewrite did not race the opens (secret %d, decoy %d): nothing was tested", strings.Count(opened, "s"), strings.Count(opened, "d"))
	}

	// The opener thread's successful opens in the test's directory (the thread also ran the
	// Go runtime's start-up), in the order the kernel saw them: a merged line stands for its
	// count of repeats of the open before it (the run's first), and comes before the next
	// successful open of another file, which ends the run.
	deadline := time.Now().Add(30 * time.Second)
	var events []*proto.Event
	for len(events) < succeeded && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		events = events[:0]
		for _, e := range filter(c.snapshot(), func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionOpen && e.Process.Thread != nil && e.Process.Thread.ID == tid && e.Event.Outcome == proto.OutcomeSuccess &&
				strings.HasPrefix(e.File.Path, dir+"/")
		}) {
			n := 1
			if e.Vigil.Merged != nil {
				n = int(e.Vigil.Merged.Count)
			}
			for range n {
				events = append(events, e)
			}
		}
	}
	if len(events) != succeeded {
		t.Fatalf("%d successful open events from thread %d, want %d", len(events), tid, succeeded)
	}
	want := strings.ReplaceAll(opened, "f", "")
	wrong, secretAsDecoy := 0, 0
	for i, e := range events {
		path := map[byte]string{'s': secret, 'd': decoy}[want[i]]
		if e.File.Path != path || e.Vigil.PathSource != proto.PathSourceKernel {
			wrong++
			if want[i] == 's' {
				secretAsDecoy++
			}
		}
	}
	t.Logf("%d opens, %d succeeded (secret %d, decoy %d); %d events with the wrong path, %d of them the secret logged as another file",
		raceOpens, succeeded, strings.Count(opened, "s"), strings.Count(opened, "d"), wrong, secretAsDecoy)
	if wrong != 0 {
		t.Errorf("%d of %d events name a file other than the one opened", wrong, succeeded)
	}

	// The failed openat(dirfd, "missing-under-dirfd"): the caller's name under the kernel's dirfd.
	miss := filepath.Join(dir, "missing-under-dirfd")
	e := c.waitFor(t, "failed openat under a dirfd", 15*time.Second, isOpenOf(miss))
	if e.Vigil.PathSource != proto.PathSourceCaller || e.Event.Outcome != proto.OutcomeFailure {
		t.Errorf("openat(dirfd, missing): source %q outcome %s, want caller, failure", e.Vigil.PathSource, e.Event.Outcome)
	}
}
