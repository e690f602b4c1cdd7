package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// agentPart times a real Claude Code scenario of the end-to-end harness (bench/e2e) with and
// without `vigil run`. The harness is built from ./bench/e2e (run from the repository root)
// and run once per measurement with -timing (and -no-sensor for the runs without Vigil): each
// run is the whole scenario (its own network namespace, mock model API with the scenario's
// latency, sibling process, and with Vigil the sensor started and ready before the agent),
// and the harness reports the agent's own wall time, start to exit. One untimed warm-up
// without the sensor first (page cache), then rounds, each with both runs in an order that
// alternates per round.
func agentPart(o options, dir string) (*agentReport, error) {
	harness := filepath.Join(dir, "e2e-harness")
	if out, err := exec.Command("go", "build", "-o", harness, "./bench/e2e").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./bench/e2e (run from the repository root): %v: %s", err, out)
	}
	vigil, err := filepath.Abs(o.vigil)
	if err != nil {
		return nil, err
	}
	a := &agentReport{Scenario: o.agentScenario, Rounds: o.agentRounds, LatencyMs: scenarioLatency(o.agentScenario)}
	work := filepath.Join(dir, "e2e-work")
	once := func(sensor bool) (float64, error) {
		args := []string{"-run", "^" + o.agentScenario + "$", "-timing", "-vigil", vigil, "-npm-cache", o.npmCache,
			"-work", work, "-results", filepath.Join(dir, "e2e-results")}
		if !sensor {
			args = append(args, "-no-sensor")
		}
		cmd := exec.Command(harness, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var t struct {
			Scenario     string  `json:"scenario"`
			AgentSeconds float64 `json:"agent_seconds"`
			Error        string  `json:"error"`
		}
		found := false
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if json.Unmarshal(sc.Bytes(), &t) == nil && t.Scenario != "" {
				found = true
			}
		}
		switch {
		case !found:
			return 0, fmt.Errorf("e2e harness printed no timing (%v): %s", err, strings.TrimSpace(lastLinesOf(stderr.String(), 5)))
		case t.Error != "":
			return 0, fmt.Errorf("e2e %s: %s", t.Scenario, t.Error)
		case err != nil:
			return 0, fmt.Errorf("e2e harness: %v: %s", err, strings.TrimSpace(lastLinesOf(stderr.String(), 5)))
		}
		return t.AgentSeconds, nil
	}
	fmt.Printf("[agent] %s: warm-up run without Vigil\n", o.agentScenario)
	if _, err := once(false); err != nil {
		return nil, err
	}
	for round := 1; round <= o.agentRounds; round++ {
		order := []bool{true, false}
		if round%2 == 0 {
			order = []bool{false, true}
		}
		for _, sensor := range order {
			waitQuiet()
			s, err := once(sensor)
			if err != nil {
				return a, err
			}
			a.Runs = append(a.Runs, agentRun{Round: round, Sensor: sensor, Seconds: s})
			fmt.Printf("[agent] round %d/%d, vigil=%v: %.3f s\n", round, o.agentRounds, sensor, s)
		}
	}
	a.finish()
	return a, nil
}

// scenarioLatency reads the mock latency of an e2e scenario (300 ms unless it says).
func scenarioLatency(name string) int {
	b, err := os.ReadFile(filepath.Join("bench", "e2e", "scenarios", strings.ReplaceAll(name, "/", "-")+".json"))
	if err != nil {
		return 0
	}
	var s struct {
		LatencyMs *int `json:"latency_ms"`
	}
	if json.Unmarshal(b, &s) != nil {
		return 0
	}
	if s.LatencyMs == nil {
		return 300
	}
	return *s.LatencyMs
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
