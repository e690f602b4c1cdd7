package correlate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// stWriter numbers released records the way the pipeline does (event.sequence), so that
// binding records can name them.
type stWriter struct{ seq uint64 }

func (w *stWriter) write(evs []*proto.Event) []*proto.Event {
	for _, e := range evs {
		w.seq++
		e.Event.Sequence = w.seq
	}
	return evs
}

// stBindings returns the binding records among evs by the sequence they bind, each
// sequence's records in order.
func stBindings(t *testing.T, evs []*proto.Event) map[uint64][]proto.BindingRecord {
	t.Helper()
	out := map[uint64][]proto.BindingRecord{}
	for _, e := range evs {
		if e.Event.Action != proto.ActionBinding {
			continue
		}
		r, ok := proto.BindingRecordOf(e)
		if !ok {
			t.Fatalf("binding line does not read back: %+v", e)
		}
		if e.Event.Kind != "event" || e.Event.Dataset != proto.DatasetCorrelate {
			t.Errorf("binding line kind %q dataset %q", e.Event.Kind, e.Event.Dataset)
		}
		out[r.Sequence] = append(out[r.Sequence], r)
	}
	return out
}

func first[A, B any](a A, _ B) A { return a }

// TestStitchLateBinding: every kernel line of the sample runs is written before any telemetry
// arrives (the hold ran out); when the telemetry lands, each line it binds is followed by one
// binding record carrying what the line would have carried had the telemetry been on time.
func TestStitchLateBinding(t *testing.T) {
	isLogs := func(f string) bool { return strings.Contains(f, "logs") }
	tests := []struct {
		name      string
		rows      []stRow
		telemetry func(t *testing.T) []TelemetryBatch
	}{
		{"claude", stClaudeRows(), func(t *testing.T) []TelemetryBatch { return stRun(t, "claude", stClaudePid, nil) }},
		{"codex", stCodexRows(codexTurn), func(t *testing.T) []TelemetryBatch { return stRun(t, "codex", stCodexPid, nil) }},
		{"codex logs only", stCodexRows(codexTrace), func(t *testing.T) []TelemetryBatch { return stRun(t, "codex", stCodexPid, isLogs) }},
		// The fork, setup exec and opens of each parallel exec_command take the key of the
		// same process's later exec; a Claude shell's fork the command binding of its exec.
		{"codex parallel", first(stCodexParallel()), func(t *testing.T) []TelemetryBatch { _, tel := stCodexParallel(); return tel }},
		{"claude command inside another", first(stSubstring(t)), func(t *testing.T) []TelemetryBatch { _, tel := stSubstring(t); return tel }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: time.Millisecond, Late: time.Hour, MaxLate: 100})
			var w stWriter
			start := time.Now()
			lines := make([]*proto.Event, len(tt.rows))
			for i, r := range tt.rows {
				lines[i] = r.ev.event()
				s.Push(lines[i])
			}
			written := w.write(s.Release(start.Add(time.Second), false))
			if len(written) != len(lines) {
				t.Fatalf("first release wrote %d lines, want %d", len(written), len(lines))
			}
			for i, e := range lines {
				if e.Vigil.Binding != proto.BindingNone {
					t.Fatalf("%s: bound %q before any telemetry", tt.rows[i].name, e.Vigil.Binding)
				}
			}
			inTree := 0 // a line outside every agent tree is never bound, so not kept
			for _, r := range tt.rows {
				if r.ev.root != 0 {
					inTree++
				}
			}
			if st := s.Stats(); st.LateKept != inTree {
				t.Errorf("LateKept %d, want %d", st.LateKept, inTree)
			}
			stAdd(s, tt.telemetry(t))
			now := start.Add(2 * time.Second)
			out := w.write(s.Release(now, false))
			records := stBindings(t, out)
			nbound := 0
			for i, r := range tt.rows {
				line := lines[i]
				got := records[line.Event.Sequence]
				if r.want.binding == proto.BindingNone {
					if len(got) != 0 {
						t.Errorf("%s: unbound line got binding records %+v", r.name, got)
					}
					continue
				}
				if len(got) != 1 {
					t.Errorf("%s: %d binding records, want 1", r.name, len(got))
					continue
				}
				nbound++
				rec := got[0]
				gotB := bound{rec.Binding, rec.Confidence, rec.CallID, rec.ToolName, rec.SessionID, rec.PromptID}
				if gotB != r.want {
					t.Errorf("%s:\n got  %+v\n want %+v", r.name, gotB, r.want)
				}
				if rec.Pid != line.Process.Pid || rec.EntityID != line.Process.EntityID || rec.Agent == "" {
					t.Errorf("%s: record names pid %d %q agent %q, line is %d %q", r.name, rec.Pid, rec.EntityID, rec.Agent, line.Process.Pid, line.Process.EntityID)
				}
				if want := now.Sub(line.Timestamp).Milliseconds(); rec.LateMs != want || !rec.Time.Equal(now) {
					t.Errorf("%s: late_ms %d at %v, want %d at %v", r.name, rec.LateMs, rec.Time, want, now)
				}
			}
			if st := s.Stats(); st.LateBound != uint64(nbound) {
				t.Errorf("LateBound %d, want %d", st.LateBound, nbound)
			}
			// Nothing new: the next release writes no record again.
			if again := stBindings(t, w.write(s.Release(now.Add(time.Second), true))); len(again) != 0 {
				t.Errorf("records written again: %v", again)
			}
		})
	}
}

