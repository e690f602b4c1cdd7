package linux

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
)

const openHelperArg = "vigil-open-syscalls-helper"

// TestOpenSyscallsHelperProcess calls each open syscall of this architecture directly, since
// Go's os.Open always uses openat. It runs only as the agent process of
// TestEveryOpenSyscallIsReported.
func TestOpenSyscallsHelperProcess(t *testing.T) {
	args := flag.Args() // openHelperArg dir
	if len(args) != 2 || args[0] != openHelperArg {
		t.Skip("helper process of TestEveryOpenSyscallIsReported")
	}
	dir := args[1]
	call := func(step string, trap uintptr, a ...uintptr) uintptr {
		a = append(a, 0, 0, 0, 0)
		fd, _, errno := unix.Syscall6(trap, a[0], a[1], a[2], a[3], 0, 0)
		if errno != 0 && step != "missing" {
			helperFail(step, errno)
		}
		return fd
	}
	var keep []*byte // the path strings stay alive until the syscalls are done
	str := func(s string) uintptr {
		p, err := unix.BytePtrFromString(s)
		if err != nil {
			helperFail("path", err)
		}
		keep = append(keep, p)
		return uintptr(unsafe.Pointer(p))
	}
	atFDCWD := unix.AT_FDCWD

	legacyOpenCalls(dir, call, str)
	dirfd := call("dirfd", unix.SYS_OPENAT, uintptr(atFDCWD), str(dir), unix.O_PATH|unix.O_DIRECTORY)
	call("openat", unix.SYS_OPENAT, dirfd, str("at.txt"), unix.O_WRONLY|unix.O_APPEND)
	how := unix.OpenHow{Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o600, Resolve: unix.RESOLVE_NO_SYMLINKS}
	call("openat2", unix.SYS_OPENAT2, uintptr(atFDCWD), str(filepath.Join(dir, "openat2.txt")), uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how))
	runtime.KeepAlive(keep)
	runtime.KeepAlive(&how)
	os.Exit(0)
}

// openWant is the record one of the helper's opens must produce.
type openWant struct {
	what, path, flags, access string
	errno                     int
}

// TestEveryOpenSyscallIsReported checks that each exit program reads its own syscall's
// arguments from the saved registers: open, creat (x86-64), openat with a directory fd and
// openat2 pass path, flags and directory in different positions.
func TestEveryOpenSyscallIsReported(t *testing.T) {
	_, c := startSource(t, nil, nil)
	shell, dir := agentShell(t, "claude")
	for _, name := range []string{"open.txt", "at.txt"} {
		writeFile(t, dir, name)
	}
	helper, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", fmt.Sprintf("exec %s -test.run='^TestOpenSyscallsHelperProcess$' -- %s %s", helper, openHelperArg, dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	root := cmd.Process.Pid
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range append([]openWant{
		{"openat(2) relative to a directory fd: the kernel walks the opened file",
			filepath.Join(realDir, "at.txt"), "O_WRONLY|O_APPEND", "write", 0},
		{"openat2(2): flags from struct open_how", filepath.Join(dir, "openat2.txt"), "O_RDWR|O_CREAT|O_EXCL", "read_write", 0},
	}, legacyOpenWants(dir)...) {
		e := c.waitFor(t, want.what, 15*time.Second, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionOpen && e.Process.Pid == root && e.File.Path == want.path
		})
		outcome := proto.OutcomeSuccess
		if want.errno != 0 {
			outcome = proto.OutcomeFailure
		}
		// The header read from the task: name (comm), parent, user and process start.
		if e.Process.Name != filepath.Base(helper) || e.Process.Parent == nil || e.Process.Parent.Pid != os.Getpid() ||
			e.User == nil || e.User.ID != strconv.Itoa(os.Getuid()) || e.Process.StartBootNs == 0 {
			t.Errorf("%s: name %q parent %+v user %+v start %d; want %q, parent %d, uid %d", want.what, e.Process.Name,
				e.Process.Parent, e.User, e.Process.StartBootNs, filepath.Base(helper), os.Getpid(), os.Getuid())
		}
		if e.File.Flags != want.flags || e.File.Access != want.access || e.Event.Outcome != outcome || e.Vigil.Errno != want.errno {
			t.Errorf("%s: flags %q access %q outcome %s errno %d; want %q %q %s %d",
				want.what, e.File.Flags, e.File.Access, e.Event.Outcome, e.Vigil.Errno, want.flags, want.access, outcome, want.errno)
		}
	}
}
