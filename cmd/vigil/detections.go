package main

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/sensor"
)

// startDetections loads the starter pack and detections.rules_dir and returns the detector the
// pipeline runs them in; nil when detections.enabled is false. A rule file that does not parse
// or compile stops the start, naming the file, line and rule: a sensor silently running
// without a rule its administrator installed would be worse.
func startDetections(cfg sensor.Config, log zerolog.Logger) (*rules.Detector, error) {
	if !cfg.Detections.Enabled {
		log.Warn().Msg("detections disabled (detections.enabled: false): no alerts will be raised")
		return nil, nil
	}
	set, err := rules.Load(cfg.Detections.RulesDir)
	if err != nil {
		return nil, fmt.Errorf("load detection rules: %w", err)
	}
	pack := 0
	for _, r := range set.Rules() {
		if r.FromPack() {
			pack++
		}
	}
	log.Info().Int("rules", len(set.Rules())).Int("pack", pack).Str("rules_dir", cfg.Detections.RulesDir).Msg("detection rules loaded")
	cat, err := cfg.Catalog()
	if err != nil {
		return nil, fmt.Errorf("detections: %w", err)
	}
	silent := time.Duration(cfg.Detections.SilentAgentAfterSeconds) * time.Second
	return rules.NewDetector(set, rules.Options{Log: log, SilentAfter: silent, AgentPrograms: agentPrograms(cat)}), nil
}

// agentPrograms are the executable base names of the catalog's agents: their process starts
// are an agent's work for the silent-agent detection.
func agentPrograms(cat *sensor.Catalog) []string {
	var names []string
	for _, a := range cat.Agents {
		names = append(names, a.Binaries...)
	}
	return names
}

// detectorOption keeps a nil *rules.Detector from becoming a non-nil sensor.Detector.
func detectorOption(d *rules.Detector) sensor.Detector {
	if d == nil {
		return nil
	}
	return d
}

// detectorPublish is the detector's Publish for the pipeline to call, nil without detector.
func detectorPublish(d *rules.Detector) func() {
	if d == nil {
		return nil
	}
	return d.Publish
}

// logDetections adds the detector's counters to the exit summary.
func logDetections(log zerolog.Logger, d *rules.Detector) {
	if d == nil {
		return
	}
	st := d.Stats()
	log.Info().Int("rules", st.Rules).Uint64("evaluations", st.Evaluations).Uint64("alerts", st.Alerts).
		Uint64("rule_errors", st.Errors).Uint64("panics", st.Panics).Interface("alerts_by_rule", st.AlertsByRule).
		Interface("errors_by_rule", st.ErrorsByRule).Uint64("calls_evicted", st.CallsEvicted).
		Uint64("sessions_evicted", st.SessionsEvicted).Uint64("prompts_evicted", st.PromptsEvicted).Uint64("scripts_evicted", st.ScriptsEvicted).Uint64("trees_evicted", st.TreesEvicted).
		Uint64("aggregate_capped", st.AggregateCapped).Uint64("repeats", st.Repeats).Uint64("rejudged", st.Rejudged).Uint64("late_forgotten", st.LateForgotten).Uint64("raised_forgotten", st.RaisedForgotten).Msg("detections")
}
