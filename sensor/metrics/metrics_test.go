package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	testStart = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	// testSnapshot is a sensor a few minutes into its run: values chosen apart from each
	// other, so a family reading the wrong field shows.
	testSnapshot = Snapshot{
		Kinds: []Kind{
			{Kind: "exec", Events: 12, Last: testStart.Add(90 * time.Second)},
			{Kind: "open", Events: 340, Last: testStart.Add(95*time.Second + 500*time.Millisecond)},
		},
		Lost:        map[string]uint64{"open": 7, "otlp_rejected": 0, "exe_hash": 2},
		SinkLost:    map[string]uint64{"jsonl": 0, "store": 3},
		Written:     401,
		FloodLines:  77,
		SinkErrors:  1,
		RingPending: 8192, RingSize: 4 << 20,
		QueueLength: 5, QueueCap: 1024,
		Bindings:      map[string]uint64{"traceparent": 30, "none": 11},
		Telemetry:     55,
		Untrusted:     4,
		TelemetrySeen: map[string]time.Time{"claude-code": testStart.Add(80 * time.Second)},
		Alerts:        map[string]uint64{"agent.silent": 1},
		RuleErrors:    map[string]uint64{"acme.broken": 6},
		RulePanics:    0,
		ProcessesLive: 9, ProcessesExited: 3,
		AgentTrees:  map[string]int{"claude-code": 1, "codex": 2},
		AgentSilent: map[string]int{"codex": 1, "gemini-cli": 1},
		SelfCheck:   SelfCheckHealthy,
		Export:      &Export{Sent: 380, Retried: 25, SpooledRecords: 21, SpooledBytes: 9000},
	}
)

