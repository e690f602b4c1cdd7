package main

// The correlator part: a replay through correlate.Stitcher, alone, on one core. Agent
// telemetry is the real OTLP payloads of correlate/testdata (one Claude Code prompt with
// Bash, Read, Write and Edit; one Codex turn with exec_command and apply_patch), replayed as
// many turns of many sessions with fresh ids; kernel events are synthetic but shaped like the
// sample runs' trees: a shell forked and exec'd per command call carrying the agent's join
// keys, its children's opens, the agent's own opens of the files its in-process tools name,
// and opens no call explains. The driver (correlatorPart, Linux) runs this in a child process
// (`bench -correlator-child`) under taskset and GOMAXPROCS=1, so the numbers are one core's
// and the heap is the stitcher's, not the driver's.

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// correlatorRun is one replay: sessions × turns, each turn the sample telemetry plus
// eventsPerTurn kernel events.
type correlatorRun struct {
	Sessions        int     `json:"sessions"`
	Turns           int     `json:"turns_per_session"`
	KernelEvents    int     `json:"kernel_events"`
	TelemetryEvents int     `json:"telemetry_events"`
	Repeats         int     `json:"repeats"` // replays timed (small runs are repeated)
	Seconds         float64 `json:"seconds"` // timed, all repeats: AddTelemetry + Push + Release
	EventsPerSec    float64 `json:"kernel_events_per_sec"`
	// HeapBytes is the live heap after a forced GC once the last replay is done, with the
	// stitcher still referenced, minus the live heap before it was created.
	HeapBytes   int64             `json:"heap_after_gc_bytes"`
	Released    uint64            `json:"released"`
	Bindings    map[string]uint64 `json:"bindings"`
	Forgotten   uint64            `json:"forgotten"`
	GoMaxProcs  int               `json:"gomaxprocs"`
	ToolCalls   int               `json:"tool_calls_per_turn"`
	AgentWrites int               `json:"agent_lines"` // agent.* lines the stitcher produced
}

// correlatorReport is what the child prints.
type correlatorReport struct {
	Runs          []correlatorRun `json:"runs"`
	EventsPerTurn int             `json:"kernel_events_per_turn"`
	Payloads      int             `json:"otlp_payloads"`
	Pinned        bool            `json:"pinned_with_taskset"`
}

