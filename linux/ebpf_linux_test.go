package linux

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// These tests load the real programs and run real processes. They need root and a kernel
// with BTF; they skip only when that is missing, and say why.

type collector struct {
	mu     sync.Mutex
	events []*proto.Event
}

func (c *collector) emit(e *proto.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *collector) snapshot() []*proto.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*proto.Event(nil), c.events...)
}

// waitForCount polls until at least n events match or the timeout passes, and returns the
// matching events in the order they came (the caller checks how many).
func (c *collector) waitForCount(n int, timeout time.Duration, match func(*proto.Event) bool) []*proto.Event {
	deadline := time.Now().Add(timeout)
	for {
		got := filter(c.snapshot(), match)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// filter returns the events that match, in order.
func filter(events []*proto.Event, match func(*proto.Event) bool) []*proto.Event {
	var out []*proto.Event
	for _, e := range events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls until some event matches or the timeout passes.
func (c *collector) waitFor(t *testing.T, what string, timeout time.Duration, match func(*proto.Event) bool) *proto.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, e := range c.snapshot() {
			if match(e) {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no event for %s within %s; got %d events:\n%s", what, timeout, len(c.snapshot()), dump(c.snapshot()))
	return nil
}

func dump(events []*proto.Event) string {
	var sb strings.Builder
	for i, e := range events {
		if i == 60 {
			sb.WriteString("…\n")
			break
		}
		path := ""
		if e.File != nil {
			path = e.File.Path
		}
		fmt.Fprintf(&sb, "%s pid=%d root=%d %s %v\n", e.Event.Action, e.Process.Pid, e.Vigil.Root.Pid, path, e.Process.Args)
	}
	return sb.String()
}

func requireKernel(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "loading eBPF programs")
	if err := CheckBTF(); err != nil {
		testenv.Skipf(t, "kernel cannot load Vigil's programs: %v", err)
	}
}

// startSource loads the programs and streams events into a collector until the test ends.
func startSource(t *testing.T, mutate func(*Options), emitWrap func(func(*proto.Event)) func(*proto.Event)) (*EBPF, *collector) {
	t.Helper()
	requireKernel(t)
	opts := Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	if mutate != nil {
		mutate(&opts)
	}
	src, err := NewEBPF(opts)
	if err != nil {
		t.Fatalf("NewEBPF: %v", err)
	}
	return src, collect(t, src, emitWrap)
}

// collect runs src until the test ends, its events going into a collector (through wrap,
// when set), then stops and closes it.
func collect(t *testing.T, src sensor.Source, wrap func(func(*proto.Event)) func(*proto.Event)) *collector {
	t.Helper()
	c := &collector{}
	emit := c.emit
	if wrap != nil {
		emit = wrap(emit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, emit) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// agentShell copies /bin/bash into a temp dir under an agent's name.
func agentShell(t *testing.T, name string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, name)
	data, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func writeFile(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func isOpenOf(path string) func(*proto.Event) bool {
	return func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionOpen && e.File != nil && e.File.Path == path
	}
}

func TestAgentTreeIsTrackedAndOthersAreNot(t *testing.T) {
	_, c := startSource(t, nil, nil)
	shell, dir := agentShell(t, "claude")
	secret := writeFile(t, dir, ".env")
	later := writeFile(t, dir, "grandchild-read")
	outsider := writeFile(t, dir, "outsider-read")

	port := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port

	// The outsider: a plain bash doing the same things, before and while the agent runs.
	out := exec.Command("/bin/bash", "-c", fmt.Sprintf("cat %s >/dev/null; exec 3<>/dev/tcp/127.0.0.1/%d; cat %s", outsider, port, outsider))
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}

	// The agent: a child reads .env (a relative path), a backgrounded grandchild reads a file
	// after the parent's command returns, and the agent itself connects to the listener.
	script := fmt.Sprintf("cat .env >/dev/null; (sleep 0.3; cat %s >/dev/null) & exec 3<>/dev/tcp/127.0.0.1/%d; wait", later, port)
	cmd := exec.Command(shell, "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agent shell: %v: %s", err, out)
	}
	root := cmd.Process.Pid
	if err := out.Wait(); err != nil {
		t.Fatalf("outsider: %v", err)
	}

	rootExec := c.waitFor(t, "exec of the agent root", 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExec && e.Process.Pid == root
	})
	if rootExec.Vigil.Root.Pid != root || rootExec.GenAI == nil || rootExec.GenAI.Agent.Name != "claude-code" {
		t.Errorf("root exec: root=%d agent=%+v, want root %d claude-code", rootExec.Vigil.Root.Pid, rootExec.GenAI, root)
	}
	if rootExec.Process.Executable != shell || rootExec.Process.WorkingDirectory != dir {
		t.Errorf("root exec: executable %q cwd %q, want %q %q", rootExec.Process.Executable, rootExec.Process.WorkingDirectory, shell, dir)
	}
	if len(rootExec.Process.Args) != 3 || rootExec.Process.Args[2] != script {
		t.Errorf("root exec args = %q", rootExec.Process.Args)
	}

	envRead := c.waitFor(t, "open of .env by a child", 15*time.Second, isOpenOf(secret))
	if envRead.Process.Pid == root || envRead.Vigil.Root.Pid != root || envRead.Event.Outcome != proto.OutcomeSuccess {
		t.Errorf(".env open: pid %d root %d outcome %s; want a child of %d, success", envRead.Process.Pid, envRead.Vigil.Root.Pid, envRead.Event.Outcome, root)
	}

	grand := c.waitFor(t, "open by the background grandchild", 15*time.Second, isOpenOf(later))
	if grand.Vigil.Root.Pid != root {
		t.Errorf("grandchild open root = %d, want %d", grand.Vigil.Root.Pid, root)
	}
	// cat's parent is the backgrounded subshell, itself a child of the root.
	var sub *proto.Event
	for _, e := range c.snapshot() {
		if e.Event.Action == proto.ActionFork && e.Process.Pid == grand.Process.Parent.Pid {
			sub = e
		}
	}
	if sub == nil || sub.Process.Parent.Pid != root {
		t.Errorf("no fork of the grandchild's parent %d from root %d", grand.Process.Parent.Pid, root)
	}

	conn := c.waitFor(t, "connect to the listener", 15*time.Second, func(e *proto.Event) bool {
		// glibc may first connect to nscd's unix socket while resolving: those are
		// real connects too, but not the one under test.
		return e.Event.Action == proto.ActionConnect && e.Process.Pid == root && e.Destination != nil && e.Destination.IP != ""
	})
	if conn.Destination == nil || conn.Destination.IP != "127.0.0.1" || conn.Destination.Port != port || conn.Event.Outcome != proto.OutcomeSuccess {
		t.Errorf("connect = %+v outcome %s, want 127.0.0.1:%d success", conn.Destination, conn.Event.Outcome, port)
	}
	c.waitFor(t, "exit of the root", 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExit && e.Process.Pid == root && e.Process.ExitCode != nil && *e.Process.ExitCode == 0
	})

	// Other agent trees may run on the machine at the same time (tests of other packages
	// do): what must never appear is the outsider or the sensor itself.
	for _, e := range c.snapshot() {
		if e.Process.Pid == out.Process.Pid || (e.File != nil && e.File.Path == outsider) {
			t.Errorf("the outsider's activity was recorded: %s %+v", e.Event.Action, e.File)
		}
		if e.Process.Pid == os.Getpid() {
			t.Errorf("the sensor's own process was recorded: %s", e.Event.Action)
		}
	}
}

func TestBootstrapPicksUpRunningTree(t *testing.T) {
	requireKernel(t)
	shell, dir := agentShell(t, "codex")
	target := writeFile(t, dir, "read-after-start")
	start := filepath.Join(dir, "go")
	// The agent and its child start before the sensor; the child reads the file once the
	// sensor is up (the test creates the go file), however long loading takes.
	cmd := exec.Command(shell, "-c", fmt.Sprintf("sh -c 'while [ ! -e %s ]; do sleep 0.05; done; cat %s >/dev/null'; true", start, target))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait until the child shell exists, so the tree has a descendant to seed.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)); len(kids) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent's child did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}

	src, c := startSource(t, nil, nil)
	root := cmd.Process.Pid
	var seededRoot, seededChild bool
	for _, p := range src.Started().Seeded {
		if p.Pid == root && p.RootPid == root && p.Agent == "codex" {
			seededRoot = true
		}
		if p.PPid == root && p.RootPid == root {
			seededChild = true
		}
	}
	if !seededRoot || !seededChild {
		t.Fatalf("bootstrap did not seed the running tree (root %v, child %v): %+v", seededRoot, seededChild, src.Started().Seeded)
	}
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := c.waitFor(t, "open by a descendant of the pre-existing agent", 15*time.Second, isOpenOf(target))
	if e.Vigil.Root.Pid != root || e.GenAI == nil || e.GenAI.Agent.Name != "codex" {
		t.Errorf("open root %d agent %+v, want %d codex", e.Vigil.Root.Pid, e.GenAI, root)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestShortLivedChildKeepsArgvAndJoinKeys(t *testing.T) {
	_, c := startSource(t, nil, nil)
	shell, _ := agentShell(t, "claude")
	const secret = "s3cr3t-value-never-logged"
	cmd := exec.Command(shell, "-c", "/bin/true first-arg second-arg")
	// Every join key of the agents registry, each with its own value: the kernel keeps them
	// all through the allowlist user space loaded. A long variable first pushes the keys past
	// the kernel's 256-byte string chunks; a secret sits among them.
	cmd.Env = []string{"PADDING=" + strings.Repeat("p", 1000), "API_TOKEN=" + secret, "PATH=/usr/bin:/bin"}
	var keyEnv []string
	for _, k := range agents.EnvKeys() {
		keyEnv = append(keyEnv, k.Name+"=value-of-"+strings.ToLower(k.Name))
	}
	cmd.Env = append(cmd.Env, keyEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	e := c.waitFor(t, "exec of /bin/true", 15*time.Second, func(e *proto.Event) bool {
		// Match this test's own exec: other tests' agent trees run /bin/true at the same time.
		return e.Event.Action == proto.ActionExec && strings.HasSuffix(e.Process.Executable, "/true") &&
			len(e.Process.Args) == 3 && e.Process.Args[1] == "first-arg"
	})
	if got := e.Process.Args; len(got) != 3 || got[1] != "first-arg" || got[2] != "second-arg" {
		t.Errorf("args = %q", got)
	}
	want := agents.JoinKeysOf(keyEnv...)
	if !e.Vigil.Join.Equal(want) {
		t.Errorf("join keys = %+v, want %+v", e.Vigil.Join, want)
	}
	c.waitFor(t, "exit of /bin/true", 15*time.Second, func(x *proto.Event) bool {
		return x.Event.Action == proto.ActionExit && x.Process.Pid == e.Process.Pid
	})
	for _, ev := range c.snapshot() {
		line, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(line), secret) {
			t.Fatalf("a non-allowlisted environment value reached an event: %s", line)
		}
	}
}

func TestInterpreterLaunchedAgentIsConfirmedFromArgv(t *testing.T) {
	_, c := startSource(t, nil, nil)
	node, dir := agentShell(t, "node") // a bash named like an interpreter
	agentDir := filepath.Join(dir, "node_modules", "@anthropic-ai", "claude-code")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	agentRead := writeFile(t, dir, "read-by-agent-script")
	otherRead := writeFile(t, dir, "read-by-other-script")
	cli := filepath.Join(agentDir, "cli.js")
	other := filepath.Join(dir, "build.js")
	if err := os.WriteFile(cli, []byte("cat "+agentRead+" >/dev/null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("cat "+otherRead+" >/dev/null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{other, cli} {
		if out, err := exec.Command(node, script).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", script, err, out)
		}
	}
	e := c.waitFor(t, "open by the confirmed agent script's child", 15*time.Second, isOpenOf(agentRead))
	if e.GenAI == nil || e.GenAI.Agent.Name != "claude-code" {
		t.Errorf("agent = %+v, want claude-code", e.GenAI)
	}
	for _, ev := range c.snapshot() {
		if ev.File != nil && ev.File.Path == otherRead {
			t.Errorf("a node process running a non-agent script was recorded: %+v", ev.Process.Args)
		}
		if len(ev.Process.Args) > 1 && ev.Process.Args[1] == other {
			t.Errorf("the rejected interpreter exec was recorded: %q", ev.Process.Args)
		}
	}
}

func TestRingOverflowIsCounted(t *testing.T) {
	release := make(chan struct{})
	// A reader that stalls on its first event lets a one-page ring overflow.
	stall := func(next func(*proto.Event)) func(*proto.Event) {
		var once sync.Once
		return func(e *proto.Event) {
			once.Do(func() { <-release })
			next(e)
		}
	}
	src, c := startSource(t, func(o *Options) { o.RingBufferBytes = os.Getpagesize() }, stall)
	shell, dir := agentShell(t, "claude")
	target := writeFile(t, dir, "many-opens")
	cmd := exec.Command(shell, "-c", fmt.Sprintf("for i in $(seq 300); do read x < %s; done", target))
	out, err := cmd.CombinedOutput()
	close(release)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The shell's reads are one thread's repeats: merged, and a merged line whose run's first
	// record was lost names the file by its inode only.
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		t.Fatal(err)
	}
	// What the ring held when the reader stalled comes through after the release.
	var opens int
	var lost map[string]uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lost, opens = src.Lost(), 0
		for _, e := range c.snapshot() {
			switch {
			case e.Event.Action != proto.ActionOpen:
			case e.Vigil.Merged != nil && (e.File.Path == target || e.Vigil.Merged.Ino == st.Ino):
				opens += int(e.Vigil.Merged.Count)
			case e.File.Path == target:
				opens++
			}
		}
		if uint64(opens)+lost["open"] >= 300 {
			break
		}
	}
	if lost["open"] == 0 {
		t.Fatalf("no open events counted as lost with a stalled reader and a %d-byte ring: %v", os.Getpagesize(), lost)
	}
	if uint64(opens)+lost["open"] < 300 {
		t.Errorf("delivered %d + lost %d opens of the target < 300 performed", opens, lost["open"])
	}
	t.Logf("delivered %d, lost %v", opens, lost)
}

