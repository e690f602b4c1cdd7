package correlate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// testHookServer is a HookServer on a socket in a temp dir, serving until the test ends.
type testHookServer struct {
	*HookServer
	batches chan HookBatch
	dir     string
}

func startHookServer(t *testing.T, opts ...HookOption) *testHookServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testHookServer{batches: make(chan HookBatch, 128), dir: dir}
	opts = append([]HookOption{WithUndeliveredDir(filepath.Join(dir, "lib", "hook-undelivered"))}, opts...)
	s, err := NewHookServer(filepath.Join(dir, "run", "vigil", "hook.sock"), func(b HookBatch) { ts.batches <- b }, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts.HookServer = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func (ts *testHookServer) next(t *testing.T) HookBatch {
	t.Helper()
	select {
	case b := <-ts.batches:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch delivered")
		return HookBatch{}
	}
}

// waitStats polls until cond holds on the server's stats.
func (ts *testHookServer) waitStats(t *testing.T, what string, cond func(HookStats) bool) HookStats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := ts.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendRaw connects, writes b and returns the byte the server answers with (or an error).
func sendRaw(t *testing.T, path string, b []byte) (byte, error) {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(b); err != nil {
		return 0, err
	}
	var ack [1]byte
	_, err = io.ReadFull(conn, ack[:])
	return ack[0], err
}

func hookFrame(t testing.TB, m HookMessage) []byte {
	t.Helper()
	b, err := AppendHookFrame(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHookServerDelivers(t *testing.T) {
	ts := startHookServer(t)
	sent := time.Date(2026, 11, 22, 11, 25, 13, 0, time.UTC)
	ack, err := sendRaw(t, ts.Path(), hookFrame(t, HookMessage{
		Agent: "codex", Stdin: hookSample(t, "codex/system_PreToolUse_2.json"),
		Argv: []string{"vigil", "hook", "--agent", "codex"}, Cwd: "/repo", SentAt: sent,
	}))
	if err != nil || ack != HookAck {
		t.Fatalf("ack %#x, %v", ack, err)
	}
	b := ts.next(t)
	if b.SenderPid != os.Getpid() || b.SenderUID != os.Getuid() || b.Transport != TransportHook {
		t.Errorf("sender pid %d uid %d transport %q, want %d %d hook", b.SenderPid, b.SenderUID, b.Transport, os.Getpid(), os.Getuid())
	}
	if len(b.Events) != 1 || b.Events[0].ToolUseID != "call_patch_3" || b.Events[0].SessionID != codexHookSession ||
		strings.Join(b.Events[0].FilePaths, ",") != "out.txt,notes.txt" {
		t.Errorf("events %+v", b.Events)
	}
	if b.Cwd != "/repo" || !b.SentAt.Equal(sent) || len(b.Argv) != 4 {
		t.Errorf("claims: cwd %q sent %v argv %q", b.Cwd, b.SentAt, b.Argv)
	}
	st := ts.waitStats(t, "counted", func(s HookStats) bool { return s.Events == 1 })
	if st.Accepted != 1 || st.PerAgent[agents.Codex] != 1 || st.PerAgent[agents.ClaudeCode] != 0 || st.Malformed+st.TooLarge+st.TimedOut != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The sender is whoever the kernel says connected: a child process's pid, not ours, named
// with the start time it had while it waited for the ack.
func TestHookServerSenderIsPeer(t *testing.T) {
	// Read independently of the server: procfs's starttime, in clock ticks (USER_HZ 100).
	startOf := func(pid int) (uint64, error) {
		p, err := procfs.NewProc(pid)
		if err != nil {
			return 0, err
		}
		st, err := p.Stat()
		if err != nil {
			return 0, err
		}
		return st.Starttime * 10_000_000, nil
	}
	ts := startHookServer(t, WithSenderStart(startOf))
	frame := hookFrame(t, HookMessage{Agent: "claude-code", Stdin: hookSample(t, "claude/managed_UserPromptSubmit_1.json")})
	py := testenv.LookPath(t, "python3")
	// A minimal client in another process: send the frame from stdin, print the ack, then its
	// own starttime (field 22 of /proc/self/stat).
	script := `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read()); sys.stdout.write(s.recv(1).hex())
sys.stdout.write(" " + open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])`
	cmd := exec.Command(py, "-c", script, ts.Path())
	cmd.Stdin = bytes.NewReader(frame)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	ack, ticks, _ := strings.Cut(out.String(), " ")
	if ack != "06" {
		t.Errorf("child read ack %q", out.String())
	}
	b := ts.next(t)
	if b.SenderPid != cmd.Process.Pid || b.SenderPid == os.Getpid() {
		t.Errorf("SenderPid %d, want the child's %d", b.SenderPid, cmd.Process.Pid)
	}
	if want := ticks + "0000000"; strconv.FormatUint(b.SenderStartBootNs, 10) != want || b.SenderStartBootNs == 0 {
		t.Errorf("SenderStartBootNs %d, want the child's start %s ns", b.SenderStartBootNs, want)
	}
	if b.Events[0].Kind != proto.KindUserPrompt || b.Events[0].PromptID != claudeHookPrompt {
		t.Errorf("event %+v", b.Events[0])
	}
}

// Bad frames are counted and the server keeps serving.
func TestHookServerBadFrames(t *testing.T) {
	ts := startHookServer(t, func(s *HookServer) { s.readTimeout = 200 * time.Millisecond })
	good := hookFrame(t, HookMessage{Agent: "claude-code", Stdin: hookSample(t, "claude/managed_SessionStart_1.json")})
	bad := []struct {
		name string
		in   []byte
		ack  bool
		stat func(HookStats) uint64
	}{
		{"oversized header", binary.BigEndian.AppendUint32(nil, MaxHookFrameBytes+1), false, func(s HookStats) uint64 { return s.TooLarge }},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, func(s HookStats) uint64 { return s.TooLarge }},
		{"msgpack garbage", append(binary.BigEndian.AppendUint32(nil, 3), 0xc1, 0xc1, 0xc1), false, func(s HookStats) uint64 { return s.Malformed }},
		{"stdin not JSON", hookFrame(t, HookMessage{Agent: "codex", Stdin: []byte("not json")}), true, func(s HookStats) uint64 { return s.Malformed }},
		{"unknown agent", hookFrame(t, HookMessage{Agent: "vim", Stdin: []byte(`{"hook_event_name":"Stop"}`)}), true, func(s HookStats) uint64 { return s.Malformed }},
		{"stdin over the limit", hookFrame(t, HookMessage{Agent: "codex", Stdin: bytes.Repeat([]byte("{"), MaxHookStdinBytes+1)}), true, func(s HookStats) uint64 { return s.TooLarge }},
		{"short body, then silence", append(binary.BigEndian.AppendUint32(nil, 100), 0x85), false, func(s HookStats) uint64 { return s.TimedOut }},
	}
	for _, tt := range bad {
		before := tt.stat(ts.Stats())
		ack, err := sendRaw(t, ts.Path(), tt.in)
		if tt.ack != (err == nil && ack == HookAck) {
			t.Errorf("%s: ack %#x, err %v; want ack %v", tt.name, ack, err, tt.ack)
		}
		ts.waitStats(t, tt.name, func(s HookStats) bool { return tt.stat(s) == before+1 })
		// Still serving.
		if ack, err := sendRaw(t, ts.Path(), good); err != nil || ack != HookAck {
			t.Fatalf("after %s: ack %#x, %v", tt.name, ack, err)
		}
		if b := ts.next(t); b.Events[0].Kind != proto.KindSessionStart {
			t.Fatalf("after %s: %+v", tt.name, b)
		}
	}
	// Connect and send nothing.
	conn, err := net.Dial("unix", ts.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := ts.waitStats(t, "idle connection", func(s HookStats) bool { return s.TimedOut == 2 })
	if st.Events != uint64(len(bad)) || st.Accepted != uint64(2*len(bad)+1) {
		t.Errorf("stats %+v", st)
	}
	select {
	case b := <-ts.batches:
		t.Errorf("unexpected batch %+v", b)
	default:
	}
}

func TestHookServerConcurrent(t *testing.T) {
	ts := startHookServer(t)
	frame := hookFrame(t, HookMessage{Agent: "claude-code", Stdin: hookSample(t, "claude/managed_PostToolUse_1.json")})
	const n = 300
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if ack, err := sendRaw(t, ts.Path(), frame); err != nil || ack != HookAck {
				t.Errorf("ack %#x, %v", ack, err)
			}
		})
	}
	for range n {
		if b := ts.next(t); b.Events[0].ToolUseID != "toolu_mock_0_0001" || b.Events[0].DurationMs != 536 {
			t.Fatalf("%+v", b.Events[0])
		}
	}
	wg.Wait()
	if st := ts.Stats(); st.PerAgent[agents.ClaudeCode] != n || st.Accepted != n {
		t.Errorf("stats %+v", st)
	}
}

func TestHookServerSocketAndDirs(t *testing.T) {
	ts := startHookServer(t)
	fi, err := os.Lstat(ts.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v, want socket 0666", fi.Mode())
	}
	if fi, err := os.Stat(filepath.Dir(ts.Path())); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("socket dir: %v %v, want 0755", fi.Mode(), err)
	}
	ud := filepath.Join(ts.dir, "lib", "hook-undelivered")
	if fi, err := os.Stat(ud); err != nil || fi.Mode() != UndeliveredDirMode {
		t.Errorf("undelivered dir: %v %v, want %v", fi.Mode(), err, UndeliveredDirMode)
	}
	if err := RecordUndelivered(ud, os.Getuid(), 1); err != nil {
		t.Fatal(err)
	}
	if c, err := ts.UndeliveredCounts(); err != nil || c[os.Getuid()] != 1 {
		t.Errorf("UndeliveredCounts %v %v", c, err)
	}
}

func TestHookServerStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hook.sock")
	// A socket left by a crashed run (no one listening).
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	s, err := NewHookServer(path, func(HookBatch) {}, zerolog.Nop(), WithUndeliveredDir(""))
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Serve returned: %v", err)
	}
	if c, err := s.UndeliveredCounts(); err != nil || len(c) != 0 {
		t.Errorf("disabled undelivered dir: %v %v", c, err)
	}

	// Anything else at the path is never removed.
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHookServer(path, func(HookBatch) {}, zerolog.Nop(), WithUndeliveredDir("")); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file at the socket path: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Error("regular file removed")
	}
	if _, err := NewHookServer(filepath.Join(dir, "s"), nil, zerolog.Nop()); err == nil {
		t.Error("nil deliver accepted")
	}
}

// The socket's directory must be ours: a directory another user owns could swap the socket.
func TestHookServerRefusesForeignDir(t *testing.T) {
	testenv.RequireRoot(t, "chown to another uid")
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := NewHookServer(filepath.Join(dir, "hook.sock"), func(HookBatch) {}, zerolog.Nop(), WithUndeliveredDir(""))
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("foreign socket dir: %v", err)
	}
}

// serverForNobody starts a hook server whose socket uid 65534 can reach, and returns it with
// the system python (a per-user shim such as pyenv is not reachable by uid 65534).
func serverForNobody(t *testing.T) (*testHookServer, string) {
	t.Helper()
	testenv.RequireRoot(t, "running a child as uid 65534")
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		testenv.Skipf(t, "no %s: %v", py, err)
	}
	ts := startHookServer(t)
	// t.TempDir is 0700: let uid 65534 reach the socket.
	for d := filepath.Dir(ts.Path()); strings.HasPrefix(d, filepath.Dir(ts.dir)); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return ts, py
}

