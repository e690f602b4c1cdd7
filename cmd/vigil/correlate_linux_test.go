package main

// End-to-end test of the correlator: the real `vigil run` as root, fake agents that speak the
// agents' own OTLP/JSON (shaped like correlate/testdata) and run tools the way the real ones
// do (research/agents/README.md §1a/§1b/§2a/§2b/§3), and assertions on the JSONL it writes.
//
// The fake agents are this test binary, copied under an agent's name so that the kernel
// roots a tree at its exec. They switch on fakeAgentEnv in init(): TestMain of this package
// runs `go build` first, which a fake agent must not do (it would fail in the agent's working
// directory, and put a compiler's process tree inside the agent tree).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeAgentEnv holds a fakeSpec in JSON: set, the test binary is a fake agent.
const fakeAgentEnv = "VIGIL_TEST_FAKE_AGENT"

func init() {
	if spec := os.Getenv(fakeAgentEnv); spec != "" {
		if err := runFakeAgent(spec); err != nil {
			fmt.Fprintln(os.Stderr, "fake agent:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
}

// fakeSpec tells a fake agent what to do and with which ids.
type fakeSpec struct {
	Role     string // claude, codex or spoofer
	Endpoint string // http://<OTLP/HTTP receiver>
	Dir      string // working directory with the files the tools read
	Report   string // where the fake agent writes its fakeReport
	Session  string
	Prompt   string // Claude prompt.id
	Trace    string // the prompt's trace id (Claude) or the turn's trace id (Codex)
	Turn     string // Codex turn id
	Call1    string // Bash tool_use_id, Codex call_id, or the spoofer's claimed tool_use_id
	Span1    string // Claude claude_code.tool.execution span id of Call1
	Command1 string // the command of Call1
	Call2    string // Claude Write tool_use_id
	Span2    string
	Target   string // Claude Write file_path
}

// fakeReport is what the fake agent did, as it saw it.
type fakeReport struct {
	Pid      int
	ShellPid int    // the tool's shell (Claude Bash, Codex exec_command, the spoofer's child)
	TmpPath  string // the temp file the Write tool opened
	Conns    int    // TCP connections the OTLP client opened (per client)
	Posts    int
}

// TestCorrelatorEndToEnd: a fake Claude Code (Bash with TRACEPARENT, children that inherit
// the binding, an in-process Write), a fake Codex (exec_command with CODEX_TOOL_CALL_ID) and a
// spoofer outside every agent tree that claims the Claude session, against the real sensor.
// Every exec and open of a tool's process subtree must be bound by its key; recall over all
// its kernel events is logged (the shell's own fork precedes its exec, so only the window can
// bind it, and the next call's padded window makes that ambiguous when calls follow within
// 50 ms, as here).
func TestCorrelatorEndToEnd(t *testing.T) {
	s := startVigil(t, "")
	endpoint := "http://" + otlpHTTPAddr(t, s)
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.txt", "c.txt", "codex.txt", "spoof.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	claudeBin := copyAs(t, self, "claude")
	codexBin := copyAs(t, self, "codex")
	spooferBin := copyAs(t, self, "helper")

	// Claude: a Bash call whose command runs a child, a child that drops TRACEPARENT (so its
	// own process and its children are bound by inheritance only) and grandchildren, then an
	// in-process Write.
	claude := fakeSpec{
		Role: "claude", Endpoint: endpoint, Dir: dir,
		Session: uuid(), Prompt: uuid(), Trace: randHex(16),
		Call1: "toolu_" + randHex(12), Span1: randHex(8),
		Command1: fmt.Sprintf("cat %s/a.txt; env -u TRACEPARENT sh -c 'cat %s/b.txt; cat %s/c.txt'; true", dir, dir, dir),
		Call2:    "toolu_" + randHex(12), Span2: randHex(8),
		Target: filepath.Join(dir, "edited.txt"),
	}
	codex := fakeSpec{
		Role: "codex", Endpoint: endpoint, Dir: dir,
		Session: uuid(), Trace: randHex(16), Turn: uuid(),
		Call1:    "call_" + randHex(12),
		Command1: fmt.Sprintf("cat %s/codex.txt && sh -c 'cat %s/codex.txt; true'", dir, dir),
	}
	// The spoofer claims the Claude session, a tool call and its execution span, and runs a
	// child carrying that span in TRACEPARENT.
	spoofer := fakeSpec{
		Role: "spoofer", Endpoint: endpoint, Dir: dir,
		Session: claude.Session, Prompt: uuid(), Trace: randHex(16),
		Call1: "toolu_" + randHex(12), Span1: randHex(8),
		Command1: fmt.Sprintf("cat %s/spoof.txt; cat %s/spoof.txt", dir, dir),
	}

	// The spoofer goes first: its claimed call has no result, so had it been trusted it
	// would still be "running" (its window open) when the real Bash call runs.
	spoof := runFake(t, spooferBin, spoofer)
	cl := runFake(t, claudeBin, claude)
	cx := runFake(t, codexBin, codex)
	t.Logf("claude pid %d shell %d, codex pid %d shell %d, spoofer pid %d child %d",
		cl.Pid, cl.ShellPid, cx.Pid, cx.ShellPid, spoof.Pid, spoof.ShellPid)
	if cl.Conns != 1 {
		t.Errorf("fake claude opened %d OTLP connections for %d posts, want one keep-alive connection", cl.Conns, cl.Posts)
	}

	// Every kernel event of the agents is in the pipeline once the last one's exit is
	// written (the ring is read in order, held events are released in order).
	waitForLine(t, s, func(m map[string]any) bool {
		return str(m, "event.action") == "exit" && num(m, "process.pid") == cx.Pid
	})
	s.stop(t, syscall.SIGINT)
	lines := s.lines(t)

	// ---- Claude Bash: every process of the shell's subtree, bound by TRACEPARENT. ----
	bash := subtreeRecall(t, lines, cl.Pid, cl.ShellPid, claude.Call1)
	wantProcs := map[string]bool{"bash": false, "cat": false, "env": false, "sh": false}
	var opened []string
	for _, m := range bash.lines {
		action := str(m, "event.action")
		if action != "exec" && action != "open" {
			continue
		}
		if action == "exec" {
			wantProcs[str(m, "process.name")] = true // sh is dash on Debian
		} else {
			opened = append(opened, str(m, "file.path"))
		}
		checkBound(t, m, claude.Call1, "Bash", claude.Session, claude.Prompt, "traceparent", "high")
	}
	for name, seen := range wantProcs {
		if !seen {
			t.Errorf("no exec of %s in the Bash tool's subtree", name)
		}
	}
	for _, f := range []string{"a.txt", "b.txt", "c.txt"} {
		if !contains(opened, filepath.Join(dir, f)) {
			t.Errorf("no open of %s in the Bash tool's subtree (opens: %v)", f, opened)
		}
	}
	if bash.pids < 4 { // bash, cat, env→sh, cat, cat
		t.Errorf("Bash subtree has %d processes, want at least 4", bash.pids)
	}

	// ---- Claude Write: the agent's own open of <target>.tmp.<pid>.<hex>. ----
	var tmpOpens int
	for _, m := range lines {
		if str(m, "event.action") == "open" && num(m, "process.pid") == cl.Pid && str(m, "file.path") == cl.TmpPath {
			tmpOpens++
			checkBound(t, m, claude.Call2, "Write", claude.Session, claude.Prompt, "file_path", "medium")
		}
	}
	if tmpOpens == 0 {
		t.Errorf("no open line of %s by the fake claude (pid %d)", cl.TmpPath, cl.Pid)
	}

	// ---- Codex exec_command: bound by CODEX_TOOL_CALL_ID. ----
	// Codex names a prompt by its turn's trace id on log records and by the turn id only in
	// spans, mostly flushed at the end of the turn. The first id written for a prompt sticks,
	// so every line of the turn must carry the same one: whichever the agent.prompt line has.
	codexPromptID := ""
	for _, m := range lines {
		if str(m, "event.action") == "agent.prompt" && str(m, "gen_ai.conversation.id") == codex.Session {
			codexPromptID = str(m, "vigil.prompt.id")
		}
	}
	if codexPromptID != codex.Turn && codexPromptID != codex.Trace {
		t.Errorf("Codex agent.prompt names the prompt %q, want the turn %s or its trace %s", codexPromptID, codex.Turn, codex.Trace)
	}
	cxr := subtreeRecall(t, lines, cx.Pid, cx.ShellPid, codex.Call1)
	for _, m := range cxr.lines {
		if a := str(m, "event.action"); a == "exec" || a == "open" {
			checkBound(t, m, codex.Call1, "exec_command", codex.Session, codexPromptID, "env_call_id", "high")
		}
	}

	// ---- Agent lines. ----
	checkAgentLine(t, lines, "agent.prompt", cl.Pid, func(m map[string]any) bool {
		return str(m, "vigil.prompt.id") == claude.Prompt
	}, map[string]string{
		"gen_ai.conversation.id": claude.Session, "gen_ai.agent.name": "claude-code",
		"vigil.prompt.text": "fix the build",
	})
	checkAgentLine(t, lines, "agent.tool_call", cl.Pid, func(m map[string]any) bool {
		return str(m, "gen_ai.tool.call.id") == claude.Call1
	}, map[string]string{
		"gen_ai.tool.name": "Bash", "gen_ai.conversation.id": claude.Session, "vigil.prompt.id": claude.Prompt,
		"vigil.tool.decision": "accept", "vigil.tool.decision_source": "config", "event.outcome": "success",
		"vigil.tool.command": claude.Command1,
	})
	checkAgentLine(t, lines, "agent.tool_call", cl.Pid, func(m map[string]any) bool {
		return str(m, "gen_ai.tool.call.id") == claude.Call2
	}, map[string]string{
		"gen_ai.tool.name": "Write", "gen_ai.conversation.id": claude.Session, "vigil.prompt.id": claude.Prompt,
		"vigil.tool.decision": "accept", "event.outcome": "success",
	})
	codexPrompt := func(m map[string]any) bool {
		if id := str(m, "vigil.prompt.id"); id != codexPromptID {
			t.Errorf("%s: vigil.prompt.id %q, want %q like every line of the turn", str(m, "event.action"), id, codexPromptID)
		}
		return true
	}
	checkAgentLine(t, lines, "agent.prompt", cx.Pid, func(m map[string]any) bool {
		return str(m, "gen_ai.conversation.id") == codex.Session && codexPrompt(m)
	}, map[string]string{"gen_ai.agent.name": "codex", "vigil.prompt.text": "run the tests"})
	checkAgentLine(t, lines, "agent.tool_call", cx.Pid, func(m map[string]any) bool {
		return str(m, "gen_ai.tool.call.id") == codex.Call1 && codexPrompt(m)
	}, map[string]string{
		"gen_ai.tool.name": "exec_command", "gen_ai.conversation.id": codex.Session,
		"vigil.tool.decision": "approved", "vigil.tool.decision_source": "Config", "event.outcome": "success",
		"vigil.tool.command": codex.Command1,
	})
	for _, m := range lines {
		if str(m, "event.action") == "agent.tool_call" {
			if b, _ := field(m, "vigil.tool.success"); b != true {
				t.Errorf("agent.tool_call %s: vigil.tool.success %v, want true", str(m, "gen_ai.tool.call.id"), b)
			}
			if num(m, "vigil.tool.duration_ms") <= 0 {
				t.Errorf("agent.tool_call %s: no vigil.tool.duration_ms", str(m, "gen_ai.tool.call.id"))
			}
		}
	}
	for _, m := range lines {
		if str(m, "gen_ai.tool.call.id") == claude.Call2 && str(m, "event.action") == "agent.tool_call" {
			if v, _ := field(m, "vigil.tool.file_paths"); !containsAny(v, claude.Target) {
				t.Errorf("Write tool_call file_paths %v, want %s", v, claude.Target)
			}
		}
	}

	// ---- The spoofer: flagged, never bound, and invisible to the kernel side. ----
	var untrusted int
	for _, m := range lines {
		action := str(m, "event.action")
		if action == "agent.untrusted_telemetry" && num(m, "vigil.telemetry.sender_pid") == spoof.Pid {
			untrusted++
			if got := str(m, "vigil.telemetry.claimed_conversation_id"); got != claude.Session {
				t.Errorf("untrusted line claims %q, want %q", got, claude.Session)
			}
			if b, _ := field(m, "vigil.telemetry.trusted"); b != false {
				t.Errorf("untrusted line has vigil.telemetry.trusted %v", b)
			}
			if _, ok := field(m, "gen_ai.conversation.id"); ok {
				t.Errorf("untrusted line carries gen_ai.conversation.id: %v", m)
			}
		}
		if str(m, "gen_ai.tool.call.id") == spoofer.Call1 {
			t.Errorf("a %s line is bound to the spoofer's call %s", action, spoofer.Call1)
		}
		if str(m, "vigil.prompt.id") == spoofer.Prompt {
			t.Errorf("a %s line names the spoofer's prompt %s", action, spoofer.Prompt)
		}
		if strings.Contains(str(m, "vigil.join.traceparent"), spoofer.Span1) {
			t.Errorf("a %s line carries the spoofer's TRACEPARENT", action)
		}
		if kernelAction(action) && (num(m, "process.pid") == spoof.Pid || num(m, "process.pid") == spoof.ShellPid ||
			num(m, "vigil.root.pid") == spoof.Pid) {
			t.Errorf("kernel %s line of the spoofer's processes (not an agent tree): %v", action, m)
		}
		if action == "agent.prompt" && str(m, "gen_ai.conversation.id") == claude.Session && num(m, "process.pid") != cl.Pid {
			t.Errorf("agent.prompt of the Claude session from pid %d, not the fake claude", num(m, "process.pid"))
		}
	}
	if untrusted < 2 { // user_prompt and tool_decision; spans give no line
		t.Errorf("%d agent.untrusted_telemetry lines from the spoofer (pid %d), want 2", untrusted, spoof.Pid)
	}
	// They are written apart, so that no amount of them can rotate the agents' evidence away.
	for _, m := range linesOf(t, s.jsonl) {
		if str(m, "event.action") == "agent.untrusted_telemetry" {
			t.Errorf("an agent.untrusted_telemetry line in the events file, not the untrusted one: %v", m)
		}
	}

	t.Logf("recall Bash %s: %s", claude.Call1, bash)
	t.Logf("recall Codex %s: %s", codex.Call1, cxr)
	t.Logf("Write %s: %d open(s) of the temp file bound by file_path", claude.Call2, tmpOpens)
	for _, r := range []*recall{bash, cxr} {
		if r.keyed == 0 || r.keyedBound != r.keyed {
			t.Errorf("recall of keyed (exec, open) events %d/%d, want 100%%", r.keyedBound, r.keyed)
		}
	}
	if t.Failed() {
		dumpLines(t, lines, cl.Pid, cx.Pid, spoof.Pid)
	}
}

// ---- test side ----

// otlpHTTPAddr reads the receiver's bound address from the sensor's log (colored: the
// console writer colors field names when it does not detect a terminal too).
func otlpHTTPAddr(t *testing.T, s *runningSensor) string {
	t.Helper()
	plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(s.stderr.String(), "")
	m := regexp.MustCompile(`OTLP receiver listening.*\bhttp=(\S+)`).FindStringSubmatch(plain)
	if m == nil {
		t.Fatalf("no OTLP receiver address in the sensor's log:\n%s", s.stderr)
	}
	return m[1]
}

// copyAs copies the test binary into a directory of its own under name.
func copyAs(t *testing.T, src, name string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// runFake runs a fake agent to completion (15 s guard against a hang) and returns its report.
func runFake(t *testing.T, bin string, spec fakeSpec) fakeReport {
	t.Helper()
	spec.Report = filepath.Join(t.TempDir(), "report.json")
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), fakeAgentEnv+"="+string(js))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its group holds every child
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fake %s: %v\n%s", spec.Role, err, out.String())
		}
	case <-time.After(15 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		t.Fatalf("fake %s still running after 15s\n%s", spec.Role, out.String())
	}
	var r fakeReport
	data, err := os.ReadFile(spec.Report)
	if err == nil {
		err = json.Unmarshal(data, &r)
	}
	if err != nil {
		t.Fatalf("fake %s report: %v\n%s", spec.Role, err, out.String())
	}
	if r.Pid != pgid {
		t.Fatalf("fake %s reports pid %d, started %d", spec.Role, r.Pid, pgid)
	}
	return r
}

// waitForLine polls both output files (complete lines only) until a line matches; 15 s guard.
func waitForLine(t *testing.T, s *runningSensor, match func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, path := range []string{s.jsonl, s.config.untrusted} {
			if anyLine(path, match) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no matching line in %s or %s within 15s", s.jsonl, s.config.untrusted)
}

// anyLine reports whether a complete line of the JSONL file at path matches.
func anyLine(path string, match func(map[string]any) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return false // EOF or a line still being written
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && match(m) {
			return true
		}
	}
}

func kernelAction(a string) bool {
	switch a {
	case "exec", "fork", "exit", "open", "connect":
		return true
	}
	return false
}

// checkBound asserts a kernel line's correlation fields.
func checkBound(t *testing.T, m map[string]any, call, tool, session, prompt, binding, confidence string) {
	t.Helper()
	want := map[string]string{
		"gen_ai.tool.call.id": call, "gen_ai.tool.name": tool, "gen_ai.conversation.id": session,
		"vigil.prompt.id": prompt, "vigil.binding": binding, "vigil.confidence": confidence,
	}
	for k, v := range want {
		if got := str(m, k); got != v {
			t.Errorf("%s pid %d %s%s: %s = %q, want %q", str(m, "event.action"), num(m, "process.pid"),
				str(m, "process.executable"), str(m, "file.path"), k, got, v)
		}
	}
}

// checkAgentLine asserts that exactly one trusted line of action from sender matches pick,
// with the wanted fields.
func checkAgentLine(t *testing.T, lines []map[string]any, action string, sender int, pick func(map[string]any) bool, want map[string]string) {
	t.Helper()
	var found []map[string]any
	for _, m := range lines {
		if str(m, "event.action") == action && pick(m) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Errorf("%d %s lines match, want 1 (want %v)", len(found), action, want)
		return
	}
	m := found[0]
	if b, _ := field(m, "vigil.telemetry.trusted"); b != true || num(m, "vigil.telemetry.sender_pid") != sender || num(m, "process.pid") != sender {
		t.Errorf("%s: trusted %v sender %d process %d, want trusted from %d", action, b,
			num(m, "vigil.telemetry.sender_pid"), num(m, "process.pid"), sender)
	}
	if num(m, "vigil.root.pid") != sender {
		t.Errorf("%s: vigil.root.pid %d, want %d", action, num(m, "vigil.root.pid"), sender)
	}
	for k, v := range want {
		if got := str(m, k); got != v {
			t.Errorf("%s: %s = %q, want %q", action, k, got, v)
		}
	}
}

// recall counts the kernel events of a tool's process subtree bound to its call.
type recall struct {
	lines             []map[string]any
	pids              int
	total, bound      int
	keyed, keyedBound int // exec and open: the events a join key must bind
	byAction          map[string][2]int
	byBinding         map[string]int
}

func (r *recall) String() string {
	pct := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	actions := make([]string, 0, len(r.byAction))
	for a := range r.byAction {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	var parts []string
	for _, a := range actions {
		parts = append(parts, fmt.Sprintf("%s %d/%d", a, r.byAction[a][0], r.byAction[a][1]))
	}
	return fmt.Sprintf("%d processes, all events %d/%d (%.0f%%), exec+open %d/%d (%.0f%%); %s; bindings %v",
		r.pids, r.bound, r.total, pct(r.bound, r.total), r.keyedBound, r.keyed, pct(r.keyedBound, r.keyed),
		strings.Join(parts, ", "), r.byBinding)
}

// subtreeRecall finds the processes descending from top in root's tree (top included) and
// counts their kernel events bound to call.
func subtreeRecall(t *testing.T, lines []map[string]any, root, top int, call string) *recall {
	t.Helper()
	children := map[int][]int{}
	for _, m := range lines {
		if num(m, "vigil.root.pid") != root {
			continue
		}
		if a := str(m, "event.action"); a == "fork" || a == "exec" {
			children[num(m, "process.parent.pid")] = append(children[num(m, "process.parent.pid")], num(m, "process.pid"))
		}
	}
	in := map[int]bool{top: true}
	queue := []int{top}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !in[c] {
				in[c] = true
				queue = append(queue, c)
			}
		}
	}
	r := &recall{pids: len(in), byAction: map[string][2]int{}, byBinding: map[string]int{}}
	for _, m := range lines {
		a := str(m, "event.action")
		if !kernelAction(a) || num(m, "vigil.root.pid") != root || !in[num(m, "process.pid")] {
			continue
		}
		r.lines = append(r.lines, m)
		ok := str(m, "gen_ai.tool.call.id") == call
		r.total++
		c := r.byAction[a]
		c[1]++
		if ok {
			r.bound++
			c[0]++
		}
		r.byAction[a] = c
		r.byBinding[str(m, "vigil.binding")]++
		if a == "exec" || a == "open" {
			r.keyed++
			if ok {
				r.keyedBound++
			}
		}
	}
	if r.total == 0 {
		t.Errorf("no kernel line of pid %d's subtree under root %d", top, root)
	}
	return r
}