func TestExplainLoadErrorNamesRefusedProgramType(t *testing.T) {
	wrapped := fmt.Errorf("field X: program x: load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM)
	msg := explainLoadError(wrapped).Error()
	if !strings.Contains(msg, "refused") || strings.Contains(msg, "MEMLOCK") {
		t.Errorf("message = %q: want the refusal named and no memlock hint", msg)
	}
	if !errors.Is(explainLoadError(wrapped), ErrProgramTypeRefused) {
		t.Error("errors.Is(…, ErrProgramTypeRefused) = false")
	}

	// On this project's kernels fentry programs are refused with EPERM: check the message a
	// real refusal gets. Kernels that allow fentry have nothing to explain here.
	requireKernel(t)
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:       ebpf.Tracing,
		AttachType: ebpf.AttachTraceFEntry,
		AttachTo:   "do_sys_openat2",
		License:    "Dual MIT/GPL",
		Instructions: asm.Instructions{
			asm.LoadImm(asm.R0, 0, asm.DWord),
			asm.Return(),
		},
	})
	if err == nil {
		t.Skip("this kernel loads fentry programs; no refusal to explain")
	}
	if !errors.Is(err, unix.EPERM) {
		t.Skipf("fentry failed with something other than EPERM here: %v", err)
	}
	if got := explainLoadError(err).Error(); !strings.Contains(got, "refused") || strings.Contains(got, "MEMLOCK") {
		t.Errorf("real EPERM explained as %q", got)
	}
}

