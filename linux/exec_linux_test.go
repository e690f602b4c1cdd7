package linux

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Exec identity (issue 9, part 4): the exec record names the file that ran by the kernel's
// identity (device, inode, ctime), a memfd says so, and the hash is of what ran.

const memfdHelperArg = "vigil-memfd-helper"

// TestMemfdHelperProcess copies an executable into a memfd and executes it through
// /proc/self/fd/N: a fileless exec. It runs only as a child of the tests below.
func TestMemfdHelperProcess(t *testing.T) {
	args := flag.Args() // memfdHelperArg image args...
	if len(args) < 2 || args[0] != memfdHelperArg {
		t.Skip("helper process of TestFilelessExecIsReportedAsMemfd")
	}
	image, err := os.ReadFile(args[1])
	if err != nil {
		helperFail("read image", err)
	}
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		helperFail("memfd_create", err)
	}
	if _, err := unix.Write(fd, image); err != nil {
		helperFail("write", err)
	}
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	fmt.Printf("pid=%d\n", os.Getpid())
	os.Stdout.Sync()
	helperFail("execve", syscall.Exec(path, append([]string{"payload"}, args[2:]...), []string{}))
}

// copyExecutable copies src into dir/name and returns the copy's path and SHA-256.
func copyExecutable(t *testing.T, src, dir, name string) (string, string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return p, hex.EncodeToString(sum[:])
}

// tableSource streams the real source's events into a collector after the process table
// (with a real ExeHasher) enriched them, as the pipeline does; hold keeps the table from
// seeing events until the test releases them, so the test can change a file between an
// exec and its hashing.
type tableSource struct {
	table  *sensor.ProcessTable
	hasher *sensor.ExeHasher
	c      *collector

	mu   sync.Mutex
	held []*proto.Event
	hold bool
}

func startTableSource(t *testing.T, hold bool) *tableSource {
	t.Helper()
	ts := &tableSource{hold: hold}
	ts.hasher = sensor.NewExeHasher(sensor.ExeHasherOptions{})
	t.Cleanup(ts.hasher.Close)
	ts.table = sensor.NewProcessTable(sensor.ProcessTableOptions{Hasher: ts.hasher})
	_, ts.c = startSource(t, nil, func(emit func(*proto.Event)) func(*proto.Event) {
		return func(e *proto.Event) {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			if ts.hold {
				ts.held = append(ts.held, e)
				return
			}
			ts.table.Apply(e)
			emit(e)
		}
	})
	return ts
}

// heldExec waits for the exec of pid among the held events.
func (ts *tableSource) heldExec(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ts.mu.Lock()
		for _, e := range ts.held {
			if e.Event.Action == proto.ActionExec && e.Process.Pid == pid {
				ts.mu.Unlock()
				return
			}
		}
		ts.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no exec of %d", pid)
}

// release applies the held events and lets later ones through.
func (ts *tableSource) release() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, e := range ts.held {
		ts.table.Apply(e)
		ts.c.emit(e)
	}
	ts.held, ts.hold = nil, false
}

// written is the exec line of pid as the pipeline writes it after the correlator's hold:
// Finish runs once the hasher has answered.
func (ts *tableSource) written(t *testing.T, pid int) *proto.Event {
	t.Helper()
	e := ts.c.waitFor(t, fmt.Sprintf("exec of %d", pid), 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExec && e.Process.Pid == pid
	})
	if e.Vigil.Exe == nil {
		t.Fatalf("exec of %d carries no vigil.exe", pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, status := ts.hasher.Result(sensor.FileIDOf(e.Vigil.Exe)); status != proto.HashPending || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.table.Finish(e)
	return e
}

func TestExecCarriesTheFilesIdentity(t *testing.T) {
	ts := startTableSource(t, false)
	shell, dir := agentShell(t, "claude")
	tool, sum := copyExecutable(t, "/bin/true", dir, "tool")
	cmd := exec.Command(shell, "-c", tool+" & echo \"pid=$!\"; wait")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agent shell: %v\n%s", err, out)
	}
	pid := saidPid(t, out)
	var st unix.Stat_t
	if err := unix.Stat(tool, &st); err != nil {
		t.Fatal(err)
	}
	e := ts.written(t, pid)
	want := proto.Exe{Dev: st.Dev, Ino: st.Ino, Ctime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UTC().Format(proto.TimeLayout)}
	if *e.Vigil.Exe != want || e.Process.Executable != tool {
		t.Errorf("exec: executable %q exe %+v, want %q %+v", e.Process.Executable, e.Vigil.Exe, tool, want)
	}
	if e.Process.Hash == nil || e.Process.Hash.SHA256 != sum {
		t.Errorf("hash %+v, want %s", e.Process.Hash, sum)
	}
}