// dumpLines logs a compact view of the agent lines and of the kernel lines of roots.
func dumpLines(t *testing.T, lines []map[string]any, roots ...int) {
	t.Helper()
	for _, m := range lines {
		keep := !kernelAction(str(m, "event.action"))
		for _, r := range roots {
			keep = keep || num(m, "vigil.root.pid") == r
		}
		if keep {
			t.Logf("%s %-26s pid=%d ppid=%d root=%d %s%s conv=%s call=%s tool=%s prompt=%s binding=%s/%s join=%v",
				str(m, "@timestamp"), str(m, "event.action"), num(m, "process.pid"), num(m, "process.parent.pid"),
				num(m, "vigil.root.pid"), str(m, "process.executable"), str(m, "file.path"), str(m, "gen_ai.conversation.id"),
				str(m, "gen_ai.tool.call.id"), str(m, "gen_ai.tool.name"), str(m, "vigil.prompt.id"),
				str(m, "vigil.binding"), str(m, "vigil.confidence"), m["vigil"].(map[string]any)["join"])
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAny(v any, s string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- fake agent side (runs in the copied test binary, before TestMain) ----

func runFakeAgent(specJSON string) error {
	var spec fakeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	// Children see the agent's environment, not the fake agent's switch.
	os.Unsetenv(fakeAgentEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := fakeReport{Pid: os.Getpid()}
	var err error
	switch spec.Role {
	case "claude":
		err = fakeClaude(ctx, spec, &r)
	case "codex":
		err = fakeCodex(ctx, spec, &r)
	case "spoofer":
		err = fakeSpoofer(ctx, spec, &r)
	default:
		err = fmt.Errorf("unknown role %q", spec.Role)
	}
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(spec.Report, data, 0o644)
}

// otlpClient posts OTLP/JSON over one keep-alive connection, like Claude's exporter (one
// per signal for Codex: one client each).
type otlpClient struct {
	endpoint string
	c        *http.Client
	conns    int
	posts    int
}

func newOTLPClient(endpoint string) *otlpClient {
	return &otlpClient{endpoint: endpoint, c: &http.Client{
		Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true},
		Timeout:   5 * time.Second,
	}}
}

func (o *otlpClient) post(ctx context.Context, path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			o.conns++
		}
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.endpoint+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body) // read to the end: the connection is reused
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, reply)
	}
	o.posts++
	return nil
}

