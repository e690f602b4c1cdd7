package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// agentSample: made-up runs (the shapes, not the numbers, are tested; nothing is timed).
func agentSample(with, without []float64) *agentReport {
	a := &agentReport{Scenario: "claude/pipeline", LatencyMs: 300, Rounds: len(with)}
	for i := range with {
		a.Runs = append(a.Runs, agentRun{Round: i + 1, Sensor: true, Seconds: with[i]}, agentRun{Round: i + 1, Sensor: false, Seconds: without[i]})
	}
	a.finish()
	return a
}

func TestAgentGoal(t *testing.T) {
	a := agentSample([]float64{1.01, 1.02, 1.00}, []float64{1.00, 1.00, 1.00})
	if a.With.N != 3 || a.Without.N != 3 || a.With.Median != 1.01 || a.With.Min != 1.00 || a.With.Max != 1.02 {
		t.Errorf("stats: %+v", a.With)
	}
	if g := a.goal(); g.Met != "yes" || !strings.Contains(g.Result, "+1.0%") {
		t.Errorf("goal: %+v", g)
	}
	b := agentSample([]float64{1.10, 1.10, 1.10}, []float64{1.00, 1.00, 1.00})
	if g := b.goal(); g.Met != "no" || !strings.Contains(g.Result, "misses by 8.0 points") {
		t.Errorf("goal: %+v", g)
	}
	var none *agentReport
	if g := none.goal(); g.Met != "n/a" {
		t.Errorf("no part: %+v", g)
	}
	md := a.markdown("## 5. Real agent")
	for _, want := range []string{"| with Vigil | 1.010 s | 1.000–1.020 s | 3 |", "| 2 | 1.020 | 1.000 |", "**+1.0%**"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// writeAgent puts the result into an existing full.json and re-renders full.md.
func TestWriteAgentIntoFull(t *testing.T) {
	dir := t.TempDir()
	r := fullSample()
	js, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(dir, "full.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAgent(agentSample([]float64{1.01}, []float64{1.00}), dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"agent.json", "agent.md", "full.md", "full.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "full.md"))
	if !strings.Contains(string(md), "| real-agent task time ≤ +2% | claude/pipeline, 1 runs each") || !strings.Contains(string(md), "| with Vigil | 1.010 s") {
		t.Errorf("full.md:\n%s", md)
	}
}
