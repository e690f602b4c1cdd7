package linux

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// TestCaptureRecords regenerates linux/testdata/records: real ring-buffer records of a known
// workload, and expected.json with what each should decode to (pids, paths and ports the
// capture knew independently of the decoder). decode_linux_test.go replays them.
//
// The kernel leaves stale bytes in its per-CPU scratch records past the lengths it reports
// (previous paths, argv, and environment strings of other processes in the join-key slots);
// scrubRecord zeroes exactly those bytes before a record is written, and the capture checks
// that the scrubbed record decodes to the same event.

const (
	captureEnv = "VIGIL_CAPTURE_RECORDS"
	helperArg  = "vigil-capture-helper"
	// envMarker is a non-allowlisted variable of the workload: it must never reach a record.
	envMarker = "VIGIL_NOT_ALLOWLISTED="
)

// captureKeyEnv are the join keys the workload sets (made-up values, no secrets), and
// captureJoin what the records must carry of them.
var (
	captureKeyEnv = []string{
		"TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"CODEX_TOOL_CALL_ID=call_capture_1",
		"CLAUDE_CODE_SESSION_ID=capture-session-1",
		"CODEX_SESSION_ID=capture-conversation-1",
		"AI_AGENT=claude-code_capture",
		"CLAUDECODE=1",
	}
	captureJoin = *agents.JoinKeysOf(captureKeyEnv...)
)

// recordView is what a record is compared on: the fields the capture knows.
type recordView struct {
	Action           string             `json:"action"`
	Outcome          string             `json:"outcome"`
	Errno            int                `json:"errno,omitempty"`
	Pid              int                `json:"pid"`
	Ppid             int                `json:"ppid"`
	Root             int                `json:"root"`
	Agent            string             `json:"agent,omitempty"`
	Executable       string             `json:"executable,omitempty"`
	WorkingDirectory string             `json:"working_directory,omitempty"`
	Args             []string           `json:"args,omitempty"`
	ArgsCount        int                `json:"args_count,omitempty"`
	Join             *proto.JoinKeys    `json:"join,omitempty"`
	ExitCode         *int               `json:"exit_code,omitempty"`
	File             *proto.File        `json:"file,omitempty"`
	PathSource       string             `json:"path_source,omitempty"`
	Exe              *proto.Exe         `json:"exe,omitempty"`
	Network          string             `json:"network,omitempty"`
	Destination      *proto.Destination `json:"destination,omitempty"`
	Truncated        []string           `json:"truncated,omitempty"`
	Type             []string           `json:"type,omitempty"`
	Rename           *proto.Rename      `json:"rename,omitempty"`
	Setid            bool               `json:"setid,omitempty"`
	AddressSource    string             `json:"address_source,omitempty"`
	Syscall          string             `json:"syscall,omitempty"`
}

func viewOf(e *proto.Event) recordView {
	v := recordView{
		Action:           e.Event.Action,
		Outcome:          e.Event.Outcome,
		Errno:            e.Vigil.Errno,
		Pid:              e.Process.Pid,
		Executable:       e.Process.Executable,
		WorkingDirectory: e.Process.WorkingDirectory,
		Args:             e.Process.Args,
		ArgsCount:        e.Process.ArgsCount,
		Join:             e.Vigil.Join,
		ExitCode:         e.Process.ExitCode,
		File:             e.File,
		PathSource:       e.Vigil.PathSource,
		Exe:              e.Vigil.Exe,
		Destination:      e.Destination,
		Truncated:        e.Vigil.Truncated,
		Type:             e.Event.Type,
		Rename:           e.Vigil.Rename,
		Setid:            e.Vigil.Setid,
		AddressSource:    e.Vigil.AddressSource,
		Syscall:          e.Vigil.Syscall,
	}
	if e.Process.Parent != nil {
		v.Ppid = e.Process.Parent.Pid
	}
	if e.Vigil.Root != nil {
		v.Root = e.Vigil.Root.Pid
	}
	if e.GenAI != nil && e.GenAI.Agent != nil {
		v.Agent = e.GenAI.Agent.Name
	}
	if e.Network != nil {
		v.Network = e.Network.Type
	}
	return v
}

// expectedRecord is one entry of expected.json.
type expectedRecord struct {
	File string     `json:"file"`
	What string     `json:"what"`
	Want recordView `json:"want"`
}

