package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

var _ sensor.Sink = (*Store)(nil)

// fixture is real-format lines: correlate/workflow/testdata/sessions.jsonl (a Claude and a
// Codex session: tool calls with and without approval, an untrusted hook call, unexplained
// reads and a connect, a lost line), followed by a session record, a second prompt whose Bash
// call reads ~/.ssh/id_rsa and pipes it to curl (the curl lines written unbound, then bound by
// two binding records), the Codex call reported a second time, and a second sensor run (its
// sequence starts at 1 again) opening with a recovered line and binding its own line 2.
const fixture = "testdata/agents.jsonl"

func readFixture(t testing.TB) []*proto.Event {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var events []*proto.Event
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var e proto.Event
		if err := proto.UnmarshalJSON(line, &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, &e)
	}
	return events
}

// openTemp opens a store in a fresh directory.
func openTemp(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "vigil.db")
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func writeAll(t testing.TB, s *Store, events []*proto.Event) {
	t.Helper()
	for _, e := range events {
		if err := s.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

// queryRows runs q on the store's connection and returns its rows as maps, NULLs left out.
func queryRows(t testing.TB, s *Store, q string, args ...any) []map[string]any {
	t.Helper()
	rows, err := s.conn.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	return scanMaps(t, rows)
}

func scanMaps(t testing.TB, rows *sql.Rows) []map[string]any {
	t.Helper()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		for i, c := range cols {
			if vals[i] != nil {
				m[c] = vals[i]
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func queryInt(t testing.TB, s *Store, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.conn.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// columnPaths are the events view's columns and the line fields they hold.
var columnPaths = map[string]string{
	"timestamp": "@timestamp", "action": "event.action", "kind": "event.kind", "outcome": "event.outcome",
	"seq": "event.sequence", "errno": "vigil.errno", "pid": "process.pid", "entity_id": "process.entity_id",
	"tid": "process.thread.id", "name": "process.name", "executable": "process.executable", "args": "process.args",
	"args_count": "process.args_count", "cwd": "process.working_directory", "sha256": "process.hash.sha256",
	"start": "process.start", "parent_pid": "process.parent.pid", "parent_entity_id": "process.parent.entity_id",
	"parent_executable": "process.parent.executable", "parent_name": "process.parent.name", "user_id": "user.id",
	"user_name": "user.name", "group_id": "user.group.id", "root_pid": "vigil.root.pid",
	"root_entity_id": "vigil.root.entity_id", "agent": "gen_ai.agent.name", "boot_id": "host.boot_id",
	"exit_code": "process.exit_code", "file_path": "file.path", "file_access": "file.access", "flags": "file.flags",
	"path_source": "vigil.path_source", "destination_ip": "destination.ip", "destination_port": "destination.port",
	"destination_address": "destination.address", "session_id": "gen_ai.conversation.id", "prompt_id": "vigil.prompt.id",
	"tool_call_id": "gen_ai.tool.call.id", "tool_name": "gen_ai.tool.name", "binding": "vigil.binding",
	"confidence": "vigil.confidence", "binds_seq": "vigil.binds.sequence", "recovered": "vigil.recovered",
	"source": "vigil.source", "merged_count": "vigil.merged.count", "merged_first": "vigil.merged.first",
	"merged_last": "vigil.merged.last",
}

// TestRowsKeepEveryField rebuilds each fixture line from its events row (columns and extra)
// and compares it with the line: nothing is lost but what docs/schema.md says the store
// derives or keeps elsewhere.
func TestRowsKeepEveryField(t *testing.T) {
	var lines []*proto.Event
	for _, e := range readFixture(t) {
		if e.Event.Action != proto.ActionBinding { // bindings change the rows they name
			lines = append(lines, e)
		}
	}
	lines = append(lines, goldenAlert(t))
	s := openTemp(t, Options{Path: Memory})
	writeAll(t, s, lines)
	rows := queryRows(t, s, "SELECT * FROM events ORDER BY id")
	if len(rows) != len(lines) {
		t.Fatalf("%d rows for %d lines", len(rows), len(lines))
	}
	for i, row := range rows {
		want := lineMap(t, lines[i])
		// Kept elsewhere or derived: the schema version, the category, type and dataset (the
		// action's), the host's name (runs), a prompt's text (prompts), a tool call's details
		// (tool_calls).
		for _, path := range []string{"vigil.schema", "event.category", "event.type", "event.dataset", "host.name"} {
			deletePath(want, path)
		}
		switch lines[i].Event.Action {
		case proto.ActionAgentPrompt:
			deletePath(want, "vigil.prompt.text")
		case proto.ActionAgentToolCall:
			deletePath(want, "vigil.tool")
		}
		got := map[string]any{}
		for col, v := range row {
			switch col {
			case "id", "run_id", "process_id", "file_name": // file_name: file.path's last element
				continue
			case "extra":
				var extra map[string]any
				if err := json.Unmarshal([]byte(v.(string)), &extra); err != nil {
					t.Fatal(err)
				}
				mergeMaps(got, extra)
				continue
			case "args":
				var args []any
				if err := json.Unmarshal([]byte(v.(string)), &args); err != nil {
					t.Fatal(err)
				}
				v = args
			case "recovered":
				v = v == int64(1)
			}
			path, ok := columnPaths[col]
			if !ok {
				t.Fatalf("column %s has no line field", col)
			}
			setPath(got, path, v)
		}
		if !reflect.DeepEqual(normalize(t, got), normalize(t, want)) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("line %d (%s):\n got %s\nwant %s", i+1, lines[i].Event.Action, g, w)
		}
	}
}

func lineMap(t *testing.T, e *proto.Event) map[string]any {
	b, err := proto.MarshalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// normalize gives numbers one type and drops emptied objects.
func normalize(t *testing.T, m map[string]any) any {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return prune(out)
}

func prune(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for k, x := range m {
		x = prune(x)
		if sub, ok := x.(map[string]any); ok && len(sub) == 0 {
			delete(m, k)
			continue
		}
		m[k] = x
	}
	return m
}

func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	if path == "@timestamp" {
		parts = []string{path}
	}
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

func deletePath(m map[string]any, path string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = sub
	}
	delete(m, parts[len(parts)-1])
}

func mergeMaps(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
			}
			mergeMaps(d, sub)
			continue
		}
		dst[k] = v
	}
}

func TestRecords(t *testing.T) {
	s := openTemp(t, Options{})
	writeAll(t, s, readFixture(t))

	sessions := queryRows(t, s, "SELECT * FROM sessions")
	if len(sessions) != 1 || sessions[0]["id"] != "5b9d8f1e-2c47-4e0a-9a65-3d1f7c2b8e90" || sessions[0]["root_pid"] != int64(1200) ||
		sessions[0]["cwd"] != "/home/dev/app" || sessions[0]["transport"] != "otlp_http" || sessions[0]["started_at"] != "2025-11-24T08:36:36.900000000Z" {
		t.Errorf("sessions = %v", sessions)
	}
	prompts := queryRows(t, s, "SELECT id, session_id, text FROM prompts ORDER BY timestamp")
	if len(prompts) != 3 || prompts[1]["text"] != "check that my ssh key works with the deploy host" ||
		prompts[1]["session_id"] != "5b9d8f1e-2c47-4e0a-9a65-3d1f7c2b8e90" || prompts[2]["text"] != "rename the config loader" {
		t.Errorf("prompts = %v", prompts)
	}
	calls := map[string]map[string]any{}
	for _, c := range queryRows(t, s, "SELECT * FROM tool_calls") {
		calls[c["id"].(string)] = c
	}
	if len(calls) != 5 {
		t.Errorf("%d tool calls, want 5: %v", len(calls), calls)
	}
	bash := calls["toolu_01HzQ8mP3vX7kR2nW5yT9bLc"]
	if bash["decision"] != "accept" || bash["decision_source"] != "config" || bash["success"] != int64(1) ||
		bash["command"] != "cat .env && go test ./..." || bash["reports"] != int64(1) ||
		bash["ended_at"] != "2025-11-24T08:36:38.500000000Z" || bash["started_at"] != "2025-11-24T08:36:37.980000000Z" {
		t.Errorf("Bash call = %v", bash)
	}
	// Reported twice: the second report's decision joins what the first said.
	patch := calls["call_Hs5Fg9Jk2Qw7Er4Ty1Ui6Op"]
	if patch["reports"] != int64(2) || patch["decision"] != "approved" || patch["decision_source"] != "User" ||
		patch["success"] != int64(0) || patch["outcome"] != "failure" || patch["file_paths"] == nil {
		t.Errorf("apply_patch call = %v", patch)
	}
	if exfil := calls["toolu_01Ex7fi1TrQ9wK2mZ5nB8vXc"]; exfil["decision"] != nil || exfil["duration_ms"] != int64(320) {
		t.Errorf("exfiltrating call = %v", exfil)
	}

	alerts := queryRows(t, s, "SELECT * FROM alerts")
	if len(alerts) != 1 || alerts[0]["rule_id"] != proto.ActionAgentUntrusted || alerts[0]["session_id"] != nil ||
		!strings.Contains(alerts[0]["evidence"].(string), `"claimed_conversation_id":"5b9d8f1e-2c47-4e0a-9a65-3d1f7c2b8e90"`) {
		t.Errorf("alerts = %v", alerts)
	}
	// The alert's event is the untrusted line, whose binding columns hold no claim.
	untrusted := queryRows(t, s, "SELECT e.* FROM events e JOIN alerts a ON a.event_id = e.id")
	if len(untrusted) != 1 || untrusted[0]["session_id"] != nil || untrusted[0]["tool_name"] != nil || untrusted[0]["agent"] != nil ||
		untrusted[0]["pid"] != int64(4242) || untrusted[0]["kind"] != "alert" {
		t.Errorf("untrusted line's row = %v", untrusted)
	}

	// A path's last element is its file_name.
	if got := queryRows(t, s, "SELECT DISTINCT file_name FROM events WHERE file_path = '/home/dev/.ssh/id_rsa'"); len(got) != 1 || got[0]["file_name"] != "id_rsa" {
		t.Errorf("file_name = %v", got)
	}

	// Two runs; the second's host is its own, not its recovered first line's.
	runs := queryRows(t, s, "SELECT * FROM runs ORDER BY id")
	if len(runs) != 2 || runs[0]["boot_id"] != "9f0c3c2e-5f0b-4a57-9d0c-2b8f3d1c6a41" ||
		runs[1]["boot_id"] != "7e2d9c41-8a6b-4f3e-b1d0-5c9a8e7f6d21" || runs[1]["started_at"] != "2025-11-24T09:59:58.000000000Z" {
		t.Errorf("runs = %v", runs)
	}
	if got := queryRows(t, s, "SELECT boot_id, recovered FROM events WHERE run_id = 2 AND seq = 1"); len(got) != 1 ||
		got[0]["boot_id"] != "0c4e7a11-3b5f-4d2e-9a8c-6f1e2d3c4b5a" || got[0]["recovered"] != int64(1) {
		t.Errorf("recovered line = %v", got)
	}
}

func TestLateBinding(t *testing.T) {
	s := openTemp(t, Options{})
	writeAll(t, s, readFixture(t))
	// The curl exec (51) and its connect (52) were written unbound; the binding records (56,
	// 57) name them.
	for _, seq := range []int{51, 52} {
		got := queryRows(t, s, "SELECT tool_call_id, tool_name, binding, confidence, session_id, prompt_id FROM events WHERE run_id = 1 AND seq = ?", seq)
		want := map[string]any{"tool_call_id": "toolu_01Ex7fi1TrQ9wK2mZ5nB8vXc", "tool_name": "Bash", "binding": "command",
			"confidence": "medium", "session_id": "5b9d8f1e-2c47-4e0a-9a65-3d1f7c2b8e90", "prompt_id": "e5f6a7b8-1c2d-4e3f-8a9b-0c1d2e3f4a5b"}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("line %d = %v, want %v", seq, got, want)
		}
	}
	// The binding records are rows too, naming what they bound.
	if n := queryInt(t, s, "SELECT count(*) FROM events WHERE action = 'binding' AND run_id = 1 AND binds_seq IN (51, 52) AND tool_call_id = 'toolu_01Ex7fi1TrQ9wK2mZ5nB8vXc'"); n != 2 {
		t.Errorf("%d binding rows, want 2", n)
	}
	// The second run's binding names its own line 2, not the first run's (agent.prompt).
	if got := queryRows(t, s, "SELECT run_id, tool_call_id, binding FROM events WHERE seq = 2 ORDER BY run_id"); len(got) != 2 ||
		got[0]["tool_call_id"] != nil || got[1]["tool_call_id"] != "call_Xb7Tq2Lm9Rz4Kc1Vn8Pw3Yd" || got[1]["binding"] != "window" {
		t.Errorf("line 2 of each run = %v", got)
	}
}

func TestProcessRowsShared(t *testing.T) {
	s := openTemp(t, Options{Path: Memory})
	w := newWorkload(7)
	var events []*proto.Event
	for range 5000 {
		events = append(events, w.next())
	}
	writeAll(t, s, events)
	procs, lines := queryInt(t, s, "SELECT count(*) FROM processes"), queryInt(t, s, "SELECT count(*) FROM event_rows")
	if lines != 5000 || procs*10 > lines {
		t.Errorf("%d processes rows for %d lines: the process of each line should be stored once", procs, lines)
	}
	// Every line still reads back its own process.
	rows := queryRows(t, s, "SELECT seq, pid, executable, args FROM events ORDER BY seq")
	for i, e := range events {
		if e.Process == nil {
			continue
		}
		args, _ := jsonStrings(e.Process.Args)
		if got := rows[i]; got["seq"] != int64(i+1) || got["pid"] != int64(e.Process.Pid) || got["executable"] != e.Process.Executable ||
			(args != "" && got["args"] != args) {
			t.Fatalf("line %d: %v, want pid %d %s %s", i+1, got, e.Process.Pid, e.Process.Executable, args)
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := openTemp(t, Options{})
	events := readFixture(t)
	if err := s.Write(events[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(events[1]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("Flush after Close = %v", err)
	}
	if st := s.Stats(); st.Written != 1 || st.Errors != 1 {
		t.Errorf("stats = %+v, want 1 written (Close commits) and 1 error", st)
	}
}

// TestReopen appends a second run to an existing database: its rows follow the first run's.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	events := readFixture(t)[:10]
	for range 2 {
		s, err := Open(Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, s, events)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := openTemp(t, Options{Path: path})
	if got := queryRows(t, s, "SELECT run_id, count(*) AS n, min(seq) AS first FROM events GROUP BY run_id ORDER BY run_id"); len(got) != 2 ||
		got[1]["run_id"] != int64(2) || got[1]["n"] != int64(10) || got[1]["first"] != int64(1) {
		t.Errorf("runs = %v", got)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.conn.ExecContext(context.Background(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: path}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema = %v", err)
	}
}

// A detection rule's alert line (proto's golden alert) becomes an alerts row naming its rule,
// severity and tool call, with its sequences and evidence kept.
func TestRuleAlertRow(t *testing.T) {
	s := openTemp(t, Options{})
	writeAll(t, s, []*proto.Event{goldenAlert(t)})
	alerts := queryRows(t, s, "SELECT * FROM alerts")
	if len(alerts) != 1 {
		t.Fatalf("alerts = %v, want one row", alerts)
	}
	a := alerts[0]
	if a["rule_id"] != "exfil.secret_read_and_egress_in_tool_call" || a["rule_name"] != "Secret read and internet connection in one tool call" ||
		a["severity"] != "high" || a["tool_call_id"] != "toolu_01HzQ8mP3vX7kR2nW5yT9bLc" ||
		!strings.Contains(fmt.Sprint(a["evidence"]), `"sequences"`) {
		t.Errorf("alert row = %v", a)
	}
}

// goldenAlert is proto's golden detection alert line.
func goldenAlert(t testing.TB) *proto.Event {
	t.Helper()
	data, err := os.ReadFile("../../../proto/testdata/golden/alert.json")
	if err != nil {
		t.Fatal(err)
	}
	var e proto.Event
	if err := proto.UnmarshalJSON(data, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}