// A binary replaced at its path after the exec (a different file renamed over it) is never
// reported with the new file's hash: the path holds another identity, and the file that ran
// (still reachable through /proc/<pid>/exe while the process lives) changed its ctime when it
// was unlinked, so the line says mismatch.
func TestReplacedBinaryIsNotHashedAsTheNewFile(t *testing.T) {
	for _, alive := range []bool{true, false} {
		name := map[bool]string{true: "process alive", false: "process gone"}[alive]
		t.Run(name, func(t *testing.T) {
			ts := startTableSource(t, true)
			shell, dir := agentShell(t, "claude")
			tool, ranSum := copyExecutable(t, "/bin/sleep", dir, "tool")
			other, otherSum := copyExecutable(t, "/bin/true", dir, "other")
			script := tool + " 3 & echo \"pid=$!\"; wait"
			if !alive {
				script = "(exec " + tool + " 0) & echo \"pid=$!\"; wait"
			}
			cmd := exec.Command(shell, "-c", script)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var line [64]byte
			n, _ := stdout.Read(line[:])
			pid := saidPid(t, line[:n])
			ts.heldExec(t, pid)
			if !alive {
				waitGone(t, pid)
			}
			if err := os.Rename(other, tool); err != nil {
				t.Fatal(err)
			}
			ts.release()
			e := ts.written(t, pid)
			got := ""
			if e.Process.Hash != nil {
				got = e.Process.Hash.SHA256
			}
			t.Logf("%s: hash %q, vigil.exe.hash %q", name, got, e.Vigil.Exe.Hash)
			if got == otherSum {
				t.Fatalf("the exec is reported with the hash of the file renamed over it")
			}
			// Renaming over the path unlinks the file that ran, which changes its ctime: even
			// through /proc/<pid>/exe it no longer has the exec's identity, so the honest
			// answer is mismatch (or, on a file system that kept the ctime, what ran).
			if alive && !(got == ranSum && e.Vigil.Exe.Hash == "") && !(got == "" && e.Vigil.Exe.Hash == proto.HashMismatch) {
				t.Errorf("alive: hash %q status %q, want %s (what ran) or mismatch", got, e.Vigil.Exe.Hash, ranSum)
			}
			if !alive && (got != "" || e.Vigil.Exe.Hash != proto.HashMismatch) {
				t.Errorf("gone: hash %q status %q, want no hash and mismatch", got, e.Vigil.Exe.Hash)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("agent shell: %v", err)
			}
			if st := ts.hasher.Stats(); !alive && st.Mismatches == 0 {
				t.Errorf("mismatch not counted: %+v", st)
			}
		})
	}
}

// saidPid is the pid a workload printed as "pid=N".
func saidPid(t *testing.T, out []byte) int {
	t.Helper()
	for _, l := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(l, "pid="); ok {
			if pid, err := strconv.Atoi(v); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no pid in the workload's output:\n%s", out)
	return 0
}

// waitGone waits until pid has exited (a zombie counts: its /proc/<pid>/exe is gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d still running", pid)
}

// A fileless exec (memfd_create, write, execve of /proc/self/fd/N) is reported as the memfd
// it ran from, not as /proc/self/fd/N, and hashed through the live process.
func TestFilelessExecIsReportedAsMemfd(t *testing.T) {
	ts := startTableSource(t, false)
	shell, _ := agentShell(t, "claude")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	cmd := exec.Command(shell, "-c", fmt.Sprintf("%s -test.run='^TestMemfdHelperProcess$' -- %s /bin/sleep 1", self, memfdHelperArg))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	pid := saidPid(t, out)
	var e *proto.Event
	ts.c.waitFor(t, "the memfd exec", 15*time.Second, func(x *proto.Event) bool {
		if x.Event.Action == proto.ActionExec && x.Process.Pid == pid && len(x.Process.Args) > 0 && x.Process.Args[0] == "payload" {
			e = x
			return true
		}
		return false
	})
	ts.table.Finish(e)
	if e.Process.Executable != "memfd:payload" || !e.Vigil.Exe.Memfd || e.Vigil.Exe.Deleted {
		t.Errorf("memfd exec: executable %q exe %+v, want memfd:payload, memfd", e.Process.Executable, e.Vigil.Exe)
	}
	// Hashed through /proc/<pid>/exe while sleep ran (1 s): the digest of the image copied in.
	deadline := time.Now().Add(5 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if s, status := ts.hasher.Result(sensor.FileIDOf(e.Vigil.Exe)); status != proto.HashPending {
			got = s
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != hex.EncodeToString(sum[:]) {
		t.Errorf("memfd hash %q, want the image's %x", got, sum)
	}
}
