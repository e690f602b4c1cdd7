package sensor

import (
	"reflect"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// The exec history of a process is what the kernel saw since its fork: a Codex tool shell's
// three execs in one pid, each with the keys read at that exec; a fork starts it empty.
func TestProcessTableExecHistory(t *testing.T) {
	tab, _ := newPTTable(ProcessTableOptions{})
	ptSeedClaude(tab)
	if p, _ := tab.Lookup(100); p.ForkSeen || len(p.Execs) != 0 {
		t.Errorf("seeded root: fork seen %v, execs %v", p.ForkSeen, p.Execs)
	}
	key := agents.JoinKeysOf("CODEX_TOOL_CALL_ID=call_1")
	tab.Apply(ptFork(100, 200, 600*clockTickNs))
	if p, _ := tab.Lookup(200); !p.ForkSeen || len(p.Execs) != 0 {
		t.Errorf("forked child: fork seen %v, execs %v", p.ForkSeen, p.Execs)
	}
	tab.Apply(ptExec(200, 600*clockTickNs, "/usr/bin/codex", "/w", nil, "/proc/self/exe", "--codex-run-as-process-setup"))
	held, _ := tab.Lookup(200) // a caller's copy must not change under it
	tab.Apply(ptExec(200, 600*clockTickNs, "/usr/bin/bash", "/w", key, "/bin/bash", "-c", "x"))
	tab.Apply(ptExec(200, 600*clockTickNs, "/usr/bin/vigil", "/w", nil, "vigil", "hook"))
	p, _ := tab.Lookup(200)
	want := []ExecRecord{
		{Executable: "/usr/bin/codex", Args: []string{"/proc/self/exe", "--codex-run-as-process-setup"}},
		{Executable: "/usr/bin/bash", Args: []string{"/bin/bash", "-c", "x"}, Join: key},
		{Executable: "/usr/bin/vigil", Args: []string{"vigil", "hook"}},
	}
	if !reflect.DeepEqual(p.Execs, want) || p.ExecsTruncated || p.Join != nil {
		t.Errorf("execs %+v truncated %v join %v", p.Execs, p.ExecsTruncated, p.Join)
	}
	if len(held.Execs) != 1 {
		t.Errorf("a held lookup changed: %+v", held.Execs)
	}
	// A failed exec is not history.
	failed := ptExec(200, 600*clockTickNs, "/nope", "/w", nil, "nope")
	failed.Event.Outcome = proto.OutcomeFailure
	tab.Apply(failed)
	// Past the bound the oldest execs go, and the history says so.
	tab.Apply(ptExec(200, 600*clockTickNs, "/bin/a", "/w", nil, "a"))
	tab.Apply(ptExec(200, 600*clockTickNs, "/bin/b", "/w", nil, "b"))
	p, _ = tab.Lookup(200)
	if len(p.Execs) != MaxExecHistory || !p.ExecsTruncated || p.Execs[0].Executable != "/usr/bin/bash" || p.Execs[3].Executable != "/bin/b" {
		t.Errorf("bounded history %+v truncated %v", p.Execs, p.ExecsTruncated)
	}
	// The fork of a process the table never saw has no complete history.
	tab.Apply(ptFork(999, 300, 700*clockTickNs))
	if p, _ := tab.Lookup(300); p.ForkSeen {
		t.Error("fork from an unknown parent counted as seen")
	}
}