// runCorrelatorChild is `bench -correlator-child`: replays for each session count and prints
// one JSON report on stdout.
func runCorrelatorChild(testdata string, sessionCounts []int, turns, eventsPerTurn int) error {
	runtime.GOMAXPROCS(1)
	tpl, n, err := loadSamples(testdata)
	if err != nil {
		return err
	}
	rep := correlatorReport{EventsPerTurn: eventsPerTurn, Payloads: n}
	for _, s := range sessionCounts {
		// Small runs are repeated (each on a fresh stitcher) so the timed part is not a few ms.
		repeats := 1
		if s < 100 {
			repeats = 100 / s
		}
		r := correlatorRun{Sessions: s, Turns: turns, Repeats: repeats, GoMaxProcs: runtime.GOMAXPROCS(0)}
		var elapsed time.Duration
		for rep := 0; rep < repeats; rep++ {
			last := rep == repeats-1
			d, heap, st, counts := replay(tpl, s, turns, eventsPerTurn, last)
			elapsed += d
			if last {
				r.HeapBytes, r.Released, r.Bindings, r.Forgotten = heap, st.Released, st.Bindings, st.Forgotten
				r.KernelEvents, r.TelemetryEvents, r.ToolCalls, r.AgentWrites = counts.kernel, counts.telemetry, counts.callsPerTurn, counts.agentLines
			}
		}
		r.Seconds = elapsed.Seconds()
		r.EventsPerSec = float64(r.KernelEvents*repeats) / elapsed.Seconds()
		rep.Runs = append(rep.Runs, r)
		fmt.Fprintf(os.Stderr, "correlator: %d sessions: %.0f kernel events/s, heap %.1f MiB\n", s, r.EventsPerSec, float64(r.HeapBytes)/(1<<20))
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// sampleBatch is one adapted OTLP payload of one agent.
type sampleBatch struct {
	agent  string
	events []proto.AgentEvent
}

// loadSamples decodes and adapts every OTLP payload under testdata/{claude,codex}.
func loadSamples(testdata string) (map[string][]sampleBatch, int, error) {
	out := map[string][]sampleBatch{}
	n := 0
	for _, agent := range []string{"claude", "codex"} {
		files, err := filepath.Glob(filepath.Join(testdata, agent, "*.json"))
		if err != nil {
			return nil, 0, err
		}
		sort.Strings(files)
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				return nil, 0, err
			}
			var evs []proto.AgentEvent
			switch {
			case strings.HasSuffix(f, "_logs.json"):
				req, err := correlate.DecodeLogs(body, correlate.ContentTypeJSON)
				if err != nil {
					return nil, 0, fmt.Errorf("%s: %w", f, err)
				}
				evs, _ = correlate.AdaptLogs(req)
			case strings.HasSuffix(f, "_traces.json"):
				req, err := correlate.DecodeTraces(body, correlate.ContentTypeJSON)
				if err != nil {
					return nil, 0, fmt.Errorf("%s: %w", f, err)
				}
				evs, _ = correlate.AdaptTraces(req)
			default:
				continue
			}
			n++
			if len(evs) > 0 {
				out[agent] = append(out[agent], sampleBatch{agent: agent, events: evs})
			}
		}
		if len(out[agent]) == 0 {
			return nil, 0, fmt.Errorf("no %s OTLP samples under %s", agent, testdata)
		}
	}
	return out, n, nil
}

type replayCounts struct {
	kernel, telemetry, callsPerTurn, agentLines int
}

