package correlate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

func TestCommandPathWords(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"cat .e2e/vmark_0_0_.txt", []string{"cat", ".e2e/vmark_0_0_.txt"}},
		{"./.e2e/vmark_0_0_; cat notes.txt | wc -l", []string{"./.e2e/vmark_0_0_", "cat", "notes.txt", "wc"}},
		{`cat 'my notes.txt' "a b".md x\ y`, []string{"cat", "my notes.txt", "a b.md", "x y"}},
		{"head -c 20 .env > /dev/null 2>&1", []string{"head", "20", ".env", "/dev/null", "2", "1"}},
		{"cat *_out.txt $HOME/x ~/y {a,b}.txt `pwd`/z \"$D\"/w", []string{"cat"}},
		{"FOO=bar cat /nonexistent.bar", []string{"cat", "/nonexistent.bar"}},
		{"(cd sub && ls) && cp a.txt b.txt", []string{"cd", "sub", "ls", "cp", "a.txt", "b.txt"}},
		{"echo 'unterminated", []string{"echo"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := commandPathWords(tt.cmd); !slices.Equal(got, tt.want) {
			t.Errorf("commandPathWords(%q)\n got  %q\n want %q", tt.cmd, got, tt.want)
		}
	}
}

func TestResolveWord(t *testing.T) {
	const cwd = "/var/tmp/vigil-e2e/claude-pipeline/repo"
	tests := []struct{ word, cwd, want string }{
		{"notes.txt", cwd, cwd + "/notes.txt"},
		{"./.e2e/../notes.txt", cwd, cwd + "/notes.txt"},
		{"/nonexistent.bar", cwd, "/nonexistent.bar"},
		{"/nonexistent.bar", "", "/nonexistent.bar"},
		{"notes.txt", "", ""},
		{".", cwd, ""},
		{"..", cwd, ""},
		{"/var/tmp", cwd, ""},
		{"/", cwd, ""},
		{"sub/", cwd, cwd + "/sub"},
	}
	for _, tt := range tests {
		if got := resolveWord(tt.word, tt.cwd); got != tt.want {
			t.Errorf("resolveWord(%q, %q) = %q, want %q", tt.word, tt.cwd, got, tt.want)
		}
	}
}

// stBashCalls is Claude telemetry of Bash calls decided at from and finished at to, sent by
// sender over transport.
func stBashCalls(transport string, sender int, from, to string, calls map[string]string) TelemetryBatch {
	b := TelemetryBatch{Transport: transport, SenderPid: sender}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range calls {
			if !yield(id) {
				return
			}
		}
	}) {
		b.Events = append(b.Events, stSynth(proto.KindToolDecision, from, func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Decision, ae.DecisionSource, ae.Command = "Bash", id, "accept", "config", calls[id]
		}), stSynth(proto.KindToolResult, to, func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Success, ae.Command = "Bash", id, boolp(true), calls[id]
		}))
	}
	return b
}