// TestCaptureHelperProcess is the part of the workload bash cannot do (unix sockets, a
// non-blocking connect, sends to named destinations, io_uring). It runs only as a child of
// TestCaptureRecords.
func TestCaptureHelperProcess(t *testing.T) {
	args := flag.Args() // helperArg unix-path abstract-name ipv4-port udp4-port udp6-port dgram-path file
	if len(args) == 0 || args[0] != helperArg {
		t.Skip("helper process of TestCaptureRecords")
	}
	if args = args[1:]; len(args) != 7 {
		fmt.Printf("helper: want 7 args, got %q\n", args)
		os.Exit(2)
	}
	fmt.Printf("helper=%d\n", os.Getpid())
	socket := func(domain, typ int) int {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			helperFail("socket", err)
		}
		return fd
	}
	connect := func(key string, domain, typ int, sa unix.Sockaddr) {
		fd := socket(domain, typ)
		defer unix.Close(fd)
		errno := 0
		if err := unix.Connect(fd, sa); err != nil {
			var en unix.Errno
			if !errors.As(err, &en) {
				os.Exit(2)
			}
			errno = int(en)
		}
		fmt.Printf("%s=%d\n", key, errno)
	}
	connect("unix", unix.AF_UNIX, unix.SOCK_STREAM, &unix.SockaddrUnix{Name: args[0]})
	connect("abstract", unix.AF_UNIX, unix.SOCK_STREAM, &unix.SockaddrUnix{Name: args[1]})
	port, _ := strconv.Atoi(args[2])
	connect("nonblock", unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})

	// Datagrams to named destinations, no connect: sendto, sendmmsg (two messages), sendmsg.
	udp4, _ := strconv.Atoi(args[3])
	udp6, _ := strconv.Atoi(args[4])
	fd4 := socket(unix.AF_INET, unix.SOCK_DGRAM)
	if err := unix.Sendto(fd4, []byte("q"), 0, &unix.SockaddrInet4{Port: udp4, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		helperFail("sendto", err)
	}
	fd6 := socket(unix.AF_INET6, unix.SOCK_DGRAM)
	sa6 := make([]byte, unix.SizeofSockaddrInet6)
	sa6[0], sa6[2], sa6[3], sa6[23] = unix.AF_INET6, byte(udp6>>8), byte(udp6), 1 // [::1]:udp6
	payload := []byte("q")
	iov := unix.Iovec{Base: &payload[0], Len: 1}
	var msgs [2]struct {
		hdr unix.Msghdr
		n   uint32
		_   uint32
	}
	for i := range msgs {
		msgs[i].hdr = unix.Msghdr{Name: &sa6[0], Namelen: uint32(len(sa6)), Iov: &iov, Iovlen: 1}
	}
	if n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd6), uintptr(unsafe.Pointer(&msgs[0])), 2, 0, 0, 0); errno != 0 || n != 2 {
		helperFail("sendmmsg", fmt.Errorf("sent %d: %v", n, errno))
	}
	dgram := socket(unix.AF_UNIX, unix.SOCK_DGRAM)
	if err := unix.Sendmsg(dgram, []byte("q"), nil, &unix.SockaddrUnix{Name: args[5]}, 0); err != nil {
		helperFail("sendmsg unix", err)
	}

	// The same through io_uring: an open, a connect, a send, and a mkdir no probe reports.
	ring, err := newIORing()
	if err != nil {
		helperFail("io_uring", err)
	}
	defer ring.close()
	if fd := ring.openat(unix.AT_FDCWD, args[6], unix.O_RDONLY|unix.O_CLOEXEC); fd < 0 {
		helperFail("io_uring openat", unix.Errno(-fd))
	}
	if res := ring.openat(unix.AT_FDCWD, args[6]+".missing", unix.O_RDONLY); res != -int32(unix.ENOENT) {
		helperFail("io_uring openat of a missing file", fmt.Errorf("res %d", res))
	}
	tcp := socket(unix.AF_INET, unix.SOCK_STREAM)
	if res := ring.connect(tcp, rawSockaddrInet4([4]byte{127, 0, 0, 1}, port)); res != 0 {
		helperFail("io_uring connect", unix.Errno(-res))
	}
	if res := ring.sendmsg(fd4, rawSockaddrInet4([4]byte{127, 0, 0, 1}, udp4), []byte("q")); res != 1 {
		helperFail("io_uring sendmsg", fmt.Errorf("res %d", res))
	}
	if res := ring.mkdirat(unix.AT_FDCWD, args[6]+".dir"); res != 0 {
		helperFail("io_uring mkdirat", unix.Errno(-res))
	}
	os.Exit(0)
}

// listenPacket opens a datagram socket the workload sends to; nobody reads it.
func listenPacket(t *testing.T, network, addr string) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

