package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// agentReport is the real-agent part (agent.json; full.json's "real_agent"): the wall time
// of a scripted Claude Code scenario of the end-to-end harness (bench/e2e), offline against
// its mock model API, with `vigil run` and without it, rounds interleaved.
type agentReport struct {
	Scenario  string     `json:"scenario"`        // agent/name in bench/e2e/scenarios
	LatencyMs int        `json:"mock_latency_ms"` // the mock's delay before each model answer
	Rounds    int        `json:"rounds"`
	Runs      []agentRun `json:"runs"`
	With      agentStat  `json:"with_vigil"`
	Without   agentStat  `json:"without_vigil"`
	// OverheadPct: median with / median without − 1, in %.
	OverheadPct float64 `json:"overhead_pct"`
	// PairedPct: the median over rounds of (with / without − 1) within the round, in %:
	// less sensitive to drift across the run.
	PairedPct float64 `json:"paired_overhead_pct"`
}

// agentRun is one run of the scenario: the agent's wall time, from just before the harness
// starts it to its exit (measured inside the harness's network namespace).
type agentRun struct {
	Round   int     `json:"round"`
	Sensor  bool    `json:"vigil"`
	Seconds float64 `json:"agent_seconds"`
}

type agentStat struct {
	Median float64 `json:"median_s"`
	Min    float64 `json:"min_s"`
	Max    float64 `json:"max_s"`
	N      int     `json:"n"`
}

// finish computes the medians and the overheads from the runs.
func (a *agentReport) finish() {
	var with, without []float64
	byRound := map[int][2]float64{}
	for _, r := range a.Runs {
		p := byRound[r.Round]
		if r.Sensor {
			with = append(with, r.Seconds)
			p[0] = r.Seconds
		} else {
			without = append(without, r.Seconds)
			p[1] = r.Seconds
		}
		byRound[r.Round] = p
	}
	stat := func(xs []float64) agentStat {
		if len(xs) == 0 {
			return agentStat{}
		}
		return agentStat{Median: median(xs), Min: minOf(xs), Max: maxOf(xs), N: len(xs)}
	}
	a.With, a.Without = stat(with), stat(without)
	a.OverheadPct = 0
	if a.Without.Median > 0 {
		a.OverheadPct = (a.With.Median/a.Without.Median - 1) * 100
	}
	var paired []float64
	for _, p := range byRound {
		if p[0] > 0 && p[1] > 0 {
			paired = append(paired, (p[0]/p[1]-1)*100)
		}
	}
	a.PairedPct = 0
	if len(paired) > 0 {
		a.PairedPct = median(paired)
	}
}

// goal is issue 5's "real-agent task time ≤ +2%" line.
func (a *agentReport) goal() goal {
	const name = "real-agent task time ≤ +2%"
	if a == nil || a.With.N == 0 || a.Without.N == 0 {
		return goal{name, "not measured (part agent did not run)", "n/a"}
	}
	res := fmt.Sprintf("%s, %d runs each: median %.3f s with Vigil vs %.3f s without: %+.1f%% (paired per round %+.1f%%)",
		a.Scenario, a.With.N, a.With.Median, a.Without.Median, a.OverheadPct, a.PairedPct)
	if a.OverheadPct > 2 {
		res += fmt.Sprintf("; misses by %.1f points", a.OverheadPct-2)
	}
	return goal{name, res, metStr(a.OverheadPct <= 2)}
}

// markdown is section 5 of full.md and the body of agent.md.
func (a *agentReport) markdown(heading string) string {
	var b strings.Builder
	b.WriteString(heading + "\n\n")
	if a == nil || len(a.Runs) == 0 {
		b.WriteString("Not measured in this run (part `agent`, or `go run ./bench -mode agent`; see bench/README.md).\n")
		return b.String()
	}
	fmt.Fprintf(&b, "The end-to-end harness's scenario `%s` (real Claude Code CLI, offline in its own network namespace against the harness's mock model API, %d ms per model answer), run %d rounds, each round once with `vigil run` and once without (order alternating per round; without, an OTLP sink takes the agent's telemetry in the sensor's place). Agent wall time = from just before the agent process starts to its exit.\n\n",
		a.Scenario, a.LatencyMs, a.Rounds)
	b.WriteString("| | median | min–max | runs |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| without Vigil | %.3f s | %.3f–%.3f s | %d |\n", a.Without.Median, a.Without.Min, a.Without.Max, a.Without.N)
	fmt.Fprintf(&b, "| with Vigil | %.3f s | %.3f–%.3f s | %d |\n", a.With.Median, a.With.Min, a.With.Max, a.With.N)
	fmt.Fprintf(&b, "\nOverhead (median with / median without − 1): **%+.1f%%**; median of the per-round ratios: %+.1f%%.\n", a.OverheadPct, a.PairedPct)
	b.WriteString("\nRuns (s):\n\n| round | with Vigil | without |\n|---|---|---|\n")
	rows := map[int][2]float64{}
	maxRound := 0
	for _, r := range a.Runs {
		p := rows[r.Round]
		if r.Sensor {
			p[0] = r.Seconds
		} else {
			p[1] = r.Seconds
		}
		rows[r.Round] = p
		maxRound = max(maxRound, r.Round)
	}
	for i := 1; i <= maxRound; i++ {
		if p, ok := rows[i]; ok {
			fmt.Fprintf(&b, "| %d | %.3f | %.3f |\n", i, p[0], p[1])
		}
	}
	return b.String()
}

// writeAgent writes agent.json and agent.md into dir and, when dir holds a full.json, puts
// the result into it and re-renders full.md (the other parts are not re-run).
func writeAgent(a *agentReport, dir string) error {
	md := "# Vigil beside a real agent\n\nMethod: bench/README.md (Real agent). Goal (issue 5): " + a.goal().Goal + " — met: " + a.goal().Met + ".\n\n" +
		a.markdown("## Claude Code wall time with and without Vigil")
	if err := writeResults(dir, "agent", a, md); err != nil {
		return err
	}
	full := filepath.Join(dir, "full.json")
	b, err := os.ReadFile(full)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	var r fullReport
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	r.Agent = a
	r.finish()
	return writeFull(r, dir)
}