// TestStitchCommandPath: Claude Code's own process opens the file arguments of a Bash command
// (O_PATH, from its main thread and "Bun Pool" threads) before the shell starts, inside the
// call's window (e2e claude/pipeline: three opens of notes.txt ~30 ms before the shell).
func TestStitchCommandPath(t *testing.T) {
	const hookPid = 31999 // a `vigil hook` process of claude's tree: the hooks-only sender
	lookup := func(pid int) (sensor.ProcessInfo, bool) {
		if pid == hookPid {
			return sensor.ProcessInfo{Pid: hookPid, PPid: stClaudePid, Name: "vigil", RootPid: stClaudePid}, true
		}
		return stLookup(pid)
	}
	isAgent := func(p sensor.ProcessInfo) bool { return p.Agent != "" && p.Name == "claude" }
	agentOpen := func(at, path string) kev {
		return kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: at, cwd: stClaudeRepo, path: path}
	}
	in := func(id string) bound {
		return bound{proto.BindingCommandPath, "medium", id, "Bash", claudeSession, claudePrompt}
	}
	none := bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}
	telemetry := func(transport string, sender int) []TelemetryBatch {
		prompt := TelemetryBatch{Transport: transport, SenderPid: sender, Events: []proto.AgentEvent{
			stSynth(proto.KindUserPrompt, "11:26:59.000", func(ae *proto.AgentEvent) { ae.Prompt = "show the marker" }),
		}}
		return append([]TelemetryBatch{prompt},
			stBashCalls(transport, sender, "11:27:00.000", "11:27:00.300", map[string]string{"toolu_cat": "cat .e2e/vmark_0_0_.txt"}),
			stBashCalls(transport, sender, "11:27:10.000", "11:27:10.300", map[string]string{
				"toolu_a": "cat notes.txt; ./.e2e/vmark_0_0_", "toolu_b": "cat notes.txt; ls /nonexistent.bar",
			}),
			stBashCalls(transport, sender, "11:27:20.000", "11:27:20.300", map[string]string{"toolu_dot": "ls . ..; cat ../up.txt"}),
		)
	}
	rows := []stRow{
		{"pre-check open of the command's file", agentOpen("11:27:00.004", stClaudeRepo+"/.e2e/vmark_0_0_.txt"), in("toolu_cat")},
		{"the same from a Bun Pool thread", agentOpen("11:27:00.008", stClaudeRepo+"/.e2e/vmark_0_0_.txt"), in("toolu_cat")},
		{"a path the command does not name", agentOpen("11:27:00.010", stClaudeRepo+"/other.txt"), none},
		{"the named path after the window", agentOpen("11:27:01.000", stClaudeRepo+"/.e2e/vmark_0_0_.txt"), none},
		{"a tool process's open of the path is not the agent's", kev{action: proto.ActionOpen, pid: 77001, ppid: stClaudePid, root: stClaudePid,
			at: "11:27:00.100", cwd: stClaudeRepo, path: stClaudeRepo + "/.e2e/vmark_0_0_.txt"},
			bound{proto.BindingWindow, "low", "toolu_cat", "Bash", claudeSession, claudePrompt}},
		{"a path two running calls name binds neither", agentOpen("11:27:10.005", stClaudeRepo+"/notes.txt"), none},
		{"an absolute path only one of them names", agentOpen("11:27:10.006", "/nonexistent.bar"), in("toolu_b")},
		{"the working directory itself is never a named path", agentOpen("11:27:20.005", stClaudeRepo), none},
		{"nor its parent", agentOpen("11:27:20.006", stWork+"/runs/claude-final"), none},
		{"a relative path up the tree is", agentOpen("11:27:20.007", stWork+"/runs/claude-final/up.txt"), in("toolu_dot")},
	}
	t.Run("otlp", func(t *testing.T) {
		stScenarioWith(t, StitcherOptions{Lookup: lookup}, rows, telemetry("otlp_http", stClaudePid), false)
	})
	// With hooks only, the telemetry sender is a `vigil hook` process: the agent's own
	// process is known by its image (IsAgent).
	t.Run("hooks only", func(t *testing.T) {
		stScenarioWith(t, StitcherOptions{Lookup: lookup, IsAgent: isAgent}, rows, telemetry(TransportHook, hookPid), false)
	})
	t.Run("hooks only, no agent test", func(t *testing.T) {
		var unbound []stRow
		for _, r := range rows {
			if r.want.binding == proto.BindingCommandPath {
				r.want = none
			}
			unbound = append(unbound, r)
		}
		stScenarioWith(t, StitcherOptions{Lookup: lookup}, unbound, telemetry(TransportHook, hookPid), false)
	})
}