func TestCaptureRecords(t *testing.T) {
	out := os.Getenv(captureEnv)
	if out == "" {
		t.Skipf("regenerates the decoder's real samples; run as root: %s=$PWD/linux/testdata/records go test -run TestCaptureRecords ./linux/", captureEnv)
	}
	requireKernel(t)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(out, "*.bin"))
	for _, f := range old {
		os.Remove(f)
	}

	src, err := NewEBPF(Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatalf("NewEBPF: %v", err)
	}
	defer src.Close()

	// Read raw records straight from the ring while the workload runs.
	var raws [][]byte
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var rec ringbuf.Record
		for {
			src.reader.SetDeadline(time.Now().Add(50 * time.Millisecond))
			err := src.reader.ReadInto(&rec)
			switch {
			case err == nil:
				raws = append(raws, bytes.Clone(rec.RawSample))
				continue
			case errors.Is(err, os.ErrDeadlineExceeded):
			default:
				done <- err
				return
			}
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
		}
	}()

	shell, dir := agentShell(t, "claude")
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs := writeFile(t, dir, "abs.txt")
	writeFile(t, filepath.Join(dir, "sub"), "rel.txt")
	linked := writeFile(t, dir, "linked.txt")
	if err := os.Symlink(linked, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	// Deeper than the kernel's walk bound (PATH_SLOT bytes): reported from the leaf side.
	deepDir := filepath.Join(append([]string{dir}, slices.Repeat([]string{strings.Repeat("d", 60)}, 20)...)...)
	if err := os.MkdirAll(deepDir, 0o755); err != nil {
		t.Fatal(err)
	}
	deep := writeFile(t, deepDir, "deep.txt")
	created := filepath.Join(dir, "created.txt")
	sock := filepath.Join(dir, "s.sock")
	abstract := fmt.Sprintf("@vigil-capture-%d", os.Getpid())
	listen(t, "unix", sock)
	listen(t, "unix", abstract)
	p4 := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port
	p6 := listen(t, "tcp6", "[::1]:0").Addr().(*net.TCPAddr).Port
	u4 := listenPacket(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	u6 := listenPacket(t, "udp6", "[::1]:0").LocalAddr().(*net.UDPAddr).Port
	dgram := filepath.Join(dir, "d.sock")
	listenPacket(t, "unixgram", dgram)
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	helper, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	script := strings.Join([]string{
		"read -r x < " + abs,
		"read -r x < sub/rel.txt",
		"{ read -r x < missing.txt; } 2>/dev/null",
		"read -r x < link",
		"read -r x < " + deep,
		": > " + created,
		`/bin/true "" mid "" & echo "true=$!"; wait $!`,
		`env -i /bin/true nokeys & echo "envi=$!"; wait $!`,
		`( echo "sub=$BASHPID"; exit 3 ); echo "subexit=$?"`,
		`/bin/sleep 30 & echo "killed=$!"; kill -KILL $!; wait $!; echo "killexit=$?"`,
		fmt.Sprintf(": 3<>/dev/tcp/127.0.0.1/%d", p4),
		fmt.Sprintf(": 3<>/dev/tcp/::1/%d", p6),
		fmt.Sprintf(`{ : 3<>/dev/tcp/127.0.0.1/%d; } 2>/dev/null; echo "refused=$?"`, refused),
		fmt.Sprintf("%s -test.run='^TestCaptureHelperProcess$' -- %s %s %s %d %d %d %s %s", helper, helperArg, sock, abstract, p4, u4, u6, dgram, abs),
		fmt.Sprintf("%s -test.run='^TestMemfdHelperProcess$' -- %s /bin/true memfd", helper, memfdHelperArg),
		`echo x > mv-src; mv mv-src mv-dst & echo "mv=$!"; wait $!`,
		`rm missing-rm 2>/dev/null & echo "rm=$!"; wait $!`,
		`ln -s /etc etc-link & echo "ln=$!"; wait $!`,
		`echo x > suid; chmod u+s suid & echo "chmod=$!"; wait $!`,
		`chown 1234:5678 suid & echo "chown=$!"; wait $!`,
		`truncate -s 0 suid & echo "truncate=$!"; wait $!`,
		"exit 0",
	}, "\n")
	cmd := exec.Command(shell, "-c", script)
	cmd.Dir = dir
	// Only allowlisted keys, PATH and a harmless marker placed right before the keys: the
	// kernel's scratch buffer still holds it when it copies the next value.
	cmd.Env = append(append([]string{envMarker + strings.Repeat("marker-", 30)}, captureKeyEnv...), "PATH=/usr/bin:/bin")
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("workload: %v\n%s", err, output)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("read ring buffer: %v", err)
	}

	// What the workload said about itself.
	said := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(output))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				said[k] = n
			}
		}
	}
	for _, k := range []string{"true", "envi", "sub", "subexit", "killed", "killexit", "refused", "helper", "unix", "abstract", "nonblock", "pid", "mv", "rm", "ln", "chmod", "chown", "truncate"} {
		if _, ok := said[k]; !ok {
			t.Fatalf("workload did not report %q:\n%s", k, output)
		}
	}
	if said["subexit"] != 3 || said["killexit"] != 137 || said["refused"] == 0 || said["unix"] != 0 || said["abstract"] != 0 {
		t.Fatalf("workload did not do what it should:\n%s", output)
	}

	root, self := cmd.Process.Pid, os.Getpid()
	trueExe, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	realShell := filepath.Join(realDir, filepath.Base(shell))
	code := func(n int) *int { return &n }
	join := captureJoin
	nonblock := recordView{Action: proto.ActionConnect, Outcome: proto.OutcomeSuccess, Pid: said["helper"], Ppid: root, Root: root,
		Agent: "claude-code", Network: "ipv4", Destination: &proto.Destination{IP: "127.0.0.1", Port: p4},
		AddressSource: proto.AddressSourceKernel, Syscall: "connect"}
	if said["nonblock"] != 0 {
		nonblock.Outcome, nonblock.Errno = proto.OutcomeFailure, said["nonblock"]
		if said["nonblock"] == einprogress {
			nonblock.Outcome = proto.OutcomeUnknown
		}
	}
	type capCase struct {
		kind, name, what string
		match            func(*proto.Event) bool
		want             recordView
	}
	base := func(action string, pid, ppid int) recordView {
		return recordView{Action: action, Outcome: proto.OutcomeSuccess, Pid: pid, Ppid: ppid, Root: root, Agent: "claude-code"}
	}
	withExec := func(v recordView, exe string, args []string, keys *proto.JoinKeys) recordView {
		v.Executable, v.WorkingDirectory, v.Args, v.ArgsCount, v.Join = exe, realDir, args, len(args), keys
		v.Exe = exeIdentity(t, exe)
		return v
	}
	withExit := func(v recordView, n int) recordView { v.ExitCode = code(n); return v }
	withFile := func(v recordView, path, flags, access string, errno int) recordView {
		v.File = &proto.File{Path: path, Flags: flags, Access: access}
		v.PathSource = proto.PathSourceKernel
		if errno != 0 {
			v.Outcome, v.Errno, v.PathSource = proto.OutcomeFailure, errno, proto.PathSourceCaller
		}
		return v
	}
	// The deep file as the kernel reports it: the leaf-side components that fit PATH_SLOT.
	deepWant := kernelTruncated(filepath.Join(realDir, strings.TrimPrefix(deep, dir)), len(bpf.VigilOpenEvent{}.Path))
	// A network record's address is the kernel's copy; syscall "connect" unless said.
	withDest := func(v recordView, network string, d proto.Destination, errno int) recordView {
		v.Network, v.Destination, v.AddressSource, v.Syscall = network, &d, proto.AddressSourceKernel, "connect"
		if errno != 0 {
			v.Outcome, v.Errno = proto.OutcomeFailure, errno
		}
		return v
	}
	is := func(action string, pid int, more func(*proto.Event) bool) func(*proto.Event) bool {
		return func(e *proto.Event) bool {
			return e.Event.Action == action && e.Process.Pid == pid && (more == nil || more(e))
		}
	}
	path := func(p string) func(*proto.Event) bool {
		return func(e *proto.Event) bool { return e.File != nil && e.File.Path == p }
	}
	port := func(p int) func(*proto.Event) bool {
		return func(e *proto.Event) bool { return e.Destination != nil && e.Destination.Port == p }
	}
	via := func(syscall string, more func(*proto.Event) bool) func(*proto.Event) bool {
		return func(e *proto.Event) bool { return e.Vigil.Syscall == syscall && more(e) }
	}
	// A record a cgroup hook took as the kernel began the call: no result, outcome unknown.
	hooked := func(action, network, syscall string, d proto.Destination) recordView {
		v := withDest(base(action, said["helper"], root), network, d, 0)
		v.Outcome, v.Syscall = proto.OutcomeUnknown, syscall
		return v
	}
	address := func(a string) func(*proto.Event) bool {
		return func(e *proto.Event) bool { return e.Destination != nil && e.Destination.Address == a }
	}
	mutation := func(action, typ, pathSource string, pid int, file proto.File, errno int) recordView {
		v := base(action, pid, root)
		v.Type, v.PathSource, v.File = []string{typ}, pathSource, &file
		if errno != 0 {
			v.Outcome, v.Errno = proto.OutcomeFailure, errno
		}
		return v
	}
	size0 := int64(0)
	cases := []capCase{
		{"exec", "root", "the agent shell's exec: argv, the workload's six join keys, executable and cwd walked by the kernel",
			is(proto.ActionExec, root, nil), withExec(base(proto.ActionExec, root, self), realShell, []string{shell, "-c", script}, &join)},
		{"exec", "empty-args", "a child's exec with empty arguments, the last one too",
			is(proto.ActionExec, said["true"], nil), withExec(base(proto.ActionExec, said["true"], root), trueExe, []string{"/bin/true", "", "mid", ""}, &join)},
		{"exec", "no-join-keys", "exec under env -i: no join keys",
			is(proto.ActionExec, said["envi"], func(e *proto.Event) bool { return len(e.Process.Args) > 0 && e.Process.Args[0] == "/bin/true" }),
			withExec(base(proto.ActionExec, said["envi"], root), trueExe, []string{"/bin/true", "nokeys"}, nil)},
		{"exec", "memfd", "a fileless exec (memfd_create, write, execve of /proc/self/fd/N): named as the memfd",
			is(proto.ActionExec, said["pid"], func(e *proto.Event) bool { return len(e.Process.Args) > 0 && e.Process.Args[0] == "payload" }),
			func() recordView {
				v := withExec(base(proto.ActionExec, said["pid"], root), "memfd:payload", []string{"payload", "memfd"}, nil)
				v.Exe = nil // the memfd's identity is unknown here: checked below, then not compared
				return v
			}()},
		{"fork", "subshell", "the root forks a subshell",
			is(proto.ActionFork, said["sub"], nil), base(proto.ActionFork, said["sub"], root)},
		{"exit", "code-3", "the subshell exits with status 3",
			is(proto.ActionExit, said["sub"], nil), withExit(base(proto.ActionExit, said["sub"], root), 3)},
		{"exit", "sigkill", "a child killed by SIGKILL: 128+9",
			is(proto.ActionExit, said["killed"], nil), withExit(base(proto.ActionExit, said["killed"], root), 137)},
		{"exit", "root-0", "the agent root exits 0",
			is(proto.ActionExit, root, nil), withExit(base(proto.ActionExit, root, self), 0)},
		{"open", "absolute", "open of an absolute path: the kernel walks the opened file; the record ends right after the walk",
			is(proto.ActionOpen, root, path(filepath.Join(realDir, "abs.txt"))), withFile(base(proto.ActionOpen, root, self), filepath.Join(realDir, "abs.txt"), "O_RDONLY", "read", 0)},
		{"open", "relative", "successful relative open: the kernel walks the opened file",
			is(proto.ActionOpen, root, path(filepath.Join(realDir, "sub", "rel.txt"))),
			withFile(base(proto.ActionOpen, root, self), filepath.Join(realDir, "sub", "rel.txt"), "O_RDONLY", "read", 0)},
		{"open", "relative-missing", "failed relative open: the kernel walks the cwd, ENOENT",
			is(proto.ActionOpen, root, path(filepath.Join(realDir, "missing.txt"))),
			withFile(base(proto.ActionOpen, root, self), filepath.Join(realDir, "missing.txt"), "O_RDONLY", "read", int(unix.ENOENT))},
		{"open", "symlink", "open through a symlink: the kernel's path of the file opened, not the link",
			is(proto.ActionOpen, root, path(filepath.Join(realDir, "linked.txt"))),
			withFile(base(proto.ActionOpen, root, self), filepath.Join(realDir, "linked.txt"), "O_RDONLY", "read", 0)},
		{"open", "deep", "a path longer than the walk bound: truncated from the root side, never absolute",
			is(proto.ActionOpen, root, func(e *proto.Event) bool { return e.File != nil && strings.HasSuffix(e.File.Path, "/deep.txt") }),
			func() recordView {
				v := withFile(base(proto.ActionOpen, root, self), deepWant, "O_RDONLY", "read", 0)
				v.Truncated = []string{"file.path"}
				return v
			}()},
		{"open", "create", "open with O_WRONLY|O_CREAT|O_TRUNC (a shell redirection)",
			is(proto.ActionOpen, root, path(created)), withFile(base(proto.ActionOpen, root, self), created, "O_WRONLY|O_CREAT|O_TRUNC", "write", 0)},
		{"connect", "ipv4", "connect to a 127.0.0.1 listener",
			is(proto.ActionConnect, root, port(p4)), withDest(base(proto.ActionConnect, root, self), "ipv4", proto.Destination{IP: "127.0.0.1", Port: p4}, 0)},
		{"connect", "ipv6", "connect to a ::1 listener",
			is(proto.ActionConnect, root, port(p6)), withDest(base(proto.ActionConnect, root, self), "ipv6", proto.Destination{IP: "::1", Port: p6}, 0)},
		{"connect", "refused", "connect to a closed port: ECONNREFUSED",
			is(proto.ActionConnect, root, port(refused)), withDest(base(proto.ActionConnect, root, self), "ipv4", proto.Destination{IP: "127.0.0.1", Port: refused}, int(unix.ECONNREFUSED))},
		{"connect", "unix-path", "connect to a unix socket path",
			is(proto.ActionConnect, said["helper"], address(sock)), withDest(base(proto.ActionConnect, said["helper"], root), "unix", proto.Destination{Address: sock}, 0)},
		{"connect", "unix-abstract", "connect to an abstract unix socket",
			is(proto.ActionConnect, said["helper"], address(abstract)), withDest(base(proto.ActionConnect, said["helper"], root), "unix", proto.Destination{Address: abstract}, 0)},
		{"connect", "nonblocking", "non-blocking connect (EINPROGRESS: outcome unknown)",
			is(proto.ActionConnect, said["helper"], via("connect", port(p4))), nonblock},
		{"connect", "io-uring", "an io_uring connect (IORING_OP_CONNECT): the cgroup hook's kernel copy, no result",
			is(proto.ActionConnect, said["helper"], via(proto.SyscallIOUring, port(p4))),
			hooked(proto.ActionConnect, "ipv4", proto.SyscallIOUring, proto.Destination{IP: "127.0.0.1", Port: p4})},
		{"send", "udp4-sendto", "sendto of a datagram to 127.0.0.1 without connect (the DNS-exfiltration shape)",
			is(proto.ActionSend, said["helper"], via("sendto", port(u4))),
			hooked(proto.ActionSend, "ipv4", "sendto", proto.Destination{IP: "127.0.0.1", Port: u4})},
		{"send", "udp6-sendmmsg", "sendmmsg of two datagrams to [::1]: a record per datagram",
			is(proto.ActionSend, said["helper"], via("sendmmsg", port(u6))),
			hooked(proto.ActionSend, "ipv6", "sendmmsg", proto.Destination{IP: "::1", Port: u6})},
		{"send", "unix-sendmsg", "sendmsg to a unix datagram socket path",
			is(proto.ActionSend, said["helper"], via("sendmsg", address(dgram))),
			hooked(proto.ActionSend, "unix", "sendmsg", proto.Destination{Address: dgram})},
		{"send", "io-uring", "an io_uring sendmsg (IORING_OP_SENDMSG) to 127.0.0.1",
			is(proto.ActionSend, said["helper"], via(proto.SyscallIOUring, port(u4))),
			hooked(proto.ActionSend, "ipv4", proto.SyscallIOUring, proto.Destination{IP: "127.0.0.1", Port: u4})},
		{"open", "io-uring", "an io_uring open (IORING_OP_OPENAT) at its completion: the installed descriptor's file walked",
			is(proto.ActionOpen, said["helper"], via(proto.SyscallIOUring, path(filepath.Join(realDir, "abs.txt")))),
			func() recordView {
				v := withFile(base(proto.ActionOpen, said["helper"], root), filepath.Join(realDir, "abs.txt"), "O_RDONLY|O_CLOEXEC", "read", 0)
				v.Syscall = proto.SyscallIOUring
				return v
			}()},
		{"open", "io-uring-missing", "a failed io_uring open: the result, but no path (the kernel's copy is freed by the completion)",
			is(proto.ActionOpen, said["helper"], via(proto.SyscallIOUring, func(e *proto.Event) bool { return e.Event.Outcome == proto.OutcomeFailure })),
			recordView{Action: proto.ActionOpen, Outcome: proto.OutcomeFailure, Errno: int(unix.ENOENT), Pid: said["helper"], Ppid: root, Root: root,
				Agent: "claude-code", File: &proto.File{Flags: "O_RDONLY", Access: "read"}, Syscall: proto.SyscallIOUring}},
		{"mutate", "rename", "mv (renameat2 RENAME_NOREPLACE): the destination in file.path, the source in vigil.rename.source, both made absolute against the walked cwd",
			is(proto.ActionRename, said["mv"], nil), func() recordView {
				v := mutation(proto.ActionRename, "change", proto.PathSourceCaller, said["mv"], proto.File{Path: filepath.Join(realDir, "mv-dst"), Flags: "RENAME_NOREPLACE"}, 0)
				v.Rename = &proto.Rename{Source: filepath.Join(realDir, "mv-src")}
				return v
			}()},
		{"mutate", "unlink-missing", "rm of a missing file: unlinkat fails with ENOENT",
			is(proto.ActionUnlink, said["rm"], nil), mutation(proto.ActionUnlink, "deletion", proto.PathSourceCaller, said["rm"], proto.File{Path: filepath.Join(realDir, "missing-rm")}, int(unix.ENOENT))},
		{"mutate", "symlink", "ln -s /etc: symlinkat, the target as given",
			is(proto.ActionSymlink, said["ln"], nil), mutation(proto.ActionSymlink, "creation", proto.PathSourceCaller, said["ln"], proto.File{Path: filepath.Join(realDir, "etc-link"), TargetPath: "/etc"}, 0)},
		{"mutate", "chmod-setuid", "chmod u+s: fchmodat with mode 04644, setuid flagged",
			is(proto.ActionChmod, said["chmod"], nil), func() recordView {
				v := mutation(proto.ActionChmod, "change", proto.PathSourceCaller, said["chmod"], proto.File{Path: filepath.Join(realDir, "suid"), Mode: "4644"}, 0)
				v.Setid = true
				return v
			}()},
		{"mutate", "chown", "chown 1234:5678: fchownat",
			is(proto.ActionChown, said["chown"], nil), mutation(proto.ActionChown, "change", proto.PathSourceCaller, said["chown"], proto.File{Path: filepath.Join(realDir, "suid"), UID: "1234", GID: "5678"}, 0)},
		{"mutate", "ftruncate", "truncate -s 0: ftruncate of a descriptor, the file walked by the kernel",
			is(proto.ActionTruncate, said["truncate"], nil), mutation(proto.ActionTruncate, "change", proto.PathSourceKernel, said["truncate"], proto.File{Path: filepath.Join(realDir, "suid"), Size: &size0}, 0)},
	}

	// Decode the workload's records (other agent trees on this host are ignored).
	type decoded struct {
		raw []byte
		e   *proto.Event
	}
	var mine []decoded
	for _, raw := range raws {
		r, err := src.dec.decode(raw)
		if err != nil {
			t.Errorf("decode a %d-byte record: %v", len(raw), err)
			continue
		}
		if r.event.Vigil.Root.Pid == root {
			mine = append(mine, decoded{raw, r.event})
		}
	}
	t.Logf("%d records read, %d from the workload's tree", len(raws), len(mine))

	var expected []expectedRecord
	n := map[string]int{}
	leaked := 0
	for _, c := range cases {
		i := slices.IndexFunc(mine, func(d decoded) bool { return c.match(d.e) })
		if i < 0 {
			t.Errorf("no record for %s-%s (%s); the workload's records:\n%s", c.kind, c.name, c.what, dumpDecoded(mine, func(d decoded) *proto.Event { return d.e }))
			continue
		}
		raw := mine[i].raw
		if i := bytes.Index(raw, []byte("marker-marker")); i >= 0 {
			leaked++
			envAt := int(unsafe.Offsetof(bpf.VigilExecEvent{}.Env))
			t.Logf("%s-%s: non-allowlisted environment bytes at offset %d (join-key slots are %d..%d)", c.kind, c.name, i, envAt, execSize)
		}
		clean := scrubRecord(raw)
		before, _ := json.Marshal(mine[i].e)
		r, err := src.dec.decode(clean)
		if err != nil {
			t.Fatalf("%s-%s: scrubbed record does not decode: %v", c.kind, c.name, err)
		}
		after, _ := json.Marshal(r.event)
		if !bytes.Equal(before, after) {
			t.Fatalf("%s-%s: scrubbing changed the event:\n%s\n%s", c.kind, c.name, before, after)
		}
		if c.want.Exe == nil && c.kind == "exec" {
			// A memfd has no path to stat: its identity is taken as decoded once it says memfd.
			if x := r.event.Vigil.Exe; x == nil || !x.Memfd || x.Ino == 0 || x.Ctime == "" {
				t.Errorf("%s-%s: exe %+v, want a memfd's identity", c.kind, c.name, x)
			} else {
				c.want.Exe = x
			}
		}
		got, _ := json.Marshal(viewOf(r.event))
		want, _ := json.Marshal(c.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%s-%s decodes to\n%s\nwant\n%s", c.kind, c.name, got, want)
		}
		n[c.kind]++
		file := fmt.Sprintf("%s-%d-%s.bin", c.kind, n[c.kind], c.name)
		if err := os.WriteFile(filepath.Join(out, file), clean, 0o644); err != nil {
			t.Fatal(err)
		}
		expected = append(expected, expectedRecord{File: file, What: c.what, Want: c.want})
	}
	if leaked > 0 {
		t.Logf("KERNEL: %d raw records carried bytes of the non-allowlisted %s variable past the join-key values (stale per-CPU scratch); scrubbed before writing", leaked, strings.TrimSuffix(envMarker, "="))
	}
	data, err := json.MarshalIndent(expected, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "expected.json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d records and expected.json to %s", len(expected), out)
}