// An unprivileged process can connect to the 0666 socket, and is identified as itself.
func TestHookServerUnprivilegedSender(t *testing.T) {
	ts, py := serverForNobody(t)
	frame := hookFrame(t, HookMessage{Agent: "codex", Stdin: hookSample(t, "codex/system_Stop_1.json")})
	script := `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read()); sys.stdout.write(s.recv(1).hex())`
	cmd := exec.Command(py, "-c", script, ts.Path())
	cmd.SysProcAttr = nobody()
	cmd.Stdin = bytes.NewReader(frame)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	b := ts.next(t)
	if b.SenderUID != 65534 || b.SenderPid != cmd.Process.Pid {
		t.Errorf("sender uid %d pid %d, want 65534 %d", b.SenderUID, b.SenderPid, cmd.Process.Pid)
	}
	if b.Events[0].SessionID != codexHookSession {
		t.Errorf("%+v", b)
	}
}

func nobody() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

// Another user's idle connections (600, as uid 65534) take only that uid's slots: past
// hookAdmittedPerUID they are closed at once and counted, and a hook of this uid is served at
// once, within the client's own deadline.
func TestHookServerIdleConnectionsOfAnotherUID(t *testing.T) {
	ts, py := serverForNobody(t)
	// 600 connections that send nothing, held open until stdin closes.
	script := `import socket,sys
ss=[]
for i in range(600):
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); ss.append(s)
print("connected", flush=True)
sys.stdin.read()`
	idle := exec.Command(py, "-c", script, ts.Path())
	idle.SysProcAttr = nobody()
	stdin, err := idle.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := idle.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); idle.Wait() }()
	line := make([]byte, 64)
	if n, _ := out.Read(line); !strings.HasPrefix(string(line[:n]), "connected") {
		t.Fatalf("idle client: %q", line[:n])
	}
	st := ts.waitStats(t, "the idle connections admitted or refused", func(s HookStats) bool { return s.Accepted >= 600 })
	if st.Refused != 600-hookAdmittedPerUID {
		t.Errorf("refused %d of 600 idle connections, want %d", st.Refused, 600-hookAdmittedPerUID)
	}

	// This uid's hook, with the client's own deadline (HookClientTimeout-like 500 ms).
	conn, err := net.DialTimeout("unix", ts.Path(), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	frame := hookFrame(t, HookMessage{Agent: "codex", Stdin: hookSample(t, "codex/system_Stop_1.json")})
	if _, err := conn.Write(frame); err != nil {
		t.Fatalf("write frame: %v", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != HookAck {
		t.Fatalf("no ack within the client's deadline while another uid held connections: %v %#x", err, ack[0])
	}
	if b := ts.next(t); b.SenderUID != os.Getuid() {
		t.Errorf("sender uid %d", b.SenderUID)
	}
}

// A second server on the same socket path (a second `vigil run`) is refused before it
// touches the socket; the first keeps serving, and once it is closed the path is free.
func TestHookServerSecondInstanceRefused(t *testing.T) {
	ts := startHookServer(t)
	_, err := NewHookServer(ts.Path(), func(HookBatch) {}, zerolog.Nop(), WithUndeliveredDir(""))
	if err == nil || !strings.Contains(err.Error(), "another vigil serves this hook socket") {
		t.Fatalf("second server: %v", err)
	}
	ack, err := sendRaw(t, ts.Path(), hookFrame(t, HookMessage{Agent: "codex", Stdin: hookSample(t, "codex/system_Stop_1.json")}))
	if err != nil || ack != HookAck {
		t.Fatalf("first server after the second was refused: ack %#x, %v", ack, err)
	}
	ts.next(t)
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := NewHookServer(ts.Path(), func(HookBatch) {}, zerolog.Nop(), WithUndeliveredDir(""))
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	s.Close()
}