// stHookRun adapts every recorded hook call of the Claude sample run (testdata/hooks/claude,
// managed_*) as the hook socket hands them over: in the order they ran, each at the time it
// ran, from one `vigil hook` sender.
func stHookRun(t *testing.T, sender int) []TelemetryBatch {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "hooks", "claude", "managed_*.json"))
	type call struct {
		at time.Time
		ev []proto.AgentEvent
	}
	var calls []call
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			TS float64 `json:"ts"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		at := time.Unix(0, int64(rec.TS*1e9)).UTC()
		evs, err := adaptHookAt(agents.ClaudeCode, hookSample(t, filepath.Join("claude", filepath.Base(f))), at)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range evs {
			evs[i].Command = stPath(evs[i].Command)
			for j, p := range evs[i].FilePaths {
				evs[i].FilePaths[j] = stPath(p)
			}
		}
		calls = append(calls, call{at, evs})
	}
	slices.SortFunc(calls, func(a, b call) int { return a.at.Compare(b.at) })
	var out []TelemetryBatch
	for _, c := range calls {
		out = append(out, TelemetryBatch{Events: c.ev, Transport: TransportHook, SenderPid: sender})
	}
	return out
}

// TestStitchClaudeHooksOnly: telemetry off, `vigil hook` configured. Each PreToolUse and
// PostToolUse carries tool_use_id, prompt_id and tool_input, so the Bash shell binds by its
// command and the in-process file tools by their paths, inside the Pre→PostToolUse window.
// The sender is a hook process, never the agent: the agent's own opens are known by its image.
func TestStitchClaudeHooksOnly(t *testing.T) {
	const hookPid = 31999
	lookup := func(pid int) (sensor.ProcessInfo, bool) {
		if pid == hookPid {
			return sensor.ProcessInfo{Pid: hookPid, PPid: stClaudePid, Name: "vigil", RootPid: stClaudePid}, true
		}
		return stLookup(pid)
	}
	isAgent := func(p sensor.ProcessInfo) bool { return p.Agent != "" && p.Name == "claude" }
	inBash := bound{proto.BindingCommand, "medium", stClaudeBash, "Bash", claudeSession, claudePrompt}
	byFile := func(id, tool string) bound {
		return bound{proto.BindingFilePath, "medium", id, tool, claudeSession, claudePrompt}
	}
	rows := []stRow{
		{"Bash shell's fork", kev{action: proto.ActionFork, pid: 31292, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.320", cwd: stClaudeRepo}, inBash},
		{"Bash shell: its TRACEPARENT names no span the hooks know, its eval word is the command", kev{action: proto.ActionExec, pid: 31292, ppid: stClaudePid,
			root: stClaudePid, at: "11:25:41.323068", args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)}, inBash},
		{"shell child exec readlink", kev{action: proto.ActionExec, pid: 31294, ppid: 31292, root: stClaudePid, at: "11:25:41.367902",
			args: []string{"readlink", "/proc/31292/fd/0"}, cwd: stClaudeRepo}, inBash},
		{"Read: claude opens notes.txt", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:42.600",
			cwd: stClaudeRepo, path: stNotes}, byFile(stClaudeRead, "Read")},
		{"Write: claude opens out.txt.tmp.<pid>.<hex>", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:43.743645",
			cwd: stClaudeRepo, path: stOut + ".tmp.31206.09bd5289bf29"}, byFile(stClaudeWrite, "Write")},
		{"Edit: claude opens notes.txt.tmp.<pid>.<hex>", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:44.661442",
			cwd: stClaudeRepo, path: stNotes + ".tmp.31206.eaf26c242b19"}, byFile(stClaudeEdit, "Edit")},
		{"claude opens out.txt after every window", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:45.300",
			cwd: stClaudeRepo, path: stOut}, bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}},
	}
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) {
			stScenarioWith(t, StitcherOptions{Lookup: lookup, IsAgent: isAgent}, rows, stHookRun(t, hookPid), late)
		})
	}
}

func FuzzCommandPathWords(f *testing.F) {
	for _, s := range []string{"cat .e2e/vmark_0_0_.txt", `cat 'a b' "c\"d" e\ f; ls`, "echo 'x", `"\`, "A=b c > d 2>&1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		for _, w := range commandPathWords(cmd) {
			if w == "" || w[0] == '-' {
				t.Fatalf("word %q of %q", w, cmd)
			}
			_ = resolveWord(w, "/srv/work/repo")
		}
	})
}