// OTLP/JSON attribute values, as the agents send them.
func kvStr(k, v string) map[string]any {
	return map[string]any{"key": k, "value": map[string]any{"stringValue": v}}
}
func kvInt(k string, v int64) map[string]any {
	return map[string]any{"key": k, "value": map[string]any{"intValue": v}}
}
func kvBool(k string, v bool) map[string]any {
	return map[string]any{"key": k, "value": map[string]any{"boolValue": v}}
}

func nanos(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// msTime is Claude's and Codex's event.timestamp: ISO 8601, milliseconds, UTC.
func msTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// claudeTelemetry builds Claude Code 2.1.197's records (correlate/testdata/claude).
type claudeTelemetry struct {
	spec        fakeSpec
	pid         string
	seq         int64
	interaction string // the prompt's claude_code.interaction span id
}

func (c *claudeTelemetry) resource() map[string]any {
	return map[string]any{"attributes": []any{
		kvStr("process.pid", c.pid), kvStr("host.arch", "amd64"), kvStr("os.type", "linux"),
		kvStr("os.version", "6.18.44"), kvStr("service.name", "claude-code"), kvStr("service.version", "2.1.197"),
	}, "droppedAttributesCount": 0}
}

func (c *claudeTelemetry) common() []any {
	return []any{kvStr("process.pid", c.pid), kvStr("user.id", strings.Repeat("1f", 32)),
		kvStr("session.id", c.spec.Session), kvStr("terminal.type", "dumb")}
}

// log is one log record of event name at time at.
func (c *claudeTelemetry) log(name string, at time.Time, attrs ...map[string]any) map[string]any {
	c.seq++
	all := append(c.common(), kvStr("event.name", name), kvStr("event.timestamp", msTime(at)),
		kvInt("event.sequence", c.seq), kvStr("prompt.id", c.spec.Prompt))
	for _, a := range attrs {
		all = append(all, a)
	}
	ms := at.Truncate(time.Millisecond)
	return map[string]any{
		"timeUnixNano": nanos(ms), "observedTimeUnixNano": nanos(ms),
		"body":       map[string]any{"stringValue": "claude_code." + name},
		"attributes": all, "droppedAttributesCount": 0, "flags": 1,
		"traceId": c.spec.Trace, "spanId": c.interaction,
	}
}

func (c *claudeTelemetry) logs(records ...any) map[string]any {
	return map[string]any{"resourceLogs": []any{map[string]any{
		"resource": c.resource(),
		"scopeLogs": []any{map[string]any{
			"scope":      map[string]any{"name": "com.anthropic.claude_code.events", "version": "2.1.197"},
			"logRecords": records,
		}},
	}}}
}

func (c *claudeTelemetry) span(name, id, parent string, start, end time.Time, attrs ...map[string]any) map[string]any {
	all := append(c.common(), kvStr("span.type", strings.TrimPrefix(name, "claude_code.")))
	for _, a := range attrs {
		all = append(all, a)
	}
	s := map[string]any{
		"traceId": c.spec.Trace, "spanId": id, "name": name, "kind": 1,
		"startTimeUnixNano": nanos(start.Truncate(time.Millisecond)), "endTimeUnixNano": nanos(end),
		"attributes": all, "droppedAttributesCount": 0, "events": []any{}, "droppedEventsCount": 0,
		"status": map[string]any{"code": 0}, "links": []any{}, "droppedLinksCount": 0, "flags": 257,
	}
	if parent != "" {
		s["parentSpanId"] = parent
	}
	return s
}

func (c *claudeTelemetry) traces(spans ...any) map[string]any {
	return map[string]any{"resourceSpans": []any{map[string]any{
		"resource": c.resource(),
		"scopeSpans": []any{map[string]any{
			"scope": map[string]any{"name": "com.anthropic.claude_code.tracing", "version": "1.0.0"},
			"spans": spans,
		}},
	}}}
}

// toolSpans are a tool call's claude_code.tool span and its claude_code.tool.execution child.
func (c *claudeTelemetry) toolSpans(tool, call, execSpan string, start, end time.Time, detail map[string]any) []any {
	toolSpan := randHex(8)
	return []any{
		c.span("claude_code.tool.execution", execSpan, toolSpan, start, end,
			kvStr("tool_use_id", call), kvStr("gen_ai.tool.call.id", call),
			kvInt("duration_ms", end.Sub(start).Milliseconds()), kvBool("success", true)),
		c.span("claude_code.tool", toolSpan, c.interaction, start, end,
			kvStr("tool_name", tool), detail, kvStr("tool_use_id", call), kvStr("gen_ai.tool.call.id", call),
			kvInt("duration_ms", end.Sub(start).Milliseconds())),
	}
}

func fakeClaude(ctx context.Context, spec fakeSpec, r *fakeReport) error {
	o := newOTLPClient(spec.Endpoint)
	c := &claudeTelemetry{spec: spec, pid: strconv.Itoa(os.Getpid()), interaction: randHex(8)}
	begin := time.Now()
	prompt := "fix the build"
	if err := o.post(ctx, "/v1/logs", c.logs(c.log("user_prompt", begin,
		kvStr("prompt_length", strconv.Itoa(len(prompt))), kvStr("prompt", prompt)))); err != nil {
		return err
	}

	// Bash: tool_decision, the shell (a direct child, TRACEPARENT naming the execution span),
	// then the spans and tool_result once its processes have exited.
	params := mustJSON(map[string]string{"bash_command": "cat", "full_command": spec.Command1, "description": "Show the files"})
	decided := time.Now()
	if err := o.post(ctx, "/v1/logs", c.logs(c.log("tool_decision", decided,
		kvStr("tool_name", "Bash"), kvStr("tool_use_id", spec.Call1), kvStr("decision", "accept"),
		kvStr("source", "config"), kvStr("tool_parameters", params)))); err != nil {
		return err
	}
	shell := exec.CommandContext(ctx, "/bin/bash", "-c", spec.Command1)
	shell.Dir = spec.Dir
	shell.Env = append(os.Environ(),
		"TRACEPARENT=00-"+spec.Trace+"-"+spec.Span1+"-01",
		"CLAUDE_CODE_SESSION_ID="+spec.Session, "CLAUDECODE=1", "AI_AGENT=claude-code_2-1-197_agent",
		"CLAUDE_CODE_ENTRYPOINT=sdk-cli")
	out, err := shell.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bash tool: %v: %s", err, out)
	}
	r.ShellPid = shell.Process.Pid
	finished := time.Now()
	if err := o.post(ctx, "/v1/traces", c.traces(c.toolSpans("Bash", spec.Call1, spec.Span1, decided, finished,
		kvStr("full_command", spec.Command1))...)); err != nil {
		return err
	}
	input := mustJSON(map[string]string{"command": spec.Command1, "description": "Show the files"})
	if err := o.post(ctx, "/v1/logs", c.logs(c.log("tool_result", time.Now(),
		kvStr("tool_name", "Bash"), kvStr("tool_use_id", spec.Call1), kvStr("success", "true"),
		kvStr("duration_ms", strconv.FormatInt(finished.Sub(decided).Milliseconds()+1, 10)),
		kvStr("tool_parameters", params), kvStr("tool_input", input),
		kvStr("tool_input_size_bytes", strconv.Itoa(len(input))), kvStr("tool_result_size_bytes", strconv.Itoa(len(out)))))); err != nil {
		return err
	}

	// Write: in-process, atomically through <file>.tmp.<pid>.<12 hex>. As in the samples,
	// tool_decision names no file; tool_result (tool_input) and the tool span do.
	decided = time.Now()
	if err := o.post(ctx, "/v1/logs", c.logs(c.log("tool_decision", decided,
		kvStr("tool_name", "Write"), kvStr("tool_use_id", spec.Call2), kvStr("decision", "accept"),
		kvStr("source", "config")))); err != nil {
		return err
	}
	r.TmpPath = fmt.Sprintf("%s.tmp.%d.%s", spec.Target, os.Getpid(), randHex(6))
	f, err := os.OpenFile(r.TmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("written by the fake claude\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(r.TmpPath, spec.Target); err != nil {
		return err
	}
	finished = time.Now()
	input = mustJSON(map[string]string{"file_path": spec.Target, "content": "written by the fake claude\n"})
	if err := o.post(ctx, "/v1/logs", c.logs(c.log("tool_result", finished,
		kvStr("tool_name", "Write"), kvStr("tool_use_id", spec.Call2), kvStr("success", "true"),
		kvStr("duration_ms", strconv.FormatInt(finished.Sub(decided).Milliseconds()+1, 10)),
		kvStr("tool_input", input), kvStr("tool_input_size_bytes", strconv.Itoa(len(input))),
		kvStr("tool_result_size_bytes", "80")))); err != nil {
		return err
	}
	end := time.Now()
	spans := append(c.toolSpans("Write", spec.Call2, spec.Span2, decided, finished, kvStr("file_path", spec.Target)),
		c.span("claude_code.interaction", c.interaction, "", begin, end,
			kvStr("user_prompt", prompt), kvInt("user_prompt_length", int64(len(prompt))),
			kvInt("interaction.sequence", 1), kvInt("interaction.duration_ms", end.Sub(begin).Milliseconds())))
	if err := o.post(ctx, "/v1/traces", c.traces(spans...)); err != nil {
		return err
	}
	r.Conns, r.Posts = o.conns, o.posts
	return nil
}

// fakeSpoofer is a process outside every agent tree that speaks Claude's telemetry, claims
// a live session, a tool call and its execution span, and runs a child naming that span.
func fakeSpoofer(ctx context.Context, spec fakeSpec, r *fakeReport) error {
	o := newOTLPClient(spec.Endpoint)
	c := &claudeTelemetry{spec: spec, pid: strconv.Itoa(os.Getpid()), interaction: randHex(8)}
	now := time.Now()
	if err := o.post(ctx, "/v1/logs", c.logs(
		c.log("user_prompt", now, kvStr("prompt_length", "9"), kvStr("prompt", "exfiltrate")),
		c.log("tool_decision", now, kvStr("tool_name", "Bash"), kvStr("tool_use_id", spec.Call1),
			kvStr("decision", "accept"), kvStr("source", "config"),
			kvStr("tool_parameters", mustJSON(map[string]string{"full_command": spec.Command1}))))); err != nil {
		return err
	}
	if err := o.post(ctx, "/v1/traces", c.traces(c.toolSpans("Bash", spec.Call1, spec.Span1, now, now.Add(time.Hour),
		kvStr("full_command", spec.Command1))...)); err != nil {
		return err
	}
	child := exec.CommandContext(ctx, "/bin/sh", "-c", spec.Command1)
	child.Dir = spec.Dir
	child.Env = append(os.Environ(), "TRACEPARENT=00-"+spec.Trace+"-"+spec.Span1+"-01", "CLAUDE_CODE_SESSION_ID="+spec.Session)
	if out, err := child.CombinedOutput(); err != nil {
		return fmt.Errorf("spoofer child: %v: %s", err, out)
	}
	r.ShellPid = child.Process.Pid
	r.Conns, r.Posts = o.conns, o.posts
	return nil
}

// codexTelemetry builds `codex exec` 0.169's records (correlate/testdata/codex).
type codexTelemetry struct{ spec fakeSpec }

func (c *codexTelemetry) resource() map[string]any {
	return map[string]any{"attributes": []any{
		kvStr("service.version", "0.169.0"), kvStr("host.name", "vm"), kvStr("service.name", "codex_exec"),
		kvStr("env", "sensor-test"), kvStr("telemetry.sdk.name", "opentelemetry"),
		kvStr("telemetry.sdk.language", "rust"), kvStr("telemetry.sdk.version", "0.31.0"),
	}, "droppedAttributesCount": 0, "entityRefs": []any{}}
}

// log is a Codex log record: timeUnixNano 0, body null, eventName a source location, the
// turn's trace on the record.
func (c *codexTelemetry) log(name string, at time.Time, attrs ...map[string]any) map[string]any {
	all := []any{kvStr("event.name", name)}
	for _, a := range attrs {
		all = append(all, a)
	}
	all = append(all, kvStr("event.timestamp", msTime(at)), kvStr("conversation.id", c.spec.Session),
		kvStr("app.version", "0.169.0"), kvStr("originator", "codex_exec"), kvStr("terminal.type", "dumb"),
		kvStr("model", "gpt-5.5"), kvStr("slug", "gpt-5.5"))
	return map[string]any{
		"timeUnixNano": "0", "observedTimeUnixNano": nanos(at), "severityNumber": 9, "severityText": "INFO",
		"body": nil, "attributes": all, "droppedAttributesCount": 0, "flags": 1,
		"traceId": c.spec.Trace, "spanId": randHex(8), "eventName": "event otel/src/events/session_telemetry.rs:1225",
	}
}

func (c *codexTelemetry) logs(records ...any) map[string]any {
	return map[string]any{"resourceLogs": []any{map[string]any{
		"resource": c.resource(),
		"scopeLogs": []any{map[string]any{
			"scope":      map[string]any{"name": "codex_otel.log_only", "version": "", "attributes": []any{}, "droppedAttributesCount": 0},
			"logRecords": records,
		}},
	}}}
}

func (c *codexTelemetry) span(name string, start, end time.Time, attrs ...map[string]any) map[string]any {
	return map[string]any{
		"traceId": c.spec.Trace, "spanId": randHex(8), "parentSpanId": randHex(8), "name": name, "kind": 1,
		"startTimeUnixNano": nanos(start), "endTimeUnixNano": nanos(end), "attributes": attrs,
		"droppedAttributesCount": 0, "events": []any{}, "droppedEventsCount": 0,
		"status": map[string]any{"code": 0}, "links": []any{}, "droppedLinksCount": 0, "flags": 257,
	}
}

func fakeCodex(ctx context.Context, spec fakeSpec, r *fakeReport) error {
	// Codex opens one connection per signal.
	logs, traces := newOTLPClient(spec.Endpoint), newOTLPClient(spec.Endpoint)
	c := &codexTelemetry{spec: spec}
	begin := time.Now()
	prompt := "run the tests"
	if err := logs.post(ctx, "/v1/logs", c.logs(c.log("codex.user_prompt", begin,
		kvStr("prompt_length", strconv.Itoa(len(prompt))), kvStr("prompt", prompt)))); err != nil {
		return err
	}
	decided := time.Now()
	if err := logs.post(ctx, "/v1/logs", c.logs(c.log("codex.tool_decision", decided,
		kvStr("tool_name", "exec_command"), kvStr("tool_namespace", "functions"), kvStr("call_id", spec.Call1),
		kvStr("decision", "approved"), kvStr("source", "Config")))); err != nil {
		return err
	}
	shell := exec.CommandContext(ctx, "/bin/bash", "-c", spec.Command1)
	shell.Dir = spec.Dir
	shell.Env = append(os.Environ(), "CODEX_TOOL_CALL_ID="+spec.Call1, "CODEX_SESSION_ID="+spec.Session,
		"CODEX_THREAD_ID="+spec.Session, "CODEX_CI=1", "CODEX_VERSION=0.169.0")
	out, err := shell.CombinedOutput()
	if err != nil {
		return fmt.Errorf("exec_command: %v: %s", err, out)
	}
	r.ShellPid = shell.Process.Pid
	finished := time.Now()
	if err := logs.post(ctx, "/v1/logs", c.logs(c.log("codex.tool_result", finished,
		kvInt("tool_result_seq", 1), kvStr("tool_name", "exec_command"), kvStr("tool_namespace", "functions"),
		kvStr("call_id", spec.Call1), kvStr("duration_ms", strconv.FormatInt(finished.Sub(decided).Milliseconds()+1, 10)),
		kvStr("success", "true"), kvBool("output_truncated", false), kvStr("agent_name", "/root"),
		kvStr("arguments", mustJSON(map[string]any{"cmd": spec.Command1, "yield_time_ms": 5000})),
		kvStr("output", "Process exited with code 0\nOutput:\n"+string(out))))); err != nil {
		return err
	}
	// Traces at the end of the turn: the tool's dispatch span and run_turn, which name the turn.
	end := time.Now()
	if err := traces.post(ctx, "/v1/traces", map[string]any{"resourceSpans": []any{map[string]any{
		"resource": c.resource(),
		"scopeSpans": []any{map[string]any{
			"scope": map[string]any{"name": "codex_exec", "version": "", "attributes": []any{}, "droppedAttributesCount": 0},
			"spans": []any{
				c.span("exec_command", decided, finished, kvStr("tool_name", "exec_command"),
					kvStr("conversation.id", spec.Session), kvStr("turn.id", spec.Turn), kvStr("turn_id", spec.Turn),
					kvStr("tool_source", "direct"), kvStr("call_id", spec.Call1), kvStr("codex.tool.phase", "dispatch")),
				c.span("run_turn", begin, end, kvStr("conversation.id", spec.Session), kvStr("turn.id", spec.Turn)),
			},
		}},
	}}}); err != nil {
		return err
	}
	r.Conns, r.Posts = logs.conns+traces.conns, logs.posts+traces.posts
	return nil
}
