package correlate

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// stSubstringShell is the argv of Claude Code 2.1.197's Bash shell from the e2e run
// claude/substring (the snapshot path and cwd file as there).
func stSubstringShell(cmd string) []string {
	return []string{"/bin/bash", "-c", "source /var/tmp/vigil-e2e/claude-substring/home/.claude/shell-snapshots/snapshot-bash-1796409105145-n6ebj7.sh" +
		" 2>/dev/null || true && shopt -u extglob 2>/dev/null || true && eval '" + strings.ReplaceAll(cmd, "'", `'"'"'`) +
		"' < /dev/null && pwd -P >| /tmp/claude-bf66-cwd"}
}

func TestEvalWords(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []evalWord
	}{
		{"claude shell", stSubstringShell("cat notes.txt; ./.e2e/vmark_0_0_"), []evalWord{{text: "cat notes.txt; ./.e2e/vmark_0_0_"}}},
		{"quotes in the command", stSubstringShell(`echo 'a b' "c'd"; grep -E '^(x|y)$' f`),
			[]evalWord{{text: `echo 'a b' "c'd"; grep -E '^(x|y)$' f`}}},
		{"double-quoted segments with escapes", []string{"sh", "-c", `eval 'echo '"\"\$HOME\" \\"'x' && true`},
			[]evalWord{{text: `echo "$HOME" \x`}}},
		{"at the end of the argument", []string{"bash", "-c", "eval 'ls -1'"}, []evalWord{{text: "ls -1"}}},
		{"two evals", []string{"bash", "-c", "eval 'a'; eval 'b'"}, []evalWord{{text: "a"}, {text: "b"}}},
		{"cut off by a bounded argv", []string{"/bin/bash", "-c", "source s && eval 'cat notes.txt; ./.e2e/vm"},
			[]evalWord{{text: "cat notes.txt; ./.e2e/vm", cut: true}}},
		{"no eval", []string{"/bin/bash", "-c", "cat notes.txt"}, nil},
		{"part of another word", []string{"bash", "-c", "noeval 'x'"}, nil},
		{"unquoted word is not interpreted", []string{"bash", "-c", "eval $CMD"}, nil},
		{"mixed unquoted text is not interpreted", []string{"bash", "-c", "eval 'a'b"}, nil},
		{"empty word", []string{"bash", "-c", "eval '' && x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evalWords(tt.args); !slices.Equal(got, tt.want) {
				t.Errorf("evalWords(%q)\n got  %+v\n want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func FuzzEvalWords(f *testing.F) {
	for _, s := range []string{stSubstringShell("cat a; cat 'b'")[2], `eval "a\"b" 'c'`, "eval '", `eval "\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range evalWords([]string{s}) {
			if !w.cut && !strings.Contains(s, "eval ") {
				t.Fatalf("word %q without eval in %q", w.text, s)
			}
		}
	})
}

// stSubstring: logs only (no TRACEPARENT), two Bash calls of one assistant message run at
// once and one's command is inside the other's, as in the e2e run claude/substring. Each
// shell binds to the call whose command is its eval word.
func stSubstring(t testing.TB) (rows []stRow, telemetry []TelemetryBatch) {
	const (
		a, b   = "toolu_e2e_0_0", "toolu_e2e_0_1"
		cmdA   = "cat notes.txt; ./.e2e/vmark_0_0_"
		cmdB   = "cat notes.txt; ./.e2e/vmark_0_0_; ./.e2e/vmark_0_1_"
		cmdQ   = `grep -c 'x' notes.txt`
		cmdQ2  = `grep -c 'x' notes.txt; echo 'done'`
		shellA = 468
		shellB = 476
	)
	calls := func(ids, cmds []string, from, to string) TelemetryBatch {
		var evs []proto.AgentEvent
		for i, id := range ids {
			evs = append(evs, stSynth(proto.KindToolDecision, from, func(ae *proto.AgentEvent) {
				ae.ToolName, ae.ToolUseID, ae.Decision, ae.DecisionSource = "Bash", id, "accept", "config"
			}), stSynth(proto.KindToolResult, to, func(ae *proto.AgentEvent) {
				ae.ToolName, ae.ToolUseID, ae.Success, ae.Command = "Bash", id, boolp(true), cmds[i]
			}))
		}
		return TelemetryBatch{Events: evs, Transport: "otlp_http", SenderPid: stClaudePid}
	}
	in := func(id string) bound {
		return bound{proto.BindingCommand, "medium", id, "Bash", claudeSession, claudePrompt}
	}
	none := bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}
	shell := func(pid int, at, cmd string) kev {
		return kev{action: proto.ActionExec, pid: pid, ppid: stClaudePid, root: stClaudePid, at: at, cwd: stClaudeRepo,
			args: stSubstringShell(cmd), join: claudeJoin("")}
	}
	child := func(pid, ppid int, at string, args ...string) kev {
		return kev{action: proto.ActionExec, pid: pid, ppid: ppid, root: stClaudePid, at: at, cwd: stClaudeRepo, args: args, join: claudeJoin("")}
	}
	telemetry = append(stRun(t, "claude", stClaudePid, nil),
		calls([]string{a, b}, []string{cmdA, cmdB}, "11:26:45.098", "11:26:45.327"),
		calls([]string{"toolu_q", "toolu_q2"}, []string{cmdQ, cmdQ2}, "11:26:50.000", "11:26:50.300"),
		calls([]string{"toolu_only"}, []string{cmdA}, "11:26:55.000", "11:26:55.300"),
	)
	rows = []stRow{
		{"A's shell's fork, before its exec", kev{action: proto.ActionFork, pid: shellA, ppid: stClaudePid, root: stClaudePid, at: "11:26:45.105",
			cwd: stClaudeRepo, args: []string{"claude"}}, in(a)},
		{"B's shell's fork", kev{action: proto.ActionFork, pid: shellB, ppid: stClaudePid, root: stClaudePid, at: "11:26:45.106",
			cwd: stClaudeRepo, args: []string{"claude"}}, in(b)},
		{"A's shell", shell(shellA, "11:26:45.110", cmdA), in(a)},
		{"B's shell holds A's command too", shell(shellB, "11:26:45.112", cmdB), in(b)},
		{"A's cat inherits", child(shellA+1, shellA, "11:26:45.120", "cat", "notes.txt"), in(a)},
		{"B's marker inherits", child(shellB+2, shellB, "11:26:45.125", "./.e2e/vmark_0_1_"), in(b)},
		{"single quotes, the shorter", shell(600, "11:26:50.010", cmdQ), in("toolu_q")},
		{"single quotes, the longer", shell(601, "11:26:50.011", cmdQ2), in("toolu_q2")},
		{"a bounded argv cut inside both commands binds neither", kev{action: proto.ActionExec, pid: 602, ppid: stClaudePid, root: stClaudePid,
			at: "11:26:45.200", cwd: stClaudeRepo, args: []string{"/bin/bash", "-c", "source s && eval 'cat notes.txt; ./.e2e/vm"}}, none},
		{"a bounded argv cut inside B's command only", kev{action: proto.ActionExec, pid: 603, ppid: stClaudePid, root: stClaudePid,
			at: "11:26:45.200", cwd: stClaudeRepo, args: []string{"/bin/bash", "-c", "source s && eval 'cat notes.txt; ./.e2e/vmark_0_0_; ./.e2e/v"}}, in(b)},
		// Only A's twin running: a shell evaluating a longer command (a call whose telemetry
		// never came) is not bound by command, although A's text is inside its argv; only the
		// window (low) speaks for it.
		{"another command's shell while only A's twin runs", shell(700, "11:26:55.010", cmdB), bound{proto.BindingWindow, "low", "toolu_only", "Bash", claudeSession, claudePrompt}},
		{"a plain sh -c with the only matching text", child(701, stClaudePid, "11:26:55.020", "/bin/sh", "-c", cmdA), bound{proto.BindingCommand, "medium", "toolu_only", "Bash", claudeSession, claudePrompt}},
	}
	return rows, telemetry
}

func TestStitchCommandInsideAnother(t *testing.T) {
	rows, telemetry := stSubstring(t)
	stScenario(t, rows, telemetry, false)
}
