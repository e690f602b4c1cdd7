package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/metrics"
)

// metricsStopGrace bounds how long a scrape in flight may delay the stop.
const metricsStopGrace = time.Second

// sensorParts are what `vigil run` built that the metrics endpoint reads.
type sensorParts struct {
	source   sensor.Source // the platform's (the self-check's wrapper has no ring)
	check    *selfCheck    // nil: the self-check does not run
	pipe     *sensor.Pipeline
	table    *sensor.ProcessTable
	corr     *correlator
	out      *outputs
	detector *rules.Detector // nil: detections off
	started  time.Time
}

// startMetrics serves the metrics on metrics.listen; nil, nil when it is "". An address
// off loopback is served as the administrator wrote it, with a warning: the families name
// the agents in use on this machine.
func startMetrics(cfg sensor.Config, p sensorParts, log zerolog.Logger) (*metrics.Server, error) {
	if cfg.Metrics.Listen == "" {
		log.Info().Msg("metrics endpoint off (metrics.listen is empty); vigil status cannot read this sensor")
		return nil, nil
	}
	reg := metrics.NewRegistry(metrics.Options{Source: p.source.Name(), Started: p.started, Snapshot: p.snapshot})
	srv, err := metrics.Listen(cfg.Metrics.Listen, reg)
	if err != nil {
		return nil, fmt.Errorf("start metrics endpoint (metrics.listen): %w", err)
	}
	ev := log.Info()
	if !sensor.IsLoopbackListen(cfg.Metrics.Listen) {
		ev = log.Warn().Str("why", "metrics.listen is not a loopback address: anyone who can reach it sees which agents run here")
	}
	ev.Str("url", "http://"+srv.Addr()+metrics.Path).Msg("metrics endpoint listening")
	return srv, nil
}

// stopMetrics stops the endpoint, letting a scrape in flight finish briefly.
func stopMetrics(srv *metrics.Server, log zerolog.Logger) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsStopGrace)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		log.Error().Err(err).Msg("metrics endpoint")
	}
}

// snapshot reads every part's counters for one scrape. Each is safe beside the pipeline:
// atomics, the parts' own locks, or (the detector's) a copy the pipeline publishes.
func (p sensorParts) snapshot() metrics.Snapshot {
	st := p.pipe.Stats()
	cs := p.corr.stitcher.Stats()
	ts := p.table.Stats()
	s := metrics.Snapshot{
		Lost: p.pipe.Lost(), SinkLost: p.out.sinkLost(), Written: st.Written, SinkErrors: st.SinkErrors, FloodLines: p.out.floodLines(),
		Bindings: cs.Bindings, Telemetry: cs.Telemetry, Untrusted: cs.Untrusted, UntrustedSuppressed: cs.UntrustedSuppressed,
		TelemetrySeen: cs.TelemetrySeen, ProcessesLive: ts.Live, ProcessesExited: ts.Exited, AgentTrees: p.table.AgentTrees(),
	}
	for _, a := range p.pipe.Actions() {
		s.Kinds = append(s.Kinds, metrics.Kind{Kind: a.Action, Events: a.Events, Last: a.Last})
	}
	s.QueueLength, s.QueueCap = p.pipe.Queue()
	if ring, ok := p.source.(sensor.RingSource); ok {
		s.RingPending, s.RingSize = ring.Ring()
	}
	if p.detector != nil {
		h := p.detector.Health()
		s.Alerts, s.RuleErrors, s.RulePanics, s.AgentSilent = h.Stats.AlertsByRule, h.Stats.ErrorsByRule, h.Stats.Panics, h.Silent
	}
	if p.check != nil {
		s.SelfCheck = p.check.state()
	}
	if p.out.otlp != nil {
		st := p.out.otlp.Stats()
		s.Export = &metrics.Export{Sent: st.Sent, Retried: st.Retried, SpooledRecords: st.SpooledRecords, SpooledBytes: uint64(max(st.SpooledBytes, 0))}
	}
	return s
}
