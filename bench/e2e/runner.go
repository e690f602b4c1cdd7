package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Ports inside the scenario's network namespace (nothing else listens there).
const (
	anthropicAddr = "127.0.0.1:8765"
	openaiAddr    = "127.0.0.1:8766"
	geminiAddr    = "127.0.0.1:8767"
	copilotAddr   = "127.0.0.1:8768"
	otlpAddr      = "127.0.0.1:4318"
	// agentTimeout bounds one agent process: the slowest scenario (claude/silent) keeps its
	// tool calls running for over 120 s.
	agentTimeout = 200 * time.Second
)

// Meta is what the in-namespace run records besides the JSONL and the ground truth.
type Meta struct {
	Scenario   string    `json:"scenario"`
	Agent      string    `json:"agent"`
	Version    string    `json:"version"`
	Repo       string    `json:"repo"`
	SiblingDir string    `json:"sibling_dir"`
	Home       string    `json:"home"`       // the agent's HOME
	AgentPids  []int     `json:"agent_pids"` // the processes the harness started (roots)
	SiblingPid int       `json:"sibling_pid"`
	SiblingRun int       `json:"sibling_runs"` // iterations of the sibling loop
	Exit       []string  `json:"exit"`         // per agent process
	Sessions   []string  `json:"sessions"`     // session / thread ids from the agent's stream
	Start      time.Time `json:"start"`        // just before the first agent process is started
	End        time.Time `json:"end"`          // after the last agent process exited
	// AgentSeconds is End − Start: the agent's wall time (what bench's real-agent part reports).
	AgentSeconds float64 `json:"agent_seconds"`
	// NoSensor: run without `vigil run` (-no-sensor); an OTLP sink took the telemetry.
	NoSensor bool `json:"no_sensor,omitempty"`
	// StraceLogs are the independent recorder's files, one per agent process started.
	StraceLogs []string `json:"strace_logs,omitempty"`
	WaitedFor  string   `json:"waited_for,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

type childOpts struct {
	scenario Scenario
	dir      string
	npmDir   string
	vigil    string
	source   sensorChoice // vigil run --source and kernel.audit_scope, "" for the defaults
	noSensor bool         // no `vigil run`: an OTLP sink on the same address instead
	// record runs the agent under the independent recorder (strace); off when only the
	// agent's wall time is measured (-timing), which strace would slow down.
	record bool
}

// runChild runs one scenario; it is already inside its own network namespace.
func runChild(o childOpts) error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	sc := o.scenario.withRunPaths(o.vigil, o.dir)
	meta := &Meta{Scenario: sc.Name, Agent: sc.Agent, Repo: filepath.Join(o.dir, "repo"), SiblingDir: filepath.Join(o.dir, "sibling")}
	defer func() {
		b, _ := json.MarshalIndent(meta, "", "  ")
		os.WriteFile(filepath.Join(o.dir, "meta.json"), b, 0o644)
	}()
	home := agentHome(sc, o.dir)
	meta.Home = home
	if home != filepath.Join(o.dir, "home") {
		// Outside the scenario folder: start clean, leave nothing behind in /home.
		if err := os.RemoveAll(home); err != nil {
			return err
		}
		defer os.RemoveAll(home)
	}
	for _, d := range []string{meta.Repo, meta.SiblingDir, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := seedRepo(meta.Repo, sc.Files, true); err != nil {
		return err
	}
	if err := seedRepo(meta.SiblingDir, sc.Files, false); err != nil {
		return err
	}
	for _, d := range []string{meta.Repo, meta.SiblingDir} {
		if err := seedMarkers(d, sc); err != nil {
			return err
		}
	}
	if err := seedHome(home, sc.HomeFiles); err != nil {
		return err
	}
	if sc.usesPublic() {
		stop, err := startPublic(sc, o.dir)
		if err != nil {
			return err
		}
		defer stop()
	}

	// The sensor, or with -no-sensor a sink that answers the agent's OTLP exports as the
	// sensor's receiver would (so the agent does the same work either way).
	sensor := &vigilProc{}
	meta.NoSensor = o.noSensor
	if o.noSensor {
		stop, err := startOTLPSink()
		if err != nil {
			return err
		}
		defer stop()
	} else {
		var err error
		if sensor, err = startVigil(o.vigil, o.dir, o.source); err != nil {
			return err
		}
	}
	defer sensor.stop()
	if sc.Managed {
		if err := installManaged(o); err != nil {
			return err
		}
	}

	// The mock LLM API.
	mlog, err := os.Create(filepath.Join(o.dir, "mock_requests.jsonl"))
	if err != nil {
		return err
	}
	defer mlog.Close()
	mock := newMock(sc, meta.Repo, mlog)
	addr := anthropicAddr
	switch sc.Agent {
	case "codex":
		addr = openaiAddr
	case "gemini":
		addr = geminiAddr
	case "copilot", "opencode":
		addr = mock.chatDialect.addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mock LLM API: %w", err)
	}
	srv := &http.Server{Handler: mock}
	go srv.Serve(ln)
	defer srv.Close()

	// The sibling: the same commands, outside any agent tree.
	sib := startSibling(sc, meta.SiblingDir)
	meta.SiblingPid = sib.pid()

	meta.Start = time.Now()
	var runErr error
	switch sc.Agent {
	case "claude":
		runErr = runClaude(sc, o, meta, home)
	case "codex":
		runErr = runCodex(sc, o, meta, home)
	case "gemini":
		runErr = runGemini(sc, o, meta, home)
	case "opencode":
		runErr = runOpencode(sc, o, meta, home)
	case "copilot":
		runErr = runCopilot(sc, o, meta, home)
	}
	meta.End = time.Now()
	meta.AgentSeconds = meta.End.Sub(meta.Start).Seconds()
	if runErr != nil {
		meta.Notes = append(meta.Notes, "agent: "+runErr.Error())
	}
	if sc.WaitFor != "" {
		p := filepath.Join(meta.Repo, sc.WaitFor)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(p); err == nil {
				meta.WaitedFor = time.Now().Format(time.RFC3339Nano)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if meta.WaitedFor == "" {
			meta.Notes = append(meta.Notes, "background file "+sc.WaitFor+" never appeared")
		}
	}
	meta.SiblingRun = sib.stop()
	// Late telemetry (Codex flushes traces at exit) and the sensor's hold.
	if !o.noSensor {
		time.Sleep(3 * time.Second)
	}
	if err := sensor.stop(); err != nil {
		meta.Notes = append(meta.Notes, "vigil: "+err.Error())
	}
	if err := writeCalls(filepath.Join(o.dir, "calls.json"), mock.Calls()); err != nil {
		return err
	}
	return runErr
}

// agentHome is the agent's HOME: in the scenario folder, or, for a scenario with home files,
// /home/vigil-e2e-<agent>-<name>, a home where the rules look for one (HomeRel: /home/<user>/
// or /root/), so that ~/.ssh/id_rsa is an SSH key to them.
func agentHome(sc Scenario, dir string) string {
	if len(sc.HomeFiles) == 0 {
		return filepath.Join(dir, "home")
	}
	return filepath.Join("/home", "vigil-e2e-"+sc.Agent+"-"+sc.Name)
}

// seedRepo writes the scenario files; the agent's repository is a git repository (both
// agents look for one), the sibling's copy is not.
func seedRepo(dir string, files map[string]string, git bool) error {
	if len(files) == 0 {
		files = map[string]string{"notes.txt": "hello world\nsecond line\n"}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if !git {
		return nil
	}
	for _, args := range [][]string{
		{"init", "-q", "."},
		{"-c", "user.email=e2e@vigil", "-c", "user.name=e2e", "add", "-A"},
		{"-c", "user.email=e2e@vigil", "-c", "user.name=e2e", "commit", "-qm", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %v: %v: %s", args, err, out)
		}
	}
	return nil
}

// markerHelper is the script a shell call runs first (truth.go): its file name carries the
// call's token; it reads its own marker file and leaves a background grandchild, in a session
// of its own so that no process-group kill ends it, that reads another one after the call.
const markerHelper = `#!/bin/sh
cat "$0.txt" >/dev/null
setsid -f sh -c 'sleep 1; cat "$0.bg" >/dev/null' "$0" </dev/null >/dev/null 2>&1
`

// seedMarkers writes each shell call's marker helper and files into dir/.e2e, kept out of
// git's view so that the agents' own git commands see the scenario's files only.
func seedMarkers(dir string, sc Scenario) error {
	md := filepath.Join(dir, markerHelperDir)
	if err := os.MkdirAll(md, 0o755); err != nil {
		return err
	}
	for p, pr := range sc.allPrompts() {
		for t := range pr.Turns {
			base := filepath.Join(md, markerToken(p, t))
			if err := os.WriteFile(base, []byte(markerHelper), 0o755); err != nil {
				return err
			}
			for _, ext := range []string{".txt", ".bg"} {
				if err := os.WriteFile(base+ext, []byte(markerToken(p, t)+"\n"), 0o644); err != nil {
					return err
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "info")); err == nil {
		f, err := os.OpenFile(filepath.Join(dir, ".git", "info", "exclude"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(markerHelperDir + "/\n")
		return err
	}
	return nil
}

// agentCommand is the command that runs the agent: under the independent recorder, writing
// its log to dir/strace.<n>.txt (named in meta), when o.record is set.
func agentCommand(ctx context.Context, o childOpts, meta *Meta, bin string, args ...string) *exec.Cmd {
	if !o.record {
		return exec.CommandContext(ctx, bin, args...)
	}
	name := fmt.Sprintf("strace.%d.txt", len(meta.StraceLogs))
	meta.StraceLogs = append(meta.StraceLogs, name)
	return exec.CommandContext(ctx, "strace", append(append(straceArgs(filepath.Join(o.dir, name)), bin), args...)...)
}

// noteAgentPid adds the agent process cmd started to meta: strace's child when recorded
// (from the first line of its log), else cmd's own process.
func noteAgentPid(o childOpts, meta *Meta, cmd *exec.Cmd) error {
	if !o.record {
		meta.AgentPids = append(meta.AgentPids, cmd.Process.Pid)
		return nil
	}
	name := meta.StraceLogs[len(meta.StraceLogs)-1]
	f, err := os.Open(filepath.Join(o.dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	var pid int
	if _, err := fmt.Fscan(f, &pid); err != nil {
		return fmt.Errorf("%s: no pid on its first line: %w", name, err)
	}
	meta.AgentPids = append(meta.AgentPids, pid)
	return nil
}

// perPromptAgent is an agent run as one process per prompt (Codex, Gemini, Copilot,
// opencode): the first process starts a session, each later one continues it by the session
// (or thread) id the first one printed on its JSON output.
type perPromptAgent struct {
	name    string // for errors
	bin     string
	env     []string
	session sessionEvent
	// args are the arguments of prompt i's process; session is the id the first process
	// printed ("" for prompt 0).
	args func(i int, session string) []string
	// check, when set, looks at meta after each prompt's process exited 0.
	check func(meta *Meta) error
}

// runPerPrompt runs a's processes one after the other, in the repository, each under the
// independent recorder (agentCommand) and its own agentTimeout. Their stdout lines go to
// agent_stdout.jsonl, their stderr to agent_stderr.txt; meta gets each process's session ids,
// exit and pid. The first failing process ends the run.
func runPerPrompt(sc Scenario, o childOpts, meta *Meta, a perPromptAgent) error {
	stdout, err := os.Create(filepath.Join(o.dir, "agent_stdout.jsonl"))
	if err != nil {
		return fmt.Errorf("%s: %w", a.name, err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(o.dir, "agent_stderr.txt"))
	if err != nil {
		return fmt.Errorf("%s: %w", a.name, err)
	}
	defer stderr.Close()
	for i := range sc.Prompts {
		// meta.Sessions starts empty: its first id is the first process's session.
		session := ""
		if i > 0 {
			if len(meta.Sessions) == 0 {
				return fmt.Errorf("%s: no session id from the first prompt, cannot continue its session", a.name)
			}
			session = meta.Sessions[0]
		}
		if err := runAgentPrompt(o, meta, a, a.args(i, session), stdout, stderr); err != nil {
			return fmt.Errorf("%s prompt %d: %w", a.name, i, err)
		}
		if a.check != nil {
			if err := a.check(meta); err != nil {
				return fmt.Errorf("%s prompt %d: %w", a.name, i, err)
			}
		}
	}
	return nil
}

// runAgentPrompt runs one agent process to its end: every stdout line is copied to stdout
// and scanned for a's session event (scanSessionEvents); its exit goes to meta.Exit, its pid
// to meta.AgentPids.
func runAgentPrompt(o childOpts, meta *Meta, a perPromptAgent, args []string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	cmd := agentCommand(ctx, o, meta, a.bin, args...)
	cmd.Dir = meta.Repo
	cmd.Env = a.env
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	scanSessionEvents(pipe, stdout, a.session, meta)
	err = cmd.Wait()
	meta.Exit = append(meta.Exit, exitString(err))
	if perr := noteAgentPid(o, meta, cmd); perr != nil {
		return perr
	}
	return err
}

// sessionEvent names the JSON event of an agent's output that carries its session id: its
// "type" ("" for any event that has the field) and the field.
type sessionEvent struct{ typ, field string }

// id is the session id line carries, if it is that event.
func (e sessionEvent) id(line []byte) string {
	var ev map[string]json.RawMessage
	if json.Unmarshal(line, &ev) != nil {
		return ""
	}
	var typ, id string
	json.Unmarshal(ev["type"], &typ)
	if e.typ != "" && typ != e.typ {
		return ""
	}
	json.Unmarshal(ev[e.field], &id)
	return id
}

// scanSessionEvents copies every line of an agent's stdout to w and appends each session id
// its events carry to meta.Sessions, unless it is the last one there (every event of a
// session repeats its id; a resumed process prints it again).
func scanSessionEvents(r io.Reader, w io.Writer, ev sessionEvent, meta *Meta) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4<<20), 4<<20)
	for s.Scan() {
		line := s.Bytes()
		w.Write(append(append([]byte{}, line...), '\n'))
		if id := ev.id(line); id != "" && (len(meta.Sessions) == 0 || meta.Sessions[len(meta.Sessions)-1] != id) {
			meta.Sessions = append(meta.Sessions, id)
		}
	}
}

// ---------------------------------------------------------------- vigil run

type vigilProc struct {
	cmd  *exec.Cmd
	done chan error
	err  error
}

func startVigil(bin, dir string, source sensorChoice) (*vigilProc, error) {
	cfg := filepath.Join(dir, "vigil.yaml")
	// The shipped defaults (embedded default.yaml: ring buffer, hold, queues) except where the
	// output goes: large files, because other agent trees on the machine (the project's own
	// eBPF tests create fake "claude" processes) are recorded too and must not rotate this
	// scenario's events away, and the store, hook socket and hold journal in the scenario's
	// folder (a scenario must not recover another's held events, nor write the machine's store).
	yaml := fmt.Sprintf(`output:
  jsonl: %s
  untrusted_jsonl: %s
  flood_jsonl: %s
  max_size_mb: 2048
  max_files: 3
  store: %s
correlate:
  otlp_http: %s
  otlp_grpc: ""
  hook_socket: %s
  hook_undelivered_dir: %s
  hold_journal: %s
`, filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "untrusted.jsonl"), filepath.Join(dir, "floods.jsonl"), filepath.Join(dir, "vigil.db"), otlpAddr,
		filepath.Join(dir, "hook.sock"), filepath.Join(dir, "hook-undelivered"), filepath.Join(dir, "hold"))
	if source.auditScope != "" {
		yaml += "kernel:\n  audit_scope: " + source.auditScope + "\n"
	}
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "vigil.log"))
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--config", cfg}
	if source.source != "" {
		args = append(args, "--source", source.source)
	}
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	v := &vigilProc{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !signalled && strings.Contains(sc.Text(), "vigil running") {
				close(ready)
				signalled = true
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		v.done <- err
	}()
	select {
	case <-ready:
		return v, nil
	case err := <-v.done:
		return nil, fmt.Errorf("vigil run exited before it was ready: %v (see %s)", err, logf.Name())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("vigil run not ready after 30s (see %s)", logf.Name())
	}
}

// startOTLPSink listens on the sensor's OTLP/HTTP address and answers every export with
// 200 and an empty JSON object (what an OTLP/HTTP receiver returns for a full success).
func startOTLPSink() (func(), error) {
	ln, err := net.Listen("tcp", otlpAddr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// stop sends SIGTERM once and waits (the sensor releases every held event and exits).
func (v *vigilProc) stop() error {
	if v.cmd == nil {
		return nil
	}
	if v.cmd.ProcessState != nil || v.done == nil {
		return v.err
	}
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case v.err = <-v.done:
	case <-time.After(20 * time.Second):
		v.cmd.Process.Kill()
		v.err = errors.New("vigil run did not stop within 20s of SIGTERM")
	}
	v.done = nil
	return v.err
}

// ---------------------------------------------------------------- sibling

type sibling struct {
	cmd  *exec.Cmd
	runs chan int
	quit chan struct{}
}

// startSibling runs the scenario's shell commands (or a few file reads) again and again in
// a copy of the repository, as a process the agent did not start.
func startSibling(sc Scenario, dir string) *sibling {
	var cmds []string
	for _, p := range sc.allPrompts() {
		for _, t := range p.Turns {
			if t.Command != "" {
				cmds = append(cmds, t.Command)
			}
			if t.File != "" {
				cmds = append(cmds, "cat "+shellQuote(t.File)+" >/dev/null 2>&1; true")
			}
		}
	}
	if len(cmds) == 0 {
		cmds = []string{"cat notes.txt >/dev/null"}
	}
	var script strings.Builder
	script.WriteString("while :; do\n")
	for _, c := range cmds {
		fmt.Fprintf(&script, "  ( %s ) >/dev/null 2>&1 </dev/null\n", c)
	}
	script.WriteString("  echo run\n  sleep 0.3\ndone\n")
	s := &sibling{runs: make(chan int, 1), quit: make(chan struct{})}
	s.cmd = exec.Command("/bin/bash", "-c", script.String())
	s.cmd.Dir = dir
	s.cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "LANG=C.UTF-8", "E2E_SIBLING=1"}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := s.cmd.StdoutPipe()
	if err := s.cmd.Start(); err != nil {
		s.runs <- 0
		return s
	}
	go func() {
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n++
		}
		s.runs <- n
	}()
	return s
}

func (s *sibling) pid() int {
	if s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *sibling) stop() int {
	if s.cmd.Process == nil {
		return <-s.runs
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	select {
	case n := <-s.runs:
		return n
	case <-time.After(5 * time.Second):
		return -1
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

// ---------------------------------------------------------------- Claude Code

func claudeEnv(sc Scenario, home string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "TERM=dumb", "LANG=C.UTF-8", "USER=root", "SHELL=/bin/bash",
		"IS_SANDBOX=1",
		"ANTHROPIC_BASE_URL=http://" + anthropicAddr, "ANTHROPIC_API_KEY=dummy-e2e-key",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "DISABLE_ERROR_REPORTING=1", "DISABLE_TELEMETRY=1",
	}
	if !sc.HooksOnly && !sc.NoTelemetry && !sc.Managed {
		env = append(env, "CLAUDE_CODE_ENABLE_TELEMETRY=1", "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1",
			"OTEL_LOGS_EXPORTER=otlp", "OTEL_METRICS_EXPORTER=otlp", "OTEL_TRACES_EXPORTER=otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+otlpAddr,
			"OTEL_LOG_USER_PROMPTS=1", "OTEL_LOG_TOOL_DETAILS=1", "OTEL_LOG_TOOL_CONTENT=1")
	}
	// Claude's own export intervals (5 s) unless the scenario sets others.
	for _, k := range slices.Sorted(maps.Keys(sc.AgentEnv)) {
		env = append(env, k+"="+sc.AgentEnv[k])
	}
	if sc.StrongKeys && !sc.HooksOnly && !sc.Managed {
		env = append(env, "CLAUDE_CODE_PROPAGATE_TRACEPARENT=1")
	}
	return env
}

func runClaude(sc Scenario, o childOpts, meta *Meta, home string) error {
	if !sc.Resume || len(sc.Prompts) == 1 {
		return runClaudeOnce(sc, o, meta, home, -1, "")
	}
	for i := range sc.Prompts {
		session := ""
		if i > 0 {
			if len(meta.Sessions) == 0 {
				return errors.New("claude: no session id from the first prompt, cannot resume")
			}
			session = meta.Sessions[0]
		}
		if err := runClaudeOnce(sc, o, meta, home, i, session); err != nil {
			return err
		}
	}
	return nil
}

// runClaudeOnce runs one claude process: every prompt through stream-json input (prompt <
// 0), or prompt alone, resuming session when it is set.
// hookEvents are the hook events a hooks-only scenario forwards to Vigil (both agents use
// these names and the same hooks.json shape).
var hookEvents = []string{"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"}

// writeHooks configures `vigil hook` for every hook event in path (Claude's settings.json or
// Codex's hooks.json), pointed at the scenario's socket and undelivered folder.
func writeHooks(path string, o childOpts, agent string) error {
	cmd := fmt.Sprintf("%s hook --agent %s --socket %s --undelivered-dir %s", o.vigil, agent,
		filepath.Join(o.dir, "hook.sock"), filepath.Join(o.dir, "hook-undelivered"))
	hooks := map[string]any{}
	for _, ev := range hookEvents {
		hooks[ev] = []any{map[string]any{"hooks": []any{map[string]any{"type": "command", "command": cmd}}}}
	}
	b, err := json.MarshalIndent(map[string]any{"hooks": hooks}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func runClaudeOnce(sc Scenario, o childOpts, meta *Meta, home string, prompt int, session string) error {
	bin := filepath.Join(o.npmDir, "node_modules", ".bin", "claude")
	args := []string{"-p", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"}
	if session != "" {
		args = append(args, "--resume", session)
	}
	multi := prompt < 0 && len(sc.Prompts) > 1
	switch {
	case multi:
		args = append(args, "--input-format", "stream-json")
	case prompt < 0:
		args = append(args, sc.promptText(0))
	default:
		args = append(args, sc.promptText(prompt))
	}
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	if sc.HooksOnly {
		if err := writeHooks(filepath.Join(home, ".claude", "settings.json"), o, "claude-code"); err != nil {
			return err
		}
	}
	cmd := agentCommand(ctx, o, meta, bin, args...)
	cmd.Dir = meta.Repo
	cmd.Env = claudeEnv(sc, home)
	stdout, err := os.OpenFile(filepath.Join(o.dir, "agent_stdout.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, _ := os.OpenFile(filepath.Join(o.dir, "agent_stderr.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	defer stderr.Close()
	cmd.Stderr = stderr
	var stdin io.WriteCloser
	if multi {
		stdin, _ = cmd.StdinPipe()
	} else {
		cmd.Stdin = nil
	}
	pipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	send := func(i int) {
		msg := map[string]any{"type": "user", "message": map[string]any{"role": "user",
			"content": []any{map[string]any{"type": "text", "text": sc.promptText(i)}}}}
		b, _ := json.Marshal(msg)
		stdin.Write(append(b, '\n'))
	}
	next := 0
	if multi {
		send(0)
		next = 1
	}
	sessions := map[string]bool{}
	sc2 := bufio.NewScanner(pipe)
	sc2.Buffer(make([]byte, 4<<20), 4<<20)
	for sc2.Scan() {
		line := sc2.Bytes()
		stdout.Write(append(append([]byte{}, line...), '\n'))
		var ev struct {
			Type      string `json:"type"`
			SessionID string `json:"session_id"`
		}
		json.Unmarshal(line, &ev)
		if ev.SessionID != "" && !sessions[ev.SessionID] {
			sessions[ev.SessionID] = true
			meta.Sessions = append(meta.Sessions, ev.SessionID)
		}
		if ev.Type == "result" && multi {
			if next < len(sc.Prompts) {
				send(next)
				next++
			} else {
				stdin.Close()
			}
		}
	}
	err = cmd.Wait()
	meta.Exit = append(meta.Exit, exitString(err))
	if perr := noteAgentPid(o, meta, cmd); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("claude: %v", err)
	}
	return nil
}

func exitString(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// ---------------------------------------------------------------- Codex

func codexConfig(sc Scenario, repo string) string {
	otel := `
[otel]
environment = "vigil-e2e"
log_user_prompt = true
`
	exporters := `exporter = { otlp-http = { endpoint = "http://` + otlpAddr + `/v1/logs", protocol = "json" } }
`
	if sc.Managed {
		otel, exporters = "", "" // the system config's [otel] table, from vigil install
	} else if sc.HooksOnly {
		exporters = ""
	} else if sc.StrongKeys {
		exporters += `trace_exporter = { otlp-http = { endpoint = "http://` + otlpAddr + `/v1/traces", protocol = "json" } }
metrics_exporter = { otlp-http = { endpoint = "http://` + otlpAddr + `/v1/metrics", protocol = "json" } }
`
	}
	return `model = "gpt-5.5"
model_provider = "mock"
approval_policy = "never"
check_for_update_on_startup = false

[model_providers.mock]
name = "mock"
base_url = "http://` + openaiAddr + `/v1"
env_key = "MOCK_OPENAI_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false
remote_plugin = false
plugin_sharing = false
apps = false
` + otel + exporters + `
[projects."` + repo + `"]
trust_level = "trusted"
`
}

// runCodex runs one `codex exec --json` process per prompt; the later ones continue the
// first one's thread with `codex exec resume <thread id>` (the thread_id of its
// thread.started event).
func runCodex(sc Scenario, o childOpts, meta *Meta, home string) error {
	codexHome := filepath.Join(home, ".codex")
	if err := os.MkdirAll(codexHome, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), []byte(codexConfig(sc, meta.Repo)), 0o644); err != nil {
		return err
	}
	if sc.HooksOnly {
		if err := writeHooks(filepath.Join(codexHome, "hooks.json"), o, "codex"); err != nil {
			return err
		}
	}
	return runPerPrompt(sc, o, meta, perPromptAgent{
		name: "codex",
		bin:  filepath.Join(o.npmDir, "node_modules", ".bin", "codex"),
		env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "CODEX_HOME=" + codexHome, "TERM=dumb",
			"LANG=C.UTF-8", "USER=root", "SHELL=/bin/bash", "MOCK_OPENAI_API_KEY=dummy-e2e-key", "RUST_LOG=warn"},
		session: sessionEvent{typ: "thread.started", field: "thread_id"},
		args: func(i int, thread string) []string {
			args := []string{"exec", "--json", "--dangerously-bypass-approvals-and-sandbox"}
			if sc.HooksOnly {
				args = append(args, "--dangerously-bypass-hook-trust") // user hooks run only with it
			}
			if i > 0 {
				args = append(args, "resume", thread)
			}
			return append(args, sc.promptText(i))
		},
	})
}

// ---------------------------------------------------------------- Gemini CLI

// geminiSettings is ~/.gemini/settings.json as a fleet would set it
// (../shared/research/agents/gemini.md): telemetry to the sensor's OTLP/HTTP receiver with the
// prompts logged (telemetry.traces stays off: it only adds payloads to the spans, which are
// exported without it); no usage statistics and no update check, which would try the
// network; folder trust off, since a headless run in an untrusted folder exits 55 before its
// first model call; and the API-key auth type, without which GOOGLE_GEMINI_BASE_URL makes it
// "gateway", which -p refuses (exit 41).
var geminiSettings = map[string]any{
	"general":  map[string]any{"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
	"privacy":  map[string]any{"usageStatisticsEnabled": false},
	"security": map[string]any{"auth": map[string]any{"selectedType": "gemini-api-key"}, "folderTrust": map[string]any{"enabled": false}},
	"telemetry": map[string]any{"enabled": true, "target": "local", "otlpEndpoint": "http://" + otlpAddr,
		"otlpProtocol": "http", "logPrompts": true},
}

// runGemini runs one `gemini -p` process per prompt; the later ones continue the first one's
// session with --resume <session id> (the id of stream-json's init event).
func runGemini(sc Scenario, o childOpts, meta *Meta, home string) error {
	settings := maps.Clone(geminiSettings)
	if sc.Managed {
		delete(settings, "telemetry") // the system settings', from vigil install
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(home, ".gemini"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(home, ".gemini", "settings.json"), b, 0o644); err != nil {
		return fmt.Errorf("gemini settings: %w", err)
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "TERM=dumb", "LANG=C.UTF-8", "USER=root", "SHELL=/bin/bash",
		"GOOGLE_GEMINI_BASE_URL=http://" + geminiAddr, "GEMINI_API_KEY=dummy-e2e-key"}
	for _, k := range slices.Sorted(maps.Keys(sc.AgentEnv)) {
		env = append(env, k+"="+sc.AgentEnv[k])
	}
	return runPerPrompt(sc, o, meta, perPromptAgent{
		name:    "gemini",
		bin:     filepath.Join(o.npmDir, "node_modules", ".bin", "gemini"),
		env:     env,
		session: sessionEvent{typ: "init", field: "session_id"},
		args: func(i int, session string) []string {
			// -m: the mock's model, and no model routing request before the turn.
			args := []string{"-p", sc.promptText(i), "--yolo", "-m", "gemini-2.5-flash", "--output-format", "stream-json"}
			if i > 0 {
				args = append(args, "--resume", session)
			}
			return args
		},
	})
}

// ---------------------------------------------------------------- GitHub Copilot CLI

// copilotPkgCache is where Copilot CLI's single-executable binary unpacks its JavaScript and
// native package (COPILOT_PKG_CACHE_HOME): once, at install time (main.go ensureAgents), in
// the npm folder, so that no scenario unpacks 235 MB into its scratch HOME.
func copilotPkgCache(npmDir string) string { return filepath.Join(npmDir, "copilot-pkg-cache") }

// copilotEnv is Copilot CLI's environment as ../shared/research/agents/copilot.md ran it and a
// fleet would set it: the mock as the BYOK provider (no GitHub sign-in), offline (no gh probes,
// no api.github.com), no auto update, and OTLP/HTTP JSON to the sensor. Strong keys add
// content capture, which puts each command on its execute_tool span
// (github.copilot.tool.parameters.command); the fallback variant has the spans' ids and
// windows only.
func copilotEnv(sc Scenario, home, npmDir string) []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "TERM=dumb", "LANG=C.UTF-8", "USER=root", "SHELL=/bin/bash",
		"COPILOT_PKG_CACHE_HOME=" + copilotPkgCache(npmDir), "COPILOT_OFFLINE=true", "COPILOT_AUTO_UPDATE=false",
		"COPILOT_PROVIDER_BASE_URL=http://" + copilotAddr + "/v1", "COPILOT_PROVIDER_API_KEY=dummy-e2e-key", "COPILOT_MODEL=gpt-4.1",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpAddr, "OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}
	if sc.StrongKeys {
		env = append(env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true")
	}
	for _, k := range slices.Sorted(maps.Keys(sc.AgentEnv)) {
		env = append(env, k+"="+sc.AgentEnv[k])
	}
	return env
}

// runCopilot runs one `copilot -p` process per prompt (through the npm loader, as a user
// starts it): the first with --trust-folder, the later ones continuing its session with
// --resume=<session id> (the sessionId of the first one's result event). Copilot refuses
// --trust-folder beside --resume or --session-id, so a resumed process runs in an untrusted
// folder, which only skips repository hooks (there are none).
func runCopilot(sc Scenario, o childOpts, meta *Meta, home string) error {
	return runPerPrompt(sc, o, meta, perPromptAgent{
		name:    "copilot",
		bin:     filepath.Join(o.npmDir, "node_modules", ".bin", "copilot"),
		env:     copilotEnv(sc, home, o.npmDir),
		session: sessionEvent{typ: "result", field: "sessionId"},
		args: func(i int, session string) []string {
			args := []string{"-p", sc.promptText(i), "--allow-all", "--no-auto-update", "--output-format", "json"}
			if i == 0 {
				return append(args, "--trust-folder")
			}
			return append(args, "--resume="+session)
		},
		// A resume that silently started a new session would score the second prompt's
		// calls against the wrong session.
		check: func(meta *Meta) error {
			if len(meta.Sessions) > 1 {
				return fmt.Errorf("--resume=%s ran session %s", meta.Sessions[0], meta.Sessions[len(meta.Sessions)-1])
			}
			return nil
		},
	})
}