// replay feeds sessions × turns through a fresh stitcher. Inputs are built per turn outside
// the timed part; the timed part is what the pipeline does per turn: AddTelemetry for each
// payload, Push for each kernel event, Release of what is due (the hold is skipped by
// releasing at a time past it).
func replay(tpl map[string][]sampleBatch, sessions, turns, eventsPerTurn int, measureHeap bool) (time.Duration, int64, correlate.StitcherStats, replayCounts) {
	var base int64
	if measureHeap {
		base = liveHeap()
	}
	st := correlate.NewStitcher(correlate.StitcherOptions{Hold: time.Second, Lookup: syntheticLookup})
	var elapsed time.Duration
	var c replayCounts
	for s := 0; s < sessions; s++ {
		agent := "claude"
		if s%2 == 1 {
			agent = "codex"
		}
		for t := 0; t < turns; t++ {
			batches, kevs, calls := buildTurn(tpl[agent], agent, s, t, eventsPerTurn)
			c.callsPerTurn = calls
			for _, b := range batches {
				c.telemetry += len(b.Events)
			}
			c.kernel += len(kevs)
			start := time.Now()
			for _, b := range batches {
				st.AddTelemetry(b)
			}
			for _, e := range kevs {
				st.Push(e)
			}
			out := st.Release(time.Now().Add(time.Hour), false)
			elapsed += time.Since(start)
			for _, e := range out {
				if strings.HasPrefix(e.Event.Action, "agent.") {
					c.agentLines++
				}
			}
		}
	}
	var heap int64
	if measureHeap {
		heap = liveHeap() - base
	}
	stats := st.Stats()
	runtime.KeepAlive(st)
	return elapsed, heap, stats, c
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// Synthetic pids: session s's agent is agentPid(s); its tool processes follow it.
func agentPid(s int) int { return 100_000 + s*1000 }

// syntheticLookup is the process table's view: every pid of a session's block belongs to the
// tree rooted at its agent.
func syntheticLookup(pid int) (sensor.ProcessInfo, bool) {
	if pid < 100_000 {
		return sensor.ProcessInfo{}, false
	}
	root := 100_000 + (pid-100_000)/1000*1000
	return sensor.ProcessInfo{Pid: pid, Name: "agent", RootPid: root, Cwd: "/srv/work/repo"}, true
}

// hexOf returns a deterministic lowercase hex id of n digits for (id, salt).
func hexOf(id, salt string, n int) string {
	if id == "" {
		return ""
	}
	h := fnv.New128a()
	h.Write([]byte(id + "|" + salt))
	s := fmt.Sprintf("%x", h.Sum(nil))
	for len(s) < n {
		s += s
	}
	return s[:n]
}

// call is what one turn's telemetry says about one tool call, for shaping kernel events.
type call struct {
	id, command, span string
	files             []string
	from, to          time.Time
}

// buildTurn returns turn t of session s: the sample payloads with fresh ids, times moved to
// the turn's slot (turns are 10 minutes apart) and the kernel events of that turn.
func buildTurn(tpl []sampleBatch, agent string, s, t, eventsPerTurn int) ([]correlate.TelemetryBatch, []*proto.Event, int) {
	salt := fmt.Sprintf("s%d-t%d", s, t)
	session := fmt.Sprintf("session-%d", s)
	pid := agentPid(s)
	var shift time.Duration
	calls := map[string]*call{}
	var order []string
	var traceID string
	var batches []correlate.TelemetryBatch
	for _, b := range tpl {
		evs := make([]proto.AgentEvent, len(b.events))
		copy(evs, b.events)
		for i := range evs {
			e := &evs[i]
			if shift == 0 && !e.Time.IsZero() {
				// Anchor every turn at a fixed day, 10 minutes per turn.
				base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Add(time.Duration(t) * 10 * time.Minute)
				shift = base.Sub(e.Time)
			}
			if !e.Time.IsZero() {
				e.Time = e.Time.Add(shift)
			}
			if !e.EndTime.IsZero() {
				e.EndTime = e.EndTime.Add(shift)
			}
			if e.SessionID != "" {
				e.SessionID = session
			}
			if e.PromptID != "" {
				e.PromptID += "-" + salt
			}
			if e.TurnID != "" {
				e.TurnID += "-" + salt
			}
			if e.ToolUseID != "" {
				e.ToolUseID += "-" + salt
			}
			e.TraceID = hexOf(e.TraceID, salt, 32)
			e.SpanID = hexOf(e.SpanID, salt, 16)
			e.ParentSpanID = hexOf(e.ParentSpanID, salt, 16)
			if traceID == "" {
				traceID = e.TraceID
			}
			if e.ToolUseID == "" {
				continue
			}
			c := calls[e.ToolUseID]
			if c == nil {
				c = &call{id: e.ToolUseID}
				calls[e.ToolUseID] = c
				order = append(order, e.ToolUseID)
			}
			if e.Command != "" {
				c.command = e.Command
			}
			if len(e.FilePaths) > 0 {
				c.files = e.FilePaths
			}
			if e.SpanName == "claude_code.tool.execution" {
				c.span = e.SpanID
				if traceID == "" || e.TraceID != "" {
					traceID = e.TraceID
				}
			}
			for _, at := range []time.Time{e.Time, e.EndTime} {
				if at.IsZero() {
					continue
				}
				if c.from.IsZero() || at.Before(c.from) {
					c.from = at
				}
				if at.After(c.to) {
					c.to = at
				}
			}
		}
		batches = append(batches, correlate.TelemetryBatch{Events: evs, Transport: "otlp_http", SenderPid: pid})
	}

	// Kernel events: per command call a shell (fork, exec with the join keys, exit) whose
	// process opens most of the turn's files; per file call the agent's own opens of the
	// named paths; the rest are agent opens outside every call (node modules, caches).
	var kevs []*proto.Event
	var cmdCalls, fileCalls []*call
	for _, id := range order {
		c := calls[id]
		if c.from.IsZero() {
			continue
		}
		if c.command != "" {
			cmdCalls = append(cmdCalls, c)
		} else if len(c.files) > 0 {
			fileCalls = append(fileCalls, c)
		}
	}
	root := &proto.Root{Pid: pid, EntityID: fmt.Sprintf("ent-%d", pid)}
	agentProc := func() *proto.Process {
		return &proto.Process{Pid: pid, EntityID: root.EntityID, Name: agent, WorkingDirectory: "/srv/work/repo"}
	}
	ev := func(action string, at time.Time, p *proto.Process, join *proto.JoinKeys) *proto.Event {
		return &proto.Event{
			Timestamp: at,
			Event:     proto.EventMeta{Action: action, Kind: "event", Category: "process", Dataset: "vigil.kernel"},
			Process:   p,
			Vigil:     proto.Vigil{Schema: proto.SchemaVersion, Source: "ebpf", Root: root, Join: join},
		}
	}
	perShell := eventsPerTurn * 7 / 10
	if len(cmdCalls) > 0 {
		perShell /= len(cmdCalls)
	}
	for j, c := range cmdCalls {
		child := pid + 1 + (t*8+j)%900
		join := &proto.JoinKeys{}
		if agent == "claude" {
			agents.Keep(join, "CLAUDE_CODE_SESSION_ID", session)
			if c.span != "" {
				agents.Keep(join, "TRACEPARENT", "00-"+traceID+"-"+c.span+"-01")
			}
		} else {
			agents.Keep(join, "CODEX_SESSION_ID", session)
			agents.Keep(join, "CODEX_TOOL_CALL_ID", c.id)
		}
		span := c.to.Sub(c.from)
		at := func(k, n int) time.Time { return c.from.Add(span * time.Duration(k+1) / time.Duration(n+2)) }
		proc := func() *proto.Process {
			return &proto.Process{Pid: child, EntityID: fmt.Sprintf("ent-%d-%d", child, t), Name: "bash",
				Args: []string{"/bin/bash", "-c", c.command}, WorkingDirectory: "/srv/work/repo",
				Parent: &proto.ParentProcess{Pid: pid, EntityID: root.EntityID}}
		}
		kevs = append(kevs, ev(proto.ActionFork, at(0, perShell+3), proc(), join), ev(proto.ActionExec, at(1, perShell+3), proc(), join))
		for k := 0; k < perShell; k++ {
			e := ev(proto.ActionOpen, at(k+2, perShell+3), proc(), join)
			e.File = &proto.File{Path: fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%d.so", k%50)}
			kevs = append(kevs, e)
		}
		kevs = append(kevs, ev(proto.ActionExit, at(perShell+2, perShell+3), proc(), join))
	}
	perFile := eventsPerTurn / 10
	if len(fileCalls) > 0 {
		perFile /= len(fileCalls)
	}
	for _, c := range fileCalls {
		span := c.to.Sub(c.from)
		for k := 0; k < perFile; k++ {
			e := ev(proto.ActionOpen, c.from.Add(span*time.Duration(k+1)/time.Duration(perFile+1)), agentProc(), nil)
			f := c.files[k%len(c.files)]
			if !strings.HasPrefix(f, "/") {
				f = "/srv/work/repo/" + strings.TrimPrefix(f, "./")
			}
			e.File = &proto.File{Path: f}
			kevs = append(kevs, e)
		}
	}
	turnStart := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Add(time.Duration(t) * 10 * time.Minute)
	for len(kevs) < eventsPerTurn {
		k := len(kevs)
		e := ev(proto.ActionOpen, turnStart.Add(time.Duration(k)*time.Millisecond), agentProc(), nil)
		e.File = &proto.File{Path: fmt.Sprintf("/srv/agents/node_modules/pkg%d/index.js", k%200)}
		kevs = append(kevs, e)
	}
	sort.SliceStable(kevs, func(i, j int) bool { return kevs[i].Timestamp.Before(kevs[j].Timestamp) })
	return batches, kevs, len(order)
}
