//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// The test binary doubles as the hook client: with VIGIL_HOOK_TEST_CHILD=1 it runs
// hookCommand with the \x1f-separated VIGIL_HOOK_TEST_ARGS before any test (or TestMain,
// which builds the vigil binary) runs, and exits with 0 only if hookCommand returned nil.
func init() {
	if os.Getenv("VIGIL_HOOK_TEST_CHILD") != "1" {
		return
	}
	if err := hookCommand(strings.Split(os.Getenv("VIGIL_HOOK_TEST_ARGS"), "\x1f")); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

const claudeSession = "c3824f57-bc13-4bea-b943-0c0fb62875a9"

// hookStdin is the stdin JSON of one recorded hook call (correlate/testdata/hooks).
func hookStdin(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "correlate", "testdata", "hooks", name))
	if err != nil {
		t.Fatal(err)
	}
	var call struct {
		Stdin json.RawMessage `json:"stdin"`
	}
	if err := json.Unmarshal(b, &call); err != nil {
		t.Fatal(err)
	}
	return call.Stdin
}

type hookEnv struct {
	socket, undelivered string
	server              *correlate.HookServer
	batches             chan correlate.HookBatch
	// counted totals what undeliveredOf took from the directory (counting removes it).
	counted map[int]uint64
}

// newHookEnv makes a socket path and an undelivered dir in a temp dir that any uid can
// traverse; with serve, a HookServer listens on the socket until the test ends.
func newHookEnv(t *testing.T, serve bool) *hookEnv {
	t.Helper()
	base, err := os.MkdirTemp("", "vigil-hook-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &hookEnv{
		socket:      filepath.Join(base, "run", "hook.sock"),
		undelivered: filepath.Join(base, "lib", "hook-undelivered"),
		batches:     make(chan correlate.HookBatch, 16),
	}
	if !serve {
		if err := correlate.PrepareUndeliveredDir(e.undelivered); err != nil {
			t.Fatal(err)
		}
		return e
	}
	s, err := correlate.NewHookServer(e.socket, func(b correlate.HookBatch) { e.batches <- b }, zerolog.Nop(),
		correlate.WithUndeliveredDir(e.undelivered))
	if err != nil {
		t.Fatal(err)
	}
	e.server = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

func (e *hookEnv) args(agent string) []string {
	return []string{"--agent", agent, "--socket", e.socket, "--undelivered-dir", e.undelivered}
}

func (e *hookEnv) next(t *testing.T) correlate.HookBatch {
	t.Helper()
	select {
	case b := <-e.batches:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no hook delivered")
		return correlate.HookBatch{}
	}
}

func (e *hookEnv) noBatch(t *testing.T) {
	t.Helper()
	select {
	case b := <-e.batches:
		t.Errorf("unexpected batch %+v", b)
	case <-time.After(50 * time.Millisecond):
	}
}

// undeliveredOf is the undelivered count of uid so far.
func (e *hookEnv) undeliveredOf(t *testing.T, uid int) uint64 {
	t.Helper()
	c, err := correlate.ConsumeUndelivered(e.undelivered)
	if err != nil {
		t.Fatal(err)
	}
	if e.counted == nil {
		e.counted = map[int]uint64{}
	}
	e.counted[uid] += c[uid]
	return e.counted[uid]
}

// hookChild runs the test binary as `vigil hook args...` with stdin, as cred when set.
func hookChild(t *testing.T, exe string, args []string, stdin []byte, cred *syscall.Credential) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "VIGIL_HOOK_TEST_CHILD=1", "VIGIL_HOOK_TEST_ARGS="+strings.Join(args, "\x1f"))
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Dir = "/"
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("hook child: %v (stderr %q)", err, stderr.String())
	}
	return cmd, stdout.String(), stderr.String()
}

// TestHookCommandDelivers runs hookCommand itself, in this process, on a pipe as stdin.
func TestHookCommandDelivers(t *testing.T) {
	e := newHookEnv(t, true)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin := hookStdin(t, "claude/managed_PreToolUse_1.json")
	go func() {
		w.Write(stdin)
		w.Close()
	}()
	saved := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = saved; r.Close() }()
	if err := hookCommand(e.args("claude-code")); err != nil {
		t.Fatalf("hookCommand returned %v", err)
	}
	b := e.next(t)
	if b.SenderPid != os.Getpid() || b.SenderUID != os.Getuid() || b.Transport != correlate.TransportHook {
		t.Errorf("sender %d/%d %q, want %d/%d hook", b.SenderPid, b.SenderUID, b.Transport, os.Getpid(), os.Getuid())
	}
	ev := b.Events[0]
	if ev.Agent != agents.ClaudeCode || ev.Kind != proto.KindToolDecision || ev.SessionID != claudeSession ||
		ev.ToolUseID != "toolu_mock_0_0001" || !strings.HasPrefix(ev.Command, "echo MARKER_BASH") {
		t.Errorf("event %+v", ev)
	}
	if wd, _ := os.Getwd(); b.Cwd != wd || len(b.Argv) == 0 || time.Since(b.SentAt) > time.Minute {
		t.Errorf("claims cwd %q argv %q sent %v", b.Cwd, b.Argv, b.SentAt)
	}
	if n := e.undeliveredOf(t, os.Getuid()); n != 0 {
		t.Errorf("undelivered %d after a delivery", n)
	}
}

