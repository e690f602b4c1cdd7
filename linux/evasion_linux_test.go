package linux

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
)

// Evasion (issue 9, part 6): what a process in an agent's tree can do to get out of sight,
// and Falco's event-generator syscall actions performed inside the tree. Each test performs
// the technique for real under a tracked agent shell and asserts the events Vigil reports;
// docs/evasion.md is the table these tests back.

const evasionHelperArg = "vigil-evasion-helper"

// TestEvasionHelperProcess is the daemon of TestEvasionDaemonDoesTheWork and its client. The
// daemon (started outside any agent tree) serves one request on a unix socket: it reads a
// path, reads that file for the caller and answers with its own pid. The client (run inside
// the tree) sends the path and prints the answer.
func TestEvasionHelperProcess(t *testing.T) {
	args := flag.Args() // evasionHelperArg daemon|client socket [path]
	if len(args) < 3 || args[0] != evasionHelperArg {
		t.Skip("helper process of TestEvasionDaemonDoesTheWork")
	}
	switch args[1] {
	case "daemon":
		ln, err := net.Listen("unix", args[2])
		if err != nil {
			helperFail("listen", err)
		}
		fmt.Printf("daemon=%d\n", os.Getpid())
		conn, err := ln.Accept()
		if err != nil {
			helperFail("accept", err)
		}
		path, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			helperFail("read request", err)
		}
		data, err := os.ReadFile(strings.TrimSpace(path))
		if err != nil {
			helperFail("read file", err)
		}
		fmt.Fprintf(conn, "served-by=%d bytes=%d\n", os.Getpid(), len(data))
		conn.Close()
		os.Exit(0)
	case "client":
		conn, err := net.Dial("unix", args[2])
		if err != nil {
			helperFail("dial", err)
		}
		fmt.Fprintf(conn, "%s\n", args[3])
		answer, err := io.ReadAll(conn)
		if err != nil {
			helperFail("read answer", err)
		}
		fmt.Printf("client=%d %s", os.Getpid(), answer)
		os.Exit(0)
	}
	helperFail("mode", fmt.Errorf("unknown %q", args[1]))
}

// runInTree runs script with a fresh agent shell (a tracked root) in dir and returns the
// root's pid and the script's output.
func runInTree(t *testing.T, dir, script string) (int, string) {
	t.Helper()
	shell, _ := agentShell(t, "claude")
	cmd := exec.Command(shell, "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agent tree: %v\n%s", err, out)
	}
	return cmd.Process.Pid, string(out)
}

// under matches the events of the tree rooted at root that match.
func under(root int, match func(*proto.Event) bool) func(*proto.Event) bool {
	return func(e *proto.Event) bool { return e.Vigil.Root != nil && e.Vigil.Root.Pid == root && match(e) }
}

// isExecOf matches the exec of exactly this argv.
func isExecOf(argv ...string) func(*proto.Event) bool {
	return func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExec && slices.Equal(e.Process.Args, argv)
	}
}

// by narrows a matcher to one process.
func by(pid int, match func(*proto.Event) bool) func(*proto.Event) bool {
	return func(e *proto.Event) bool { return e.Process.Pid == pid && match(e) }
}

// said is the value of the first "key=value" word of out.
func said(t *testing.T, out, key string) int {
	t.Helper()
	for _, w := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(w, key+"="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s=%q in %q", key, v, out)
			}
			return n
		}
	}
	t.Fatalf("no %s= in the workload's output:\n%s", key, out)
	return 0
}