func TestCollectorFamilies(t *testing.T) {
	c := newCollector(Options{Source: "ebpf", Started: testStart, Snapshot: func() Snapshot { return testSnapshot }})
	const want = `
# HELP vigil_source_info The kernel event source in use (1).
# TYPE vigil_source_info gauge
vigil_source_info{source="ebpf"} 1
# HELP vigil_start_time_seconds When the sensor started, Unix seconds.
# TYPE vigil_start_time_seconds gauge
vigil_start_time_seconds 1.7964612e+09
# HELP vigil_events_total Kernel events taken from the source, per event.action.
# TYPE vigil_events_total counter
vigil_events_total{kind="exec"} 12
vigil_events_total{kind="open"} 340
# HELP vigil_last_event_timestamp_seconds @timestamp of the newest kernel event per event.action, Unix seconds.
# TYPE vigil_last_event_timestamp_seconds gauge
vigil_last_event_timestamp_seconds{kind="exec"} 1.79646129e+09
vigil_last_event_timestamp_seconds{kind="open"} 1.7964612955e+09
# HELP vigil_events_lost_total Events lost per kind, as the lost records add them up (the source's kinds, otlp_rejected, hook, output, exe_hash, shutdown...).
# TYPE vigil_events_lost_total counter
vigil_events_lost_total{kind="exe_hash"} 2
vigil_events_lost_total{kind="open"} 7
vigil_events_lost_total{kind="otlp_rejected"} 0
# HELP vigil_sink_lost_total Records an output could not take.
# TYPE vigil_sink_lost_total counter
vigil_sink_lost_total{sink="jsonl"} 0
vigil_sink_lost_total{sink="store"} 3
# HELP vigil_flood_lines_total Kernel lines past their agent tree's line budget (output.tree_lines_per_minute), written to output.flood_jsonl.
# TYPE vigil_flood_lines_total counter
vigil_flood_lines_total 77
# HELP vigil_ring_buffer_pending_bytes Bytes the kernel wrote to the eBPF ring buffer and the sensor has not read yet.
# TYPE vigil_ring_buffer_pending_bytes gauge
vigil_ring_buffer_pending_bytes 8192
# HELP vigil_ring_buffer_size_bytes Size of the eBPF ring buffer.
# TYPE vigil_ring_buffer_size_bytes gauge
vigil_ring_buffer_size_bytes 4.194304e+06
# HELP vigil_queue_length Events queued between the source's reader and the pipeline.
# TYPE vigil_queue_length gauge
vigil_queue_length 5
# HELP vigil_bindings_total Kernel lines bound to a tool call, per evidence (vigil.binding).
# TYPE vigil_bindings_total counter
vigil_bindings_total{evidence="none"} 11
vigil_bindings_total{evidence="traceparent"} 30
# HELP vigil_telemetry_last_seen_timestamp_seconds When the agent's trusted telemetry (OTLP or hooks) last arrived, Unix seconds.
# TYPE vigil_telemetry_last_seen_timestamp_seconds gauge
vigil_telemetry_last_seen_timestamp_seconds{agent="claude-code"} 1.79646128e+09
# HELP vigil_untrusted_telemetry_events_total Agent telemetry events from senders no agent tree vouches for.
# TYPE vigil_untrusted_telemetry_events_total counter
vigil_untrusted_telemetry_events_total 4
# HELP vigil_rule_errors_total Rule evaluations that failed at run time (a non-match), per rule.
# TYPE vigil_rule_errors_total counter
vigil_rule_errors_total{rule="acme.broken"} 6
# HELP vigil_process_table_entries Processes of agent trees in the process table.
# TYPE vigil_process_table_entries gauge
vigil_process_table_entries{state="exited"} 3
vigil_process_table_entries{state="live"} 9
# HELP vigil_agent_trees Agent trees running, per agent.
# TYPE vigil_agent_trees gauge
vigil_agent_trees{agent="claude-code"} 1
vigil_agent_trees{agent="codex"} 2
vigil_agent_trees{agent="gemini-cli"} 0
# HELP vigil_agent_silent Agent trees running silent, per agent: the agent.silent alert raised and no trusted telemetry since.
# TYPE vigil_agent_silent gauge
vigil_agent_silent{agent="claude-code"} 0
vigil_agent_silent{agent="codex"} 1
vigil_agent_silent{agent="gemini-cli"} 1
# HELP vigil_self_check_healthy The start-up self-check's verdict: 1 when the canary's events all came through the source, 0 when not. Absent while it runs or when it is off.
# TYPE vigil_self_check_healthy gauge
vigil_self_check_healthy 1
# HELP vigil_otlp_sent_records_total Records the OTLP endpoint took (output.otlp).
# TYPE vigil_otlp_sent_records_total counter
vigil_otlp_sent_records_total 380
# HELP vigil_otlp_retried_records_total Records sent to the OTLP endpoint again after a failed try, each retry counted.
# TYPE vigil_otlp_retried_records_total counter
vigil_otlp_retried_records_total 25
# HELP vigil_otlp_spool_records Records in the OTLP export's spool on disk, not yet taken by the endpoint.
# TYPE vigil_otlp_spool_records gauge
vigil_otlp_spool_records 21
# HELP vigil_otlp_spool_bytes Bytes of the OTLP export's spool on disk (bounded by output.otlp.spool_max_mb).
# TYPE vigil_otlp_spool_bytes gauge
vigil_otlp_spool_bytes 9000
`
	names := []string{"vigil_source_info", "vigil_start_time_seconds", "vigil_events_total", "vigil_last_event_timestamp_seconds",
		"vigil_events_lost_total", "vigil_sink_lost_total", "vigil_flood_lines_total", "vigil_ring_buffer_pending_bytes", "vigil_ring_buffer_size_bytes",
		"vigil_queue_length", "vigil_bindings_total", "vigil_telemetry_last_seen_timestamp_seconds", "vigil_untrusted_telemetry_events_total",
		"vigil_rule_errors_total", "vigil_process_table_entries", "vigil_agent_trees", "vigil_agent_silent", "vigil_self_check_healthy",
		"vigil_otlp_sent_records_total", "vigil_otlp_retried_records_total", "vigil_otlp_spool_records", "vigil_otlp_spool_bytes"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// The collector passes the registry's own consistency checks (names, help, label sets).
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestCollectorOmitsWhatTheSensorDoesNotHave(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       Snapshot
		present map[string]int // family: series count
	}{
		{"audit source, self-check off, nothing yet", Snapshot{QueueCap: 1024},
			map[string]int{"vigil_ring_buffer_size_bytes": 0, "vigil_self_check_healthy": 0, "vigil_self_check_pending": 0, "vigil_events_total": 0,
				"vigil_agent_silent": 0, "vigil_queue_capacity": 1, "vigil_source_info": 1, "vigil_otlp_spool_records": 0}},
		{"self-check running", Snapshot{SelfCheck: SelfCheckPending},
			map[string]int{"vigil_self_check_healthy": 0, "vigil_self_check_pending": 1}},
		{"self-check failed", Snapshot{SelfCheck: SelfCheckFailed},
			map[string]int{"vigil_self_check_healthy": 1, "vigil_self_check_pending": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(Options{Source: "audit", Started: testStart, Snapshot: func() Snapshot { return tc.s }})
			for family, want := range tc.present {
				if got := testutil.CollectAndCount(c, family); got != want {
					t.Errorf("%s: %d series, want %d", family, got, want)
				}
			}
		})
	}
	failed := newCollector(Options{Snapshot: func() Snapshot { return Snapshot{SelfCheck: SelfCheckFailed} }})
	if err := testutil.CollectAndCompare(failed, strings.NewReader(`
# HELP vigil_self_check_healthy The start-up self-check's verdict: 1 when the canary's events all came through the source, 0 when not. Absent while it runs or when it is off.
# TYPE vigil_self_check_healthy gauge
vigil_self_check_healthy 0
`), "vigil_self_check_healthy"); err != nil {
		t.Error(err)
	}
}

func TestServerServesTheRegistry(t *testing.T) {
	calls := 0
	reg := NewRegistry(Options{Source: "ebpf", Started: testStart, Snapshot: func() Snapshot { calls++; return testSnapshot }})
	srv, err := Listen("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr() + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", Path, resp.Status, err)
	}
	for _, line := range []string{`vigil_events_total{kind="open"} 340`, `vigil_source_info{source="ebpf"} 1`, "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(string(body), line) {
			t.Errorf("the page lacks %q", line)
		}
	}
	if calls != 1 {
		t.Errorf("one scrape took %d snapshots, want 1", calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get("http://" + srv.Addr() + Path); err == nil {
		t.Error("the endpoint still answers after Close")
	}
}

func TestListenFailsAtOnce(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = Listen(taken.Addr().String(), NewRegistry(Options{Snapshot: func() Snapshot { return Snapshot{} }}))
	if err == nil || !strings.Contains(err.Error(), "metrics: listen on "+taken.Addr().String()) {
		t.Fatalf("Listen on a taken port: %v, want an error naming the address", err)
	}
}