// TestHookChildDelivers runs the hook as a separate process, as an agent does: the server
// names that process as the sender, and the hook writes nothing to stdout or stderr.
func TestHookChildDelivers(t *testing.T) {
	e := newHookEnv(t, true)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdout, stderr := hookChild(t, exe, e.args("codex"), hookStdin(t, "codex/system_PreToolUse_2.json"), nil)
	if stdout != "" || stderr != "" {
		t.Errorf("hook wrote stdout %q stderr %q", stdout, stderr)
	}
	b := e.next(t)
	if b.SenderPid != cmd.Process.Pid || b.SenderUID != os.Getuid() {
		t.Errorf("sender pid %d uid %d, want the child's %d, %d", b.SenderPid, b.SenderUID, cmd.Process.Pid, os.Getuid())
	}
	ev := b.Events[0]
	if ev.Agent != agents.Codex || ev.ToolUseID != "call_patch_3" || strings.Join(ev.FilePaths, " ") != "out.txt notes.txt" {
		t.Errorf("event %+v", ev)
	}
	if b.Cwd != "/" {
		t.Errorf("cwd %q, want the child's /", b.Cwd)
	}
}

// TestHookDaemonDown: no socket. The hook returns nil at once and counts the hook.
func TestHookDaemonDown(t *testing.T) {
	e := newHookEnv(t, false)
	for i := 1; i <= 2; i++ {
		start := time.Now()
		if err := runHook(e.args("claude-code"), bytes.NewReader(hookStdin(t, "claude/managed_Stop_1.json")), io.Discard); err != nil {
			t.Fatalf("runHook returned %v", err)
		}
		if d := time.Since(start); d > 600*time.Millisecond {
			t.Errorf("took %v with the daemon down", d)
		}
		// The client's count file, before the count takes it away.
		fi, err := os.Stat(filepath.Join(e.undelivered, strconv.Itoa(os.Getuid())))
		if err != nil || fi.Size() != 1 || fi.Mode().Perm() != 0o600 {
			t.Errorf("count file %v %v", fi, err)
		}
		if n := e.undeliveredOf(t, os.Getuid()); n != uint64(i) {
			t.Errorf("undelivered %d after %d failures", n, i)
		}
	}
}