// fifo makes a named pipe: a workload blocks reading it until the test writes a line, so
// the test can look at the workload from outside first, without sleeping.
func fifo(t *testing.T, dir string) (path string, release func()) {
	t.Helper()
	path = filepath.Join(dir, "go")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		if err := os.WriteFile(path, []byte("go\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// killLater kills pid when the test ends, if it still runs then: a workload left blocked on
// its fifo by a failed test would otherwise outlive it (and keep whatever it inherited open).
// The pidfd names this process, not a later one with its pid.
func killLater(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	t.Cleanup(func() {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	})
}

// session is the session id of pid, from /proc/<pid>/stat (field 6).
func session(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// setsid -f and a double fork: the grandchild ends in its own session, reparented away from
// the tree (to init or a subreaper), after the agent root has exited. Membership is inherited
// at fork in the kernel, not looked up through the parent, so the orphan stays tracked: its
// open and exec are reported under the agent's root, with the parent the kernel gave it.
func TestEvasionSetsidDoubleFork(t *testing.T) {
	_, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	target := writeFile(t, dir, "read-by-orphan")
	gate, release := fifo(t, dir)
	orphan := filepath.Join(dir, "orphan.sh")
	body := fmt.Sprintf("echo \"gc=$$\"\nexec >/dev/null 2>&1\nread -r x < %s\nread -r x < %s\nexec /bin/true orphan-done\n", gate, target)
	if err := os.WriteFile(orphan, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	shell, _ := agentShell(t, "claude")
	// setsid -f forks and the child calls setsid(2); its sh (mid) backgrounds the orphan and
	// exits.
	cmd := exec.Command(shell, "-c", fmt.Sprintf(`setsid -f sh -c 'echo "mid=$$"; sh %s &'`, orphan))
	cmd.Dir = dir
	r := startPiped(t, cmd)
	var lines string
	for !strings.Contains(lines, "gc=") {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("workload output %q: %v", lines, err)
		}
		lines += l
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent root: %v", err)
	}
	root, gc, mid := cmd.Process.Pid, said(t, lines, "gc"), said(t, lines, "mid")
	killLater(t, gc)

	// From outside: the grandchild is in its own session and, once its parent has exited,
	// someone else's child.
	if sid := session(t, gc); sid == session(t, os.Getpid()) || sid == root {
		t.Fatalf("grandchild %d is in session %d: setsid did not take", gc, sid)
	}
	var ppid int
	for deadline := time.Now().Add(10 * time.Second); ; {
		p, _, ok := kernelStat(t, gc)
		if !ok {
			t.Fatalf("grandchild %d is gone", gc)
		}
		if p != mid {
			ppid = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still has its parent %d", gc, mid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()

	open := c.waitFor(t, "the orphan's open", 15*time.Second, under(root, by(gc, isOpenOf(target))))
	if open.Process.Parent.Pid != ppid || open.Vigil.PathSource != proto.PathSourceKernel {
		t.Errorf("orphan open: parent %d source %q, want the reaper %d and kernel", open.Process.Parent.Pid, open.Vigil.PathSource, ppid)
	}
	c.waitFor(t, "the orphan's exec", 15*time.Second, under(root, by(gc, isExecOf("/bin/true", "orphan-done"))))
	t.Logf("root %d exited; grandchild %d (parent %d exited) reparented to %d, new session: still reported under root %d", root, gc, mid, ppid, root)
}

// nohup only ignores SIGHUP and execs the command: the tree's exec of nohup and nohup's exec
// of the command (the same pid) are reported, and the command's open.
func TestEvasionNohup(t *testing.T) {
	_, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	target := writeFile(t, dir, "read-under-nohup")
	inner := "read -r x < " + target
	root, out := runInTree(t, dir, fmt.Sprintf("nohup sh -c '%s' >/dev/null 2>&1 & echo \"pid=$!\"; wait", inner))
	pid := said(t, out, "pid")
	c.waitFor(t, "exec of nohup", 15*time.Second, under(root, by(pid, isExecOf("nohup", "sh", "-c", inner))))
	c.waitFor(t, "nohup's exec of sh", 15*time.Second, under(root, by(pid, isExecOf("sh", "-c", inner))))
	c.waitFor(t, "the open under nohup", 15*time.Second, under(root, by(pid, isOpenOf(target))))
}

// A child in a new pid namespace is pid 1 there; Vigil reports it by its pid in the initial
// namespace, the one /proc/<pid>/status lists first in NSpid, and with the parent it has there.
func TestEvasionPidNamespace(t *testing.T) {
	testenv.LookPath(t, "unshare")
	_, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	target := writeFile(t, dir, "read-in-pidns")
	gate, release := fifo(t, dir)
	inner := fmt.Sprintf(`echo "inner=$$"; read -r x < %s; read -r x < %s; exec /bin/true in-pidns`, gate, target)
	shell, _ := agentShell(t, "claude")
	cmd := exec.Command(shell, "-c", fmt.Sprintf("unshare --pid --fork sh -c '%s' & echo \"unshare=$!\"; wait", inner))
	cmd.Dir = dir
	r := startPiped(t, cmd)
	var lines string
	for !strings.Contains(lines, "unshare=") || !strings.Contains(lines, "inner=") {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("workload output %q: %v", lines, err)
		}
		lines += l
	}
	root, unshare := cmd.Process.Pid, said(t, lines, "unshare")
	if inside := said(t, lines, "inner"); inside != 1 {
		t.Fatalf("the child is pid %d in its namespace, want 1: no new pid namespace", inside)
	}
	// From outside: unshare's child, and its pids in each namespace.
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", unshare, unshare))
	if err != nil || len(strings.Fields(string(kids))) != 1 {
		t.Fatalf("children of unshare %d: %q %v", unshare, kids, err)
	}
	child, _ := strconv.Atoi(strings.Fields(string(kids))[0])
	killLater(t, child)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", child))
	if err != nil {
		t.Fatal(err)
	}
	var nspid []string
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			nspid = strings.Fields(v)
		}
	}
	if !slices.Equal(nspid, []string{strconv.Itoa(child), "1"}) {
		t.Fatalf("NSpid of %d = %q, want [%d 1]", child, nspid, child)
	}
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent tree: %v", err)
	}

	exe := c.waitFor(t, "the namespaced child's exec of sh", 15*time.Second, under(root, isExecOf("sh", "-c", inner)))
	open := c.waitFor(t, "the namespaced child's open", 15*time.Second, under(root, isOpenOf(target)))
	fin := c.waitFor(t, "the namespaced child's exec of true", 15*time.Second, under(root, isExecOf("/bin/true", "in-pidns")))
	for _, e := range []*proto.Event{exe, open, fin} {
		if e.Process.Pid != child || e.Process.Parent.Pid != unshare {
			t.Errorf("%s: pid %d parent %d, want %d (NSpid %q) and parent %d", e.Event.Action, e.Process.Pid,
				e.Process.Parent.Pid, child, nspid, unshare)
		}
	}
	if open.Process.Thread == nil || open.Process.Thread.ID != child {
		t.Errorf("open: thread %+v, want %d", open.Process.Thread, child)
	}
}

// An interpreter reading its program from stdin (a here-document, which bash hands over
// through a pipe when it fits in one) has no script in its argv and no script file to open:
// its exec is reported, with an argv that names no script, and what the program does (opens,
// execs) like anything else in the tree. The program's text is not reported.
func TestEvasionInterpreterReadsScriptFromStdin(t *testing.T) {
	_, c := startSource(t, nil, nil)
	for _, tc := range []struct {
		interp string
		args   []string // after argv[0]
		marker string
		// program reads target and execs /bin/true marker.
		program func(target, marker string) string
	}{
		{"bash", nil, "stdin-bash", func(target, marker string) string {
			return fmt.Sprintf("read -r x < %s\nexec /bin/true %s\n", target, marker)
		}},
		{"python3", []string{"-"}, "stdin-python3", func(target, marker string) string {
			return fmt.Sprintf("import os\nopen(%q).read()\nos.execv('/bin/true', ['/bin/true', %q])\n", target, marker)
		}},
	} {
		t.Run(tc.interp, func(t *testing.T) {
			testenv.LookPath(t, tc.interp)
			dir := canonicalDir(t)
			target := writeFile(t, dir, "read-by-stdin-program")
			cmdline := strings.Join(append([]string{tc.interp}, tc.args...), " ")
			root, out := runInTree(t, dir, fmt.Sprintf("%s <<'VIGIL_EOF' &\n%sVIGIL_EOF\necho \"pid=$!\"; wait\n", cmdline, tc.program(target, tc.marker)))
			pid := said(t, out, "pid")
			// The interpreter's exec (python3 may be a launcher, e.g. a pyenv shim, that execs
			// the real one with the same arguments: the last exec before the program's).
			c.waitFor(t, "exec of "+cmdline, 15*time.Second, under(root, by(pid, func(e *proto.Event) bool {
				return e.Event.Action == proto.ActionExec && len(e.Process.Args) == 1+len(tc.args) &&
					strings.HasPrefix(filepath.Base(e.Process.Args[0]), tc.interp) && slices.Equal(e.Process.Args[1:], tc.args)
			})))
			c.waitFor(t, "the program's open", 15*time.Second, under(root, by(pid, isOpenOf(target))))
			c.waitFor(t, "the program's exec", 15*time.Second, under(root, by(pid, isExecOf("/bin/true", tc.marker))))
		})
	}
}

// A daemon that does work for the tree (systemd-run, at, a language server, dockerd: any
// process already running outside it) acts in its own name: its file access is not the
// tree's and is not reported. What is seen is the tree's side: the connect to the daemon's
// socket. The test's daemon reads a file on request; the sentinel open after its answer
// shows the tree's later events arrived, and the daemon's open is not among them.
func TestEvasionDaemonDoesTheWork(t *testing.T) {
	_, c := startSource(t, nil, nil)
	dir := canonicalDir(t)
	target := writeFile(t, dir, "read-by-the-daemon")
	sentinel := writeFile(t, dir, "sentinel")
	sock := filepath.Join(dir, "daemon.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The daemon starts from the test process, outside any agent tree.
	d := exec.Command(self, "-test.run=^TestEvasionHelperProcess$", "--", evasionHelperArg, "daemon", sock)
	stdout := startPiped(t, d)
	ready, err := stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("daemon: %q %v", ready, err)
	}
	daemon := said(t, ready, "daemon")

	root, out := runInTree(t, dir, fmt.Sprintf("%s -test.run='^TestEvasionHelperProcess$' -- %s client %s %s; read -r x < %s",
		self, evasionHelperArg, sock, target, sentinel))
	if said(t, out, "served-by") != daemon {
		t.Fatalf("the request was not served by the daemon %d:\n%s", daemon, out)
	}
	client := said(t, out, "client")
	conn := c.waitFor(t, "the client's connect to the daemon's socket", 15*time.Second, under(root, by(client, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionConnect && e.Destination != nil && e.Destination.Address == sock
	})))
	if conn.Network == nil || conn.Network.Type != "unix" || conn.Event.Outcome != proto.OutcomeSuccess {
		t.Errorf("connect: network %+v outcome %s, want unix, success", conn.Network, conn.Event.Outcome)
	}
	c.waitFor(t, "the tree's open after the daemon answered", 15*time.Second, under(root, isOpenOf(sentinel)))
	for _, e := range c.snapshot() {
		if e.Process.Pid == daemon || (e.File != nil && e.File.Path == target) {
			t.Errorf("the daemon's work was reported: %s pid %d %+v", e.Event.Action, e.Process.Pid, e.File)
		}
	}
}

// Falco's event-generator syscall collection (github.com/falcosecurity/event-generator,
// events/syscall), the actions it runs by default, each performed inside an agent tree with
// the syscalls the action makes. Where an action writes to a system directory the test does
// it in a temporary directory (the syscall is the same, the rule that names the directory is
// Falco's, not Vigil's); where its tool is missing here the stand-in is named in the subtest.
// The actions Vigil has no probe for (ptrace, AF_PACKET sockets) have no subtest: see
// docs/evasion.md. FilelessExecutionViaMemfdCreate is TestFilelessExecIsReportedAsMemfd.
func TestEvasionFalcoSyscallActions(t *testing.T) {
	_, c := startSource(t, nil, nil)
	wait := func(t *testing.T, what string, match func(*proto.Event) bool) *proto.Event {
		t.Helper()
		return c.waitFor(t, what, 15*time.Second, match)
	}
	execIn := func(root int, argv ...string) func(*proto.Event) bool { return under(root, isExecOf(argv...)) }

	t.Run("ClearLogActivities", func(t *testing.T) {
		// open(syslog, O_WRONLY|O_CREAT|O_TRUNC): an open, with its flags.
		dir := canonicalDir(t)
		root, _ := runInTree(t, dir, ": > syslog")
		e := wait(t, "open of syslog", under(root, by(root, isOpenOf(filepath.Join(dir, "syslog")))))
		if e.File.Flags != "O_WRONLY|O_CREAT|O_TRUNC" || e.File.Access != "write" || e.Vigil.PathSource != proto.PathSourceKernel {
			t.Errorf("open: flags %q access %q source %q", e.File.Flags, e.File.Access, e.Vigil.PathSource)
		}
	})

	t.Run("CreateHardlinkOverSensitiveFiles", func(t *testing.T) {
		// linkat(/etc/shadow, shadow_link), then a read through the link. The open is named
		// by the link (a hard link is another name of the inode, the one the kernel walked):
		// only the link event ties it to /etc/shadow.
		dir := canonicalDir(t)
		link := filepath.Join(dir, "shadow_link")
		var etc, tmp unix.Stat_t
		if unix.Stat("/etc/shadow", &etc) != nil || unix.Stat(dir, &tmp) != nil {
			t.Fatal("stat /etc/shadow or the temp dir")
		}
		sameFS := etc.Dev == tmp.Dev
		root, _ := runInTree(t, dir, "ln /etc/shadow shadow_link 2>/dev/null && read -r x < shadow_link; true")
		e := wait(t, "link to /etc/shadow", under(root, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionLink && e.File.Path == link
		}))
		if e.File.TargetPath != "/etc/shadow" {
			t.Errorf("link target %q, want /etc/shadow", e.File.TargetPath)
		}
		if !sameFS {
			// Another file system: the link fails with EXDEV, reported as such.
			if e.Event.Outcome != proto.OutcomeFailure || e.Vigil.Errno != int(unix.EXDEV) {
				t.Errorf("cross-device link: outcome %s errno %d, want failure EXDEV", e.Event.Outcome, e.Vigil.Errno)
			}
			return
		}
		if e.Event.Outcome != proto.OutcomeSuccess {
			t.Errorf("link: outcome %s errno %d", e.Event.Outcome, e.Vigil.Errno)
		}
		o := wait(t, "read through the link", under(root, by(root, isOpenOf(link))))
		if o.Vigil.PathSource != proto.PathSourceKernel {
			t.Errorf("open source %q", o.Vigil.PathSource)
		}
	})

	t.Run("CreateSymlinkOverSensitiveFiles", func(t *testing.T) {
		// symlinkat(/etc, etc_link), then ls etc_link/: the directory open is /etc.
		dir := canonicalDir(t)
		root, _ := runInTree(t, dir, "ln -s /etc etc_link && ls etc_link/ >/dev/null")
		s := wait(t, "symlink to /etc", under(root, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionSymlink && e.File.Path == filepath.Join(dir, "etc_link")
		}))
		if s.File.TargetPath != "/etc" || s.Event.Outcome != proto.OutcomeSuccess {
			t.Errorf("symlink: target %q outcome %s", s.File.TargetPath, s.Event.Outcome)
		}
		o := wait(t, "ls's open of /etc through the link", under(root, isOpenOf("/etc")))
		if !strings.Contains(o.File.Flags, "O_DIRECTORY") || o.Vigil.PathSource != proto.PathSourceKernel {
			t.Errorf("open: flags %q source %q", o.File.Flags, o.Vigil.PathSource)
		}
	})

	t.Run("DirectoryTraversalMonitoredFileRead", func(t *testing.T) {
		root, _ := runInTree(t, canonicalDir(t), "read -r x < /etc/../etc/../etc/shadow")
		o := wait(t, "open of /etc/shadow", under(root, by(root, isOpenOf("/etc/shadow"))))
		if o.Vigil.PathSource != proto.PathSourceKernel || o.Event.Outcome != proto.OutcomeSuccess {
			t.Errorf("open: source %q outcome %s", o.Vigil.PathSource, o.Event.Outcome)
		}
	})

	t.Run("DisallowedSSHConnectionNonStandardPort", func(t *testing.T) {
		// ssh to a port other than 22: its exec and its connect. The peer is a local
		// listener that closes at once (example.com:443 in the suite).
		ssh := testenv.LookPath(t, "ssh")
		port := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port
		argv := []string{"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-p", strconv.Itoa(port), "user@127.0.0.1", "true"}
		root, _ := runInTree(t, canonicalDir(t), strings.Join(argv, " ")+" 2>/dev/null; true")
		e := wait(t, "exec of ssh", execIn(root, argv...))
		if e.Process.Executable != ssh {
			t.Errorf("ssh executable %q, want %q", e.Process.Executable, ssh)
		}
		conn := wait(t, "ssh's connect", under(root, by(e.Process.Pid, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionConnect && e.Destination != nil && e.Destination.Port == port
		})))
		if conn.Destination.IP != "127.0.0.1" || conn.Event.Outcome != proto.OutcomeSuccess {
			t.Errorf("connect: %+v %s", conn.Destination, conn.Event.Outcome)
		}
	})

	t.Run("ExecutionFromDevShm", func(t *testing.T) {
		// The tree writes a script to /dev/shm, makes it executable and runs it.
		script := filepath.Join("/dev/shm", fmt.Sprintf("vigil-evasion-%d.sh", os.Getpid()))
		t.Cleanup(func() { os.Remove(script) })
		root, _ := runInTree(t, canonicalDir(t), fmt.Sprintf(`printf '#!/bin/sh\necho hello\n' > %[1]s && chmod 755 %[1]s && sh -c %[1]s >/dev/null`, script))
		o := wait(t, "the write of the script", under(root, isOpenOf(script)))
		if o.File.Access != "write" {
			t.Errorf("open access %q", o.File.Access)
		}
		wait(t, "its chmod", under(root, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionChmod && e.File.Path == script && e.File.Mode == "0755"
		}))
		// sh -c runs the script by execve(2); binfmt_script re-executes its interpreter with
		// the script's path as the argument: the exec is the interpreter's, the script in argv.
		e := wait(t, "the exec from /dev/shm", execIn(root, "/bin/sh", script))
		if sh, err := filepath.EvalSymlinks("/bin/sh"); err != nil || e.Process.Executable != sh {
			t.Errorf("exec from /dev/shm: executable %q, want the interpreter %q (%v)", e.Process.Executable, sh, err)
		}
	})

	for _, tc := range []struct{ name, iname string }{
		{"FindAwsCredentials", ".aws/credentials"},
		{"SearchPrivateKeysOrPasswords", "id_rsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// find <tmp> -maxdepth 1 -iname <name>: the search is the command line; find's
			// open of the directory it searches.
			argv := []string{"find", os.TempDir(), "-maxdepth", "1", "-iname", tc.iname}
			root, _ := runInTree(t, canonicalDir(t), strings.Join(argv, " ")+" >/dev/null")
			e := wait(t, "exec of find", execIn(root, argv...))
			tmp, err := filepath.EvalSymlinks(os.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			wait(t, "find's open of "+tmp, under(root, by(e.Process.Pid, isOpenOf(tmp))))
		})
	}

	t.Run("LaunchSuspiciousNetworkToolOnHost", func(t *testing.T) {
		// nmap -sn 172.17.0.1/32. nmap is not installed here: a stand-in executable named
		// nmap shows the exec, which is what the rule keys on. nmap's raw-socket probes
		// (sendto without connect) are not seen today: see docs/evasion.md.
		dir := canonicalDir(t)
		nmap, _ := copyExecutable(t, "/bin/true", dir, "nmap")
		root, _ := runInTree(t, dir, "./nmap -sn 172.17.0.1/32")
		e := wait(t, "exec of nmap", execIn(root, "./nmap", "-sn", "172.17.0.1/32"))
		if e.Process.Executable != nmap || e.Process.Name != "nmap" {
			t.Errorf("exec: executable %q name %q, want %q nmap", e.Process.Executable, e.Process.Name, nmap)
		}
	})

	t.Run("ReadSensitiveFileUntrusted", func(t *testing.T) {
		root, _ := runInTree(t, canonicalDir(t), "cat /etc/shadow >/dev/null")
		e := wait(t, "cat's exec", execIn(root, "cat", "/etc/shadow"))
		o := wait(t, "cat's open of /etc/shadow", under(root, by(e.Process.Pid, isOpenOf("/etc/shadow"))))
		if o.File.Access != "read" || o.Event.Outcome != proto.OutcomeSuccess {
			t.Errorf("open: access %q outcome %s", o.File.Access, o.Event.Outcome)
		}
	})

	// The suite runs itself through a symlink named httpd: a process that calls itself a web
	// server reads /etc/shadow (after running 6 s, which is Falco's rule's condition) or
	// spawns a shell. Here the symlink points to bash.
	httpd := func(t *testing.T, script string) (root, pid int) {
		dir := canonicalDir(t)
		if err := os.Symlink("/bin/bash", filepath.Join(dir, "httpd")); err != nil {
			t.Fatal(err)
		}
		root, _ = runInTree(t, dir, fmt.Sprintf("./httpd -c '%s'", script))
		e := wait(t, "exec of httpd", execIn(root, "./httpd", "-c", script))
		if e.Process.Name != "httpd" {
			t.Errorf("httpd exec: name %q executable %q", e.Process.Name, e.Process.Executable)
		}
		return root, e.Process.Pid
	}
	t.Run("ReadSensitiveFileTrustedAfterStartup", func(t *testing.T) {
		root, pid := httpd(t, "read -r x < /etc/shadow")
		wait(t, "httpd's open of /etc/shadow", under(root, by(pid, isOpenOf("/etc/shadow"))))
	})
	t.Run("RunShellUntrusted", func(t *testing.T) {
		root, pid := httpd(t, "sh -c \"ls > /dev/null\"; true")
		e := wait(t, "httpd's shell", execIn(root, "sh", "-c", "ls > /dev/null"))
		if e.Process.Parent.Pid != pid {
			t.Errorf("shell's parent %d, want httpd %d", e.Process.Parent.Pid, pid)
		}
	})

	t.Run("RemoveBulkDataFromDisk", func(t *testing.T) {
		// shred -u: overwrite (an open for write), rename to shorter names of zeros, unlink.
		testenv.LookPath(t, "shred")
		dir := canonicalDir(t)
		bulk := filepath.Join(dir, "bulk")
		root, _ := runInTree(t, dir, "printf 'bulk data content' > bulk && shred -u bulk")
		e := wait(t, "exec of shred", execIn(root, "shred", "-u", "bulk"))
		pid := e.Process.Pid
		o := wait(t, "shred's open of the file", under(root, by(pid, isOpenOf(bulk))))
		if o.File.Access == "read" {
			t.Errorf("shred's open access %q, want write", o.File.Access)
		}
		wait(t, "shred's rename", under(root, by(pid, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionRename && e.Vigil.Rename != nil && e.Vigil.Rename.Source == bulk
		})))
		wait(t, "shred's unlink", under(root, by(pid, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionUnlink && filepath.Dir(e.File.Path) == dir && e.Event.Outcome == proto.OutcomeSuccess
		})))
	})

	t.Run("SystemUserInteractive", func(t *testing.T) {
		// /bin/login run as the daemon user (uid 1): the exec, with the user it ran as.
		testenv.LookPath(t, "setpriv")
		login := testenv.LookPath(t, "login")
		root, _ := runInTree(t, canonicalDir(t), fmt.Sprintf("setpriv --reuid=1 --regid=1 --clear-groups %s </dev/null 2>/dev/null; true", login))
		e := wait(t, "exec of login as uid 1", under(root, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionExec && len(e.Process.Args) == 1 && e.Process.Args[0] == login
		}))
		if e.User == nil || e.User.ID != "1" {
			t.Errorf("login exec user %+v, want id 1", e.User)
		}
	})

	// The suite's container-only actions, on the host: the syscalls are the same.
	t.Run("DebugfsLaunchedInPrivilegedContainer", func(t *testing.T) {
		// debugfs -V in new user and mount namespaces: the exec (the namespaces are not
		// reported).
		debugfs := testenv.LookPath(t, "debugfs")
		root, _ := runInTree(t, canonicalDir(t), fmt.Sprintf("unshare --user --mount %s -V 2>/dev/null", debugfs))
		wait(t, "exec of debugfs", execIn(root, debugfs, "-V"))
	})
	t.Run("MountLaunchedInPrivilegedContainer", func(t *testing.T) {
		// mount -o (a usage error: no mount(2) call) in new user and mount namespaces.
		mount := testenv.LookPath(t, "mount")
		root, _ := runInTree(t, canonicalDir(t), fmt.Sprintf("unshare --user --mount %s -o 2>/dev/null; true", mount))
		wait(t, "exec of mount", execIn(root, mount, "-o"))
	})
	t.Run("DetectReleaseAgentFileContainerEscapes", func(t *testing.T) {
		dir := canonicalDir(t)
		root, _ := runInTree(t, dir, "echo 'hello world' > release_agent")
		o := wait(t, "open of release_agent for write", under(root, isOpenOf(filepath.Join(dir, "release_agent"))))
		if o.File.Access != "write" {
			t.Errorf("open access %q", o.File.Access)
		}
	})
	t.Run("DropAndExecuteNewBinaryInContainer", func(t *testing.T) {
		// A copy of ls written and run (in a temp dir, not /bin).
		dir := canonicalDir(t)
		dropped := filepath.Join(dir, "dropped")
		root, _ := runInTree(t, dir, "cp /bin/ls dropped && ./dropped >/dev/null")
		// cp first opens the destination O_PATH|O_DIRECTORY (is it a directory?), then creates it.
		o := wait(t, "the write of the binary", under(root, func(e *proto.Event) bool {
			return isOpenOf(dropped)(e) && e.File.Access == "write"
		}))
		if !strings.Contains(o.File.Flags, "O_CREAT") {
			t.Errorf("open flags %q", o.File.Flags)
		}
		e := wait(t, "its exec", execIn(root, "./dropped"))
		if e.Process.Executable != dropped {
			t.Errorf("exec executable %q, want %q", e.Process.Executable, dropped)
		}
	})
	t.Run("NetcatRemoteCodeExecutionInContainer", func(t *testing.T) {
		// nc -e /bin/sh host port: connect, then a shell whose stdio is the socket. nc is
		// not installed here: bash does the same syscalls (connect, dup2, execve).
		port := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port
		root, out := runInTree(t, canonicalDir(t), fmt.Sprintf(`( echo "pid=$BASHPID"; exec 3<>/dev/tcp/127.0.0.1/%d; exec /bin/sh -c 'exit 0' <&3 >&3 )`, port))
		pid := said(t, out, "pid")
		wait(t, "the connect", under(root, by(pid, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionConnect && e.Destination != nil && e.Destination.Port == port
		})))
		wait(t, "the shell over the socket", under(root, by(pid, isExecOf("/bin/sh", "-c", "exit 0"))))
	})
}

// startPiped starts cmd with its standard output piped to the test, and kills it when the
// test ends.
func startPiped(t *testing.T, cmd *exec.Cmd) *bufio.Reader {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return bufio.NewReader(stdout)
}