// TestRawRecordsCarryNoOtherEnvironment reads the ring directly: not one byte of a variable
// outside the allowlist may leave the kernel, even past the lengths the decoder reads.
func TestRawRecordsCarryNoOtherEnvironment(t *testing.T) {
	requireKernel(t)
	src, err := NewEBPF(Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	shell, _ := agentShell(t, "claude")
	const marker = "zzmarker-not-allowlisted-zz"
	// Long and short execs alternate, so that a short one reuses a per-CPU scratch record a
	// long one filled: nothing of the long one may remain past the short one's lengths.
	long := strings.Repeat("x", 600)
	cmd := exec.Command(shell, "-c", "for i in 1 2 3 4 5 6; do /bin/true a "+long+"; /bin/true c; done")
	cmd.Env = []string{"BEFORE=" + marker, "TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"AFTER=" + marker, "CODEX_TOOL_CALL_ID=call_1", "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var rec ringbuf.Record
	execs := 0
	for {
		src.reader.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if err := src.reader.ReadInto(&rec); err != nil {
			break
		}
		if bytes.Contains(rec.RawSample, []byte(marker)) {
			t.Fatalf("a raw %d-byte record carries a non-allowlisted environment value", len(rec.RawSample))
		}
		if r, err := src.dec.decode(rec.RawSample); err == nil && r.event.Event.Action == proto.ActionExec {
			execs++
			var x bpf.VigilExecEvent
			if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &x); err != nil {
				t.Fatalf("read an exec record: %v", err)
			}
			for _, f := range []struct {
				name string
				buf  []byte
				n    uint32
			}{{"argv", x.Argv[:], x.ArgvLen}, {"filename", x.Filename[:], x.FilenameLen}, {"exe", x.Exe[:], x.ExeLen}, {"cwd", x.Cwd[:], x.CwdLen}} {
				if tail := f.buf[min(int(f.n), len(f.buf)):]; bytes.ContainsFunc(tail, func(r rune) bool { return r != 0 }) {
					t.Errorf("exec record of %q: bytes past %s's length %d are not zero", r.event.Process.Args, f.name, f.n)
				}
			}
		}
	}
	if execs < 3 {
		t.Fatalf("read %d exec records, want at least 3 (the shell and two /bin/true)", execs)
	}
}

// maybeTracked reads tgid's byte of the kernel's maybe_tracked array.
func maybeTracked(t *testing.T, src *EBPF, tgid int) byte {
	t.Helper()
	b := make([]byte, 1)
	if _, err := src.maybeTracked.ReadAt(b, int64(tgid)); err != nil {
		t.Fatalf("read maybe_tracked[%d]: %v", tgid, err)
	}
	return b[0]
}

// TestMaybeTrackedFollowsTheTree: the kernel sets the first-check byte of an agent root and
// of its children while they run, clears it when they exit, and never sets it for an
// outsider.
func TestMaybeTrackedFollowsTheTree(t *testing.T) {
	src, c := startSource(t, nil, nil)
	shell, dir := agentShell(t, "claude")
	gate := filepath.Join(dir, "gate")
	// The agent and a child wait for the gate file, so both are alive while checked.
	cmd := exec.Command(shell, "-c", fmt.Sprintf("sh -c 'while [ ! -e %[1]s ]; do sleep 0.02; done'; while [ ! -e %[1]s ]; do sleep 0.02; done", gate))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outsider := exec.Command("/bin/sh", "-c", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done", gate))
	if err := outsider.Start(); err != nil {
		t.Fatal(err)
	}
	root := cmd.Process.Pid
	child := c.waitFor(t, "fork of the agent's child", 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionFork && e.Process.Parent != nil && e.Process.Parent.Pid == root
	}).Process.Pid
	for _, p := range []struct {
		name string
		pid  int
		want byte
	}{{"agent root", root, 1}, {"agent child", child, 1}, {"outsider", outsider.Process.Pid, 0}} {
		if got := maybeTracked(t, src, p.pid); got != p.want {
			t.Errorf("%s %d: maybe_tracked = %d while running, want %d", p.name, p.pid, got, p.want)
		}
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent: %v", err)
	}
	outsider.Wait()
	for _, pid := range []int{root, child} {
		c.waitFor(t, "exit", 15*time.Second, func(e *proto.Event) bool {
			return e.Event.Action == proto.ActionExit && e.Process.Pid == pid
		})
		if got := maybeTracked(t, src, pid); got != 0 {
			t.Errorf("pid %d: maybe_tracked = %d after exit, want 0", pid, got)
		}
	}
}

// Every kernel drop counter (enum drop_kind, below DROP_KINDS) is reported under a name: a
// kind added in C without one would be counted and never shown.
func TestEveryDropKindIsNamed(t *testing.T) {
	for kind := bpf.VigilDropKindDROP_EXEC; kind < bpf.VigilDropKindDROP_KINDS; kind++ {
		if dropKindNames[kind] == "" {
			t.Errorf("drop kind %d has no name", kind)
		}
	}
}

func TestPidMax(t *testing.T) {
	for _, tt := range []struct {
		content string
		want    int
	}{
		{"32768\n", 32768},
		{"4194304\n", 4194304},
		{"99999999\n", pidMaxLimit},
		{"garbage", pidMaxLimit},
		{"", pidMaxLimit},
		{"-1", pidMaxLimit},
	} {
		root := t.TempDir()
		if tt.content != "" {
			if err := os.MkdirAll(filepath.Join(root, "sys/kernel"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "sys/kernel/pid_max"), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := pidMax(root); got != tt.want {
			t.Errorf("pid_max %q: got %d, want %d", tt.content, got, tt.want)
		}
	}
}

// TestTrackedEntryCarriesRootStart: the kernel stores the root's start time in each tracked
// entry, the same clock as /proc's starttime, so a verdict on a pending root can be applied
// to that process's tree only (settlePending, updateTree).
func TestTrackedEntryCarriesRootStart(t *testing.T) {
	src, _ := startSource(t, nil, nil)
	node, dir := agentShell(t, "node") // a pending interpreter root
	script := filepath.Join(dir, "wait.js")
	if err := os.WriteFile(script, []byte("sleep 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	var e bpf.VigilTrackEntry
	deadline := time.Now().Add(5 * time.Second)
	for src.objs.Tracked.Lookup(uint32(pid), &e) != nil || e.RootStart == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no tracked entry with a root start for pid %d: %+v", pid, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start, err := procStartBootNs("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	if e.Root != uint32(pid) || !sensor.SameStart(e.RootStart, start) {
		t.Errorf("entry %+v, want root %d starting at %d (/proc)", e, pid, start)
	}
}
