// Package metrics serves the running sensor's health as Prometheus metrics: events and loss
// per kind, the ring buffer's and the queue's fill, what the correlator bound and refused,
// telemetry seen per agent, agents running but silent, the self-check's verdict.
//
// Nothing here counts on the event path. The collector reads a Snapshot of the counters the
// sensor keeps anyway (the pipeline's, the stitcher's, the detector's, the process table's)
// when Prometheus scrapes, so an endpoint nobody scrapes costs nothing and a scrape costs
// the same whatever the event rate. The registry is the sensor's own, not the process-wide
// default one, so that a library registering there cannot add families to it.
package metrics

import (
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// SelfCheck is the state of the start-up self-check (cmd/vigil/selfcheck.go).
type SelfCheck int

const (
	// SelfCheckOff: not run (self_check: false, or a replayed capture); no family.
	SelfCheckOff SelfCheck = iota
	// SelfCheckPending: the canary runs; vigil_self_check_pending 1.
	SelfCheckPending
	// SelfCheckHealthy and SelfCheckFailed are the verdict: vigil_self_check_healthy 1 or 0.
	SelfCheckHealthy
	SelfCheckFailed
)

// Kind is one kind of kernel event (event.action) taken from the source.
type Kind struct {
	Kind   string
	Events uint64
	// Last is the @timestamp of the newest one.
	Last time.Time
}

// Snapshot is the sensor's counters at one moment. Cumulative counts only grow while the
// sensor runs; an empty map exposes nothing for its family.
type Snapshot struct {
	Kinds []Kind
	// Lost is per kind the cumulative count of events lost, as the lost records add it up
	// (the source's kinds, otlp_rejected, hook, output, exe_hash, shutdown...).
	Lost map[string]uint64
	// SinkLost is per output the records it could not take.
	SinkLost map[string]uint64
	// Written counts the records every sink accepted; SinkErrors the failed writes.
	Written, SinkErrors uint64
	// FloodLines counts the kernel lines past their agent tree's line budget, written to
	// output.flood_jsonl.
	FloodLines uint64
	// RingSize is 0 when the source has no ring buffer (audit, eslogger): no ring family.
	RingPending, RingSize int
	QueueLength, QueueCap int
	// Bindings counts the kernel lines bound per evidence (vigil.binding).
	Bindings map[string]uint64
	// Telemetry counts trusted agent events, Untrusted those from senders outside every agent
	// tree, UntrustedSuppressed those summarised past their sender's rate.
	Telemetry, Untrusted, UntrustedSuppressed uint64
	// TelemetrySeen is per agent when its trusted telemetry last arrived.
	TelemetrySeen map[string]time.Time
	// Alerts and RuleErrors are per rule id; RulePanics counts lines whose observation panicked.
	Alerts, RuleErrors map[string]uint64
	RulePanics         uint64
	// ProcessesLive and ProcessesExited are the process table's entries.
	ProcessesLive, ProcessesExited int
	// AgentTrees is per agent the trees running; AgentSilent those silent (the agent.silent
	// alert raised, no trusted telemetry since, the root still running).
	AgentTrees, AgentSilent map[string]int
	SelfCheck               SelfCheck
	// Export is the OTLP export's progress; nil when output.otlp is off (no family).
	Export *Export
}

// Export is the OTLP export's progress: what the endpoint took, what was sent again, and the
// backlog on disk while the endpoint is down or slower than the sensor (what it drops is in
// SinkLost).
type Export struct {
	Sent, Retried                uint64
	SpooledRecords, SpooledBytes uint64
}

// Options are what the collector exposes.
type Options struct {
	// Source is the kernel event source in use (vigil_source_info).
	Source string
	// Started is when the sensor started (vigil_start_time_seconds).
	Started time.Time
	// Snapshot is called once per scrape, from the HTTP server's goroutine: it must be safe
	// beside the pipeline.
	Snapshot func() Snapshot
}

// NewRegistry returns a registry with the sensor's families (all vigil_*) and the Go
// runtime's and the process's (go_*, process_*: memory, CPU, open files).
func NewRegistry(o Options) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(o), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// collector turns a Snapshot into metrics at scrape time.
type collector struct {
	o Options

	sourceInfo, startTime                                   *prometheus.Desc
	events, lastEvent, lost, sinkLost, written, sinkErrors  *prometheus.Desc
	floodLines                                              *prometheus.Desc
	ringPending, ringSize, queueLength, queueCap            *prometheus.Desc
	bindings, telemetry, untrusted, suppressed, seen        *prometheus.Desc
	alerts, ruleErrors, rulePanics, processes               *prometheus.Desc
	agentTrees, agentSilent, selfCheckHealthy, selfCheckRun *prometheus.Desc
	exportSent, exportRetried, spoolRecords, spoolBytes     *prometheus.Desc
}

func newCollector(o Options) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{o: o,
		sourceInfo:       d("vigil_source_info", "The kernel event source in use (1).", "source"),
		startTime:        d("vigil_start_time_seconds", "When the sensor started, Unix seconds."),
		events:           d("vigil_events_total", "Kernel events taken from the source, per event.action.", "kind"),
		lastEvent:        d("vigil_last_event_timestamp_seconds", "@timestamp of the newest kernel event per event.action, Unix seconds.", "kind"),
		lost:             d("vigil_events_lost_total", "Events lost per kind, as the lost records add them up (the source's kinds, otlp_rejected, hook, output, exe_hash, shutdown...).", "kind"),
		sinkLost:         d("vigil_sink_lost_total", "Records an output could not take.", "sink"),
		written:          d("vigil_records_written_total", "Records every output accepted."),
		floodLines:       d("vigil_flood_lines_total", "Kernel lines past their agent tree's line budget (output.tree_lines_per_minute), written to output.flood_jsonl."),
		sinkErrors:       d("vigil_sink_errors_total", "Failed output writes and flushes."),
		ringPending:      d("vigil_ring_buffer_pending_bytes", "Bytes the kernel wrote to the eBPF ring buffer and the sensor has not read yet."),
		ringSize:         d("vigil_ring_buffer_size_bytes", "Size of the eBPF ring buffer."),
		queueLength:      d("vigil_queue_length", "Events queued between the source's reader and the pipeline."),
		queueCap:         d("vigil_queue_capacity", "Events the queue between the source's reader and the pipeline may hold (pipeline.queue_size)."),
		bindings:         d("vigil_bindings_total", "Kernel lines bound to a tool call, per evidence (vigil.binding).", "evidence"),
		telemetry:        d("vigil_telemetry_events_total", "Agent telemetry events accepted from trusted senders (an agent process)."),
		untrusted:        d("vigil_untrusted_telemetry_events_total", "Agent telemetry events from senders no agent tree vouches for."),
		suppressed:       d("vigil_untrusted_telemetry_suppressed_total", "Untrusted telemetry events past their sender's rate, summarised instead of written."),
		seen:             d("vigil_telemetry_last_seen_timestamp_seconds", "When the agent's trusted telemetry (OTLP or hooks) last arrived, Unix seconds.", "agent"),
		alerts:           d("vigil_alerts_total", "Alerts raised, per rule.", "rule"),
		ruleErrors:       d("vigil_rule_errors_total", "Rule evaluations that failed at run time (a non-match), per rule.", "rule"),
		rulePanics:       d("vigil_rule_panics_total", "Lines whose rule evaluation panicked (a defect; the line is skipped by the rules)."),
		processes:        d("vigil_process_table_entries", "Processes of agent trees in the process table.", "state"),
		agentTrees:       d("vigil_agent_trees", "Agent trees running, per agent.", "agent"),
		agentSilent:      d("vigil_agent_silent", "Agent trees running silent, per agent: the agent.silent alert raised and no trusted telemetry since.", "agent"),
		selfCheckHealthy: d("vigil_self_check_healthy", "The start-up self-check's verdict: 1 when the canary's events all came through the source, 0 when not. Absent while it runs or when it is off."),
		selfCheckRun:     d("vigil_self_check_pending", "1 while the start-up self-check's canary runs, 0 once it has a verdict. Absent when it is off."),
		exportSent:       d("vigil_otlp_sent_records_total", "Records the OTLP endpoint took (output.otlp)."),
		exportRetried:    d("vigil_otlp_retried_records_total", "Records sent to the OTLP endpoint again after a failed try, each retry counted."),
		spoolRecords:     d("vigil_otlp_spool_records", "Records in the OTLP export's spool on disk, not yet taken by the endpoint."),
		spoolBytes:       d("vigil_otlp_spool_bytes", "Bytes of the OTLP export's spool on disk (bounded by output.otlp.spool_max_mb)."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sourceInfo, c.startTime, c.events, c.lastEvent, c.lost, c.sinkLost, c.written, c.floodLines, c.sinkErrors,
		c.ringPending, c.ringSize, c.queueLength, c.queueCap, c.bindings, c.telemetry, c.untrusted, c.suppressed, c.seen,
		c.alerts, c.ruleErrors, c.rulePanics, c.processes, c.agentTrees, c.agentSilent, c.selfCheckHealthy, c.selfCheckRun,
		c.exportSent, c.exportRetried, c.spoolRecords, c.spoolBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Snapshot, turned into metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.o.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counters := func(d *prometheus.Desc, m map[string]uint64) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			counter(d, m[k], k)
		}
	}
	gauge(c.sourceInfo, 1, c.o.Source)
	gauge(c.startTime, unixSeconds(c.o.Started))
	for _, k := range s.Kinds {
		counter(c.events, k.Events, k.Kind)
		gauge(c.lastEvent, unixSeconds(k.Last), k.Kind)
	}
	counters(c.lost, s.Lost)
	counters(c.sinkLost, s.SinkLost)
	counter(c.written, s.Written)
	counter(c.floodLines, s.FloodLines)
	counter(c.sinkErrors, s.SinkErrors)
	if s.RingSize > 0 {
		gauge(c.ringPending, float64(s.RingPending))
		gauge(c.ringSize, float64(s.RingSize))
	}
	gauge(c.queueLength, float64(s.QueueLength))
	gauge(c.queueCap, float64(s.QueueCap))
	counters(c.bindings, s.Bindings)
	counter(c.telemetry, s.Telemetry)
	counter(c.untrusted, s.Untrusted)
	counter(c.suppressed, s.UntrustedSuppressed)
	for _, a := range slices.Sorted(maps.Keys(s.TelemetrySeen)) {
		gauge(c.seen, unixSeconds(s.TelemetrySeen[a]), a)
	}
	counters(c.alerts, s.Alerts)
	counters(c.ruleErrors, s.RuleErrors)
	counter(c.rulePanics, s.RulePanics)
	gauge(c.processes, float64(s.ProcessesLive), "live")
	gauge(c.processes, float64(s.ProcessesExited), "exited")
	// Every agent with a tree running or silent gets both, 0 included, so that
	// vigil_agent_silent > 0 can be alerted on and an absent series means no such agent.
	agents := slices.Sorted(maps.Keys(s.AgentTrees))
	for a := range s.AgentSilent {
		if _, ok := s.AgentTrees[a]; !ok {
			agents = append(agents, a)
		}
	}
	slices.Sort(agents)
	for _, a := range agents {
		gauge(c.agentTrees, float64(s.AgentTrees[a]), a)
		gauge(c.agentSilent, float64(s.AgentSilent[a]), a)
	}
	if e := s.Export; e != nil {
		counter(c.exportSent, e.Sent)
		counter(c.exportRetried, e.Retried)
		gauge(c.spoolRecords, float64(e.SpooledRecords))
		gauge(c.spoolBytes, float64(e.SpooledBytes))
	}
	switch s.SelfCheck {
	case SelfCheckPending:
		gauge(c.selfCheckRun, 1)
	case SelfCheckHealthy:
		gauge(c.selfCheckRun, 0)
		gauge(c.selfCheckHealthy, 1)
	case SelfCheckFailed:
		gauge(c.selfCheckRun, 0)
		gauge(c.selfCheckHealthy, 0)
	}
}

// unixSeconds is t as Prometheus timestamps are given, with its sub-second part.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