// exeIdentity is vigil.exe of an exec of path, from stat.
func exeIdentity(t *testing.T, path string) *proto.Exe {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil
	}
	return &proto.Exe{Dev: st.Dev, Ino: st.Ino, Ctime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UTC().Format(proto.TimeLayout)}
}

// kernelTruncated is what the kernel's walk of p keeps when p is longer than slot bytes:
// components from the leaf up, each written while fewer than slot bytes are, behind "…".
func kernelTruncated(p string, slot int) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	off, keep := 0, 0
	for i := len(parts) - 1; i >= 0 && off < slot; i-- {
		off += len(parts[i]) + 1
		keep++
	}
	return truncatedRoot + "/" + strings.Join(parts[len(parts)-keep:], "/")
}

func dumpDecoded[T any](ds []T, ev func(T) *proto.Event) string {
	events := make([]*proto.Event, len(ds))
	for i, d := range ds {
		events[i] = ev(d)
	}
	var sb strings.Builder
	for _, e := range events {
		line, _ := json.Marshal(viewOf(e))
		sb.Write(line)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// structBytes is the memory of *p.
func structBytes[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

// zeroFrom zeroes b from n (clamped) on.
func zeroFrom(b []byte, n uint32) {
	clear(b[clamp(n, len(b)):])
}

// zeroAfterNUL zeroes b after its first NUL (all of b when set is false).
func zeroAfterNUL(b []byte, set bool) {
	if !set {
		clear(b)
		return
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		clear(b[i:])
	}
}

// scrubRecord zeroes what the decoder never reads: the stale bytes the kernel's reused
// scratch buffers leave past each reported length. The record keeps its length.
func scrubRecord(raw []byte) []byte {
	out := bytes.Clone(raw)
	if len(raw) < headerSize {
		return out
	}
	scrub := func(p unsafe.Pointer, size uintptr, fn func()) {
		b := unsafe.Slice((*byte)(p), size)
		copy(b, raw)
		fn()
		copy(out, b)
	}
	var h bpf.VigilEventHeader
	copy(structBytes(&h), raw)
	switch h.Kind {
	case kindExec:
		var x bpf.VigilExecEvent
		scrub(unsafe.Pointer(&x), unsafe.Sizeof(x), func() {
			zeroAfterNUL(x.Hdr.Comm[:], true)
			zeroFrom(x.Filename[:], x.FilenameLen)
			zeroFrom(x.Argv[:], x.ArgvLen)
			zeroFrom(x.Exe[:], x.ExeLen)
			zeroFrom(x.Cwd[:], x.CwdLen)
			for i := range x.Env {
				zeroAfterNUL(x.Env[i][:], x.EnvFound&(1<<i) != 0)
			}
		})
	case kindOpen:
		var x bpf.VigilOpenEvent
		scrub(unsafe.Pointer(&x), unsafe.Sizeof(x), func() {
			zeroAfterNUL(x.Hdr.Comm[:], true)
			zeroFrom(x.Path[:], x.PathLen)
			zeroFrom(x.Walk[:], x.WalkLen)
			if x.WalkKind == 0 {
				clear(x.Walk[:])
			}
			if x.WalkKind == walkFile {
				clear(x.Path[:]) // never read: the walk is the path
			}
		})
	case kindConnect:
		var x bpf.VigilConnectEvent
		scrub(unsafe.Pointer(&x), unsafe.Sizeof(x), func() {
			zeroAfterNUL(x.Hdr.Comm[:], true)
			zeroFrom(x.Addr[:], x.Addrlen)
		})
	default:
		scrub(unsafe.Pointer(&h), unsafe.Sizeof(h), func() { zeroAfterNUL(h.Comm[:], true) })
	}
	return out
}