// TestHookHungDaemon: the socket accepts connections into its backlog but nobody reads
// them. Without an ack the hook gives up after 500 ms and counts the hook.
func TestHookHungDaemon(t *testing.T) {
	e := newHookEnv(t, false)
	if err := os.MkdirAll(filepath.Dir(e.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", e.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	if err := runHook(e.args("codex"), bytes.NewReader(hookStdin(t, "codex/system_Stop_1.json")), io.Discard); err != nil {
		t.Fatalf("runHook returned %v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 700*time.Millisecond {
		t.Errorf("took %v, want about the 500 ms send deadline", d)
	}
	if n := e.undeliveredOf(t, os.Getuid()); n != 1 {
		t.Errorf("undelivered %d, want 1", n)
	}
}

// TestHookUnprivileged: a hook running as uid 65534 connects to the 0666 socket and is
// identified as 65534; with the daemon down it counts the hook in its own file.
func TestHookUnprivileged(t *testing.T) {
	testenv.RequireRoot(t, "running a child as uid 65534")
	e := newHookEnv(t, true)
	// The test binary sits in go's private build dir: copy it where uid 65534 can run it.
	exe := filepath.Join(filepath.Dir(filepath.Dir(e.socket)), "vigil.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	cmd, stdout, _ := hookChild(t, exe, e.args("claude-code"), hookStdin(t, "claude/managed_UserPromptSubmit_1.json"), nobody)
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
	b := e.next(t)
	if b.SenderUID != 65534 || b.SenderPid != cmd.Process.Pid {
		t.Errorf("sender uid %d pid %d, want 65534 %d", b.SenderUID, b.SenderPid, cmd.Process.Pid)
	}
	if b.Events[0].Kind != proto.KindUserPrompt || b.Events[0].SessionID != claudeSession {
		t.Errorf("event %+v", b.Events[0])
	}

	// Daemon down: the same user's hook counts itself in the sticky directory.
	args := e.args("claude-code")
	args[3] = filepath.Join(filepath.Dir(e.socket), "absent.sock")
	hookChild(t, exe, args, hookStdin(t, "claude/managed_Stop_1.json"), nobody)
	hookChild(t, exe, args, hookStdin(t, "claude/managed_Stop_1.json"), nobody)
	fi, err := os.Stat(filepath.Join(e.undelivered, "65534"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || fi.Mode().Perm() != 0o600 {
		t.Errorf("count file owner %d mode %v", st.Uid, fi.Mode())
	}
	counts, err := e.server.UndeliveredCounts()
	if err != nil {
		t.Fatal(err)
	}
	if counts[65534] != 2 || counts[0] != 0 {
		t.Errorf("UndeliveredCounts %v, want {65534: 2}", counts)
	}
	// Counted once, and kept: the next count still says 2, not 4.
	if again, err := e.server.UndeliveredCounts(); err != nil || again[65534] != 2 {
		t.Errorf("second UndeliveredCounts %v %v, want {65534: 2}", again, err)
	}
	// uid 65534 cannot list the directory nor remove someone else's count.
	if err := correlate.RecordUndelivered(e.undelivered, 0, 1); err != nil {
		t.Fatal(err)
	}
	script := `ls ` + e.undelivered + ` >/dev/null 2>&1 && echo listed; rm -f ` + filepath.Join(e.undelivered, "0") + ` 2>/dev/null && echo removed; true`
	sh := exec.Command("/bin/sh", "-c", script)
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	if out, err := sh.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("uid 65534 in the undelivered dir: %q %v", out, err)
	}
}

// TestHookOversizeStdin: stdin over the limit is sent cut at limit+1 bytes, so the daemon
// counts it as too large (a delivery, not a loss), and the rest of stdin is drained so the
// agent never writes into a closed pipe.
func TestHookOversizeStdin(t *testing.T) {
	e := newHookEnv(t, true)
	r := bytes.NewReader(bytes.Repeat([]byte("x"), 3*correlate.MaxHookStdinBytes))
	if err := runHook(e.args("codex"), r, io.Discard); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes of stdin left unread", r.Len())
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.server.Stats().TooLarge != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", e.server.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.noBatch(t)
	if n := e.undeliveredOf(t, os.Getuid()); n != 0 {
		t.Errorf("undelivered %d", n)
	}
}

// TestHookBadFlags: inside an agent a bad flag changes nothing visible: no output, and the
// flags parsed before it still apply.
func TestHookBadFlags(t *testing.T) {
	e := newHookEnv(t, true)
	var diag bytes.Buffer
	if err := runHook(append(e.args("cursor"), "--bogus"), bytes.NewReader([]byte(`{"conversation_id":"c1","hook_event_name":"stop","status":"completed"}`)), &diag); err != nil {
		t.Fatal(err)
	}
	if diag.Len() != 0 {
		t.Errorf("diagnostics inside an agent: %q", diag.String())
	}
	if ev := e.next(t).Events[0]; ev.Agent != agents.Cursor || ev.SessionID != "c1" || ev.Kind != proto.KindHook {
		t.Errorf("event %+v", ev)
	}
}

// TestHookStdinNeverClosed: a caller that never closes stdin cannot hold the hook.
func TestHookStdinNeverClosed(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte(`{"hook_event_name":"Stop"`))
	start := time.Now()
	if _, err := readHookStdin(r, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no EOF") {
		t.Errorf("readHookStdin: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

func TestHookIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, in := range map[string]io.Reader{"/dev/null": null, "pipe": r, "reader": strings.NewReader("")} {
		if isTerminal(in) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
	if tty, err := os.Open("/dev/tty"); err == nil {
		defer tty.Close()
		if !isTerminal(tty) {
			t.Error("/dev/tty not taken for a terminal")
		}
	}
}

func TestHookBoundArgv(t *testing.T) {
	long := strings.Repeat("a", 10)
	got := boundArgv([]string{long, long, long}, 25)
	if len(got) != 3 || got[2] != "aaaaa" {
		t.Errorf("boundArgv = %q", got)
	}
	if got := boundArgv([]string{strings.Repeat("b", 100), "c"}, 30); len(got) != 1 || len(got[0]) != 30 {
		t.Errorf("boundArgv = %q", got)
	}
}