// TestStitchLateSupersedesWindow: a line bound by its window alone (logs arrived in time) is
// followed by a binding record when the span naming its TRACEPARENT arrives, and only then.
func TestStitchLateSupersedesWindow(t *testing.T) {
	isLogs := func(f string) bool { return strings.Contains(f, "logs") }
	s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: time.Millisecond, Late: time.Hour, MaxLate: 100})
	var w stWriter
	stAdd(s, stRun(t, "claude", stClaudePid, isLogs))
	start := time.Now()
	w.write(s.Release(start, false)) // the agent lines
	shell := kev{action: proto.ActionExec, pid: 31300, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.084924",
		args: []string{"/bin/bash", "-c", "env"}, cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)}.event()
	s.Push(shell)
	w.write(s.Release(start.Add(time.Second), false))
	if shell.Vigil.Binding != proto.BindingWindow {
		t.Fatalf("written %q, want window", shell.Vigil.Binding)
	}
	if recs := stBindings(t, w.write(s.Release(start.Add(2*time.Second), false))); len(recs) != 0 {
		t.Fatalf("records without new telemetry: %v", recs)
	}
	stAdd(s, stRun(t, "claude", stClaudePid, func(f string) bool { return !isLogs(f) }))
	recs := stBindings(t, w.write(s.Release(start.Add(3*time.Second), false)))
	got := recs[shell.Event.Sequence]
	if len(got) != 1 || got[0].Binding != proto.BindingTraceParent || got[0].Confidence != "high" || got[0].CallID != stClaudeBash {
		t.Fatalf("records for the shell: %+v", got)
	}
	if st := s.Stats(); st.LateKept != 0 || st.LateBound != 1 {
		t.Errorf("kept %d bound %d after a high binding, want 0 and 1", st.LateKept, st.LateBound)
	}
}

// TestStitchLateBounds: lines are kept for Late and at most MaxLate of them; what falls out
// is counted and never bound.
func TestStitchLateBounds(t *testing.T) {
	tests := []struct {
		name            string
		late            time.Duration
		maxLate         int
		lines           int
		wait            time.Duration // between the first release and the telemetry's
		bound           int           // the newest lines, bound late
		forgot, expired uint64
	}{
		{"all kept", time.Minute, 10, 4, time.Second, 4, 0, 0},
		{"count bound forgets the oldest", time.Minute, 3, 5, time.Second, 3, 2, 0},
		{"a full list forgets its oldest eighth at once", time.Minute, 16, 20, time.Second, 16, 4, 0},
		{"age bound", time.Minute, 10, 4, time.Minute, 0, 0, 4},
		{"late binding off", 0, 10, 4, time.Second, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: time.Millisecond, Late: tt.late, MaxLate: tt.maxLate})
			var w stWriter
			start := time.Now()
			var lines []*proto.Event
			for i := range tt.lines {
				e := kev{action: proto.ActionExec, pid: 40000 + i, ppid: stClaudePid, root: stClaudePid, at: fmt.Sprintf("11:25:41.%03d", 400+i),
					args: []string{"true"}, join: claudeJoin(stClaudeTraceParent)}.event()
				lines = append(lines, e)
				s.Push(e)
			}
			w.write(s.Release(start.Add(time.Second), false))
			stAdd(s, stRun(t, "claude", stClaudePid, nil))
			recs := stBindings(t, w.write(s.Release(start.Add(time.Second+tt.wait), false)))
			for i, e := range lines {
				want := i >= tt.lines-tt.bound
				if got := len(recs[e.Event.Sequence]) == 1; got != want {
					t.Errorf("line %d: bound late %v, want %v", i, got, want)
				}
			}
			st := s.Stats()
			if st.LateForgotten != tt.forgot || st.LateExpired != tt.expired || st.LateBound != uint64(tt.bound) {
				t.Errorf("forgotten %d expired %d bound %d, want %d %d %d", st.LateForgotten, st.LateExpired, st.LateBound, tt.forgot, tt.expired, tt.bound)
			}
		})
	}
}

// TestStitchLateChildFollowsItsParent: the call's logs arrive first and bind the tool shell
// by its command (medium) and its child by inheritance; when the span naming the shell's
// TRACEPARENT arrives, the shell is bound by it and the child (no keys of its own) follows
// with a record of its own.
func TestStitchLateChildFollowsItsParent(t *testing.T) {
	isLogs := func(f string) bool { return strings.Contains(f, "logs") }
	shell := kev{action: proto.ActionExec, pid: 31292, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.323068",
		args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)}.event()
	child := kev{action: proto.ActionExec, pid: 31294, ppid: 31292, root: stClaudePid, at: "11:25:41.367902",
		args: []string{"readlink", "/proc/31292/fd/0"}, cwd: stClaudeRepo}.event()
	s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: time.Millisecond, Late: time.Hour, MaxLate: 100})
	var w stWriter
	start := time.Now()
	s.Push(shell)
	s.Push(child)
	w.write(s.Release(start.Add(time.Second), false))
	stAdd(s, stRun(t, "claude", stClaudePid, isLogs))
	first := stBindings(t, w.write(s.Release(start.Add(2*time.Second), false)))
	for _, e := range []*proto.Event{shell, child} {
		if got := first[e.Event.Sequence]; len(got) != 1 || got[0].Binding != proto.BindingCommand || got[0].CallID != stClaudeBash {
			t.Fatalf("pid %d after the logs: %+v", e.Process.Pid, got)
		}
	}
	stAdd(s, stRun(t, "claude", stClaudePid, func(f string) bool { return !isLogs(f) }))
	second := stBindings(t, w.write(s.Release(start.Add(3*time.Second), false)))
	for _, e := range []*proto.Event{shell, child} {
		if got := second[e.Event.Sequence]; len(got) != 1 || got[0].Binding != proto.BindingTraceParent || got[0].CallID != stClaudeBash {
			t.Errorf("pid %d after the spans: %+v", e.Process.Pid, got)
		}
	}
}
