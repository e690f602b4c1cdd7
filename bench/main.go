// Command bench measures what Vigil costs the processes around it: the loadgen's loops
// (open+close, fork+exec, loopback connect, loopback UDP sendto) and floods (an rg-like walk
// of 100k distinct files, a fan-out of short processes) with no sensor, with empty programs on Vigil's hooks
// (the floor), and with `vigil run` following or ignoring the loadgen. Rounds are interleaved
// (each round runs every configuration once, in an order rotated per round) and medians are
// reported, because the VMs this runs on are small and shared. No timing is asserted; the
// output is a report (bench/results/quick.md and quick.json). See bench/README.md.
//
// With -mode full (what `make bench` runs) it also adds auditd with equivalent rules to the
// side by side, measures throughput and loss, replays agent telemetry and kernel events through
// the correlator on one core, and measures the sensor's own RSS, CPU and start-up time; the
// output is then bench/results/full.md, full.json and full.png.
//
// Usage (as root): go run ./bench -vigil /tmp/vigil -loadgen /tmp/loadgen [-mode full]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the command line.
type options struct {
	vigil, loadgen string
	rounds         int
	n              map[string]int // timed operations per selected workload (-works)
	configs        []string
	out            string
	// mode is quick (the side by side only: quick.md) or full (every part: full.md).
	mode  string
	parts map[string]bool // full mode: which parts run
	// Full-mode settings.
	testdata        string        // correlate/testdata, for the correlator replay
	burst           time.Duration // each throughput run
	idle            time.Duration // idle sensor measurement
	sessions        []int         // correlator session counts
	correlatorTurns int
	eventsPerTurn   int
	// Real-agent part.
	agentScenario string // agent/name of a bench/e2e scenario
	agentRounds   int
	npmCache      string
}

// Modes and the parts of the full mode.
const (
	modeQuick = "quick"
	modeFull  = "full"
	modeAgent = "agent" // the real-agent part alone (agent.md; put into an existing full.json)

	partSide       = "side"       // the side by side (none, floor, vigil, auditd)
	partThroughput = "throughput" // events generated vs written vs lost
	partCorrelator = "correlator" // stitcher replay on one core
	partSensor     = "sensor"     // RSS, CPU and start-up of vigil run
	partAgent      = "agent"      // wall time of a real Claude Code scenario (bench/e2e)
)

var allParts = []string{partSide, partThroughput, partCorrelator, partSensor, partAgent}

func main() {
	var o options
	var configs, parts, sessions, selected string
	var childTestdata string
	var child bool
	var rerenderPath string
	flag.StringVar(&o.vigil, "vigil", "", "built vigil binary (go build -o /tmp/vigil ./cmd/vigil)")
	flag.StringVar(&o.loadgen, "loadgen", "", "built loadgen binary (go build -o /tmp/loadgen ./bench/loadgen)")
	flag.IntVar(&o.rounds, "rounds", 9, "interleaved rounds; each runs every configuration once")
	nFor := map[string]*int{}
	for _, w := range workloads {
		nFor[w] = flag.Int("n-"+w, workInfo[w].n, workInfo[w].help)
	}
	flag.StringVar(&selected, "works", strings.Join(workloads, ","), "workloads to run, comma-separated ("+strings.Join(workloads, ", ")+")")
	flag.StringVar(&configs, "configs", "", "configurations to run, comma-separated (known: "+strings.Join(knownConfigs, ", ")+"; default "+strings.Join(defaultConfigs, ",")+" in quick mode, "+strings.Join(fullConfigs, ",")+" in full mode)")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the reports (quick.* or full.*)")
	flag.StringVar(&o.mode, "mode", modeQuick, "quick: the side by side only (quick.md); full: every part (full.md, full.json, full.png); agent: the real-agent part only (agent.md, agent.json, and into full.json/full.md if present)")
	flag.StringVar(&parts, "parts", strings.Join(allParts, ","), "full mode: parts to run, comma-separated ("+strings.Join(allParts, ", ")+")")
	flag.StringVar(&o.testdata, "testdata", "correlate/testdata", "OTLP payloads for the correlator replay")
	flag.DurationVar(&o.burst, "burst", 4*time.Second, "full mode: duration of each throughput run")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "full mode: how long the idle sensor is measured")
	flag.StringVar(&sessions, "sessions", "1,10,100,1000", "full mode: correlator session counts")
	flag.IntVar(&o.correlatorTurns, "turns", 5, "full mode: correlator turns per session")
	flag.IntVar(&o.eventsPerTurn, "events-per-turn", 400, "full mode: correlator kernel events per turn")
	flag.StringVar(&o.agentScenario, "agent-scenario", "claude/pipeline", "real-agent part: the bench/e2e scenario (agent/name) to time")
	flag.IntVar(&o.agentRounds, "agent-rounds", 11, "real-agent part: rounds, each runs the scenario with and without Vigil")
	flag.StringVar(&o.npmCache, "npm-cache", "/var/cache/vigil-e2e/npm", "real-agent part: the e2e harness's npm folder (pinned agents)")
	flag.BoolVar(&child, "correlator-child", false, "internal: run the correlator replay in this process and print JSON")
	flag.StringVar(&childTestdata, "correlator-testdata", "", "internal: testdata for -correlator-child")
	flag.StringVar(&rerenderPath, "rerender", "", "rewrite full.md and full.png from this full.json and exit")
	flag.Parse()
	if rerenderPath != "" {
		if err := rerender(rerenderPath); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o.n = map[string]int{}
	for _, w := range strings.Split(selected, ",") {
		n, ok := nFor[w]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench: -works: unknown workload %q (known: %s)\n", w, strings.Join(workloads, ", "))
			os.Exit(2)
		}
		o.n[w] = *n
	}
	var err error
	if o.sessions, err = parseInts(sessions); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -sessions:", err)
		os.Exit(2)
	}
	if child {
		if err := runCorrelatorChild(childTestdata, o.sessions, o.correlatorTurns, o.eventsPerTurn); err != nil {
			fmt.Fprintln(os.Stderr, "bench: correlator:", err)
			os.Exit(1)
		}
		return
	}
	switch {
	case configs != "":
		o.configs = strings.Split(configs, ",")
	case o.mode == modeFull:
		o.configs = fullConfigs
	default:
		o.configs = defaultConfigs
	}
	o.parts = map[string]bool{}
	for _, p := range strings.Split(parts, ",") {
		o.parts[p] = true
	}
	if err := validate(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// validate checks the options before anything is started.
func validate(o options) error {
	if o.mode != "" && o.mode != modeQuick && o.mode != modeFull && o.mode != modeAgent {
		return fmt.Errorf("-mode must be %s, %s or %s, got %q", modeQuick, modeFull, modeAgent, o.mode)
	}
	if (o.mode == modeAgent || o.mode == modeFull && o.parts[partAgent]) && o.agentRounds < 1 {
		return fmt.Errorf("-agent-rounds must be >= 1, got %d", o.agentRounds)
	}
	for p := range o.parts {
		if !slices.Contains(allParts, p) {
			return fmt.Errorf("unknown part %q (known: %s)", p, strings.Join(allParts, ", "))
		}
	}
	if o.rounds < 1 {
		return fmt.Errorf("-rounds must be >= 1, got %d", o.rounds)
	}
	if len(o.n) == 0 {
		return errors.New("-works selects no workload")
	}
	for w, n := range o.n {
		if !slices.Contains(workloads, w) {
			return fmt.Errorf("unknown workload %q (known: %s)", w, strings.Join(workloads, ", "))
		}
		if n < 1 {
			return fmt.Errorf("-n-%s must be >= 1, got %d", w, n)
		}
	}
	seen := map[string]bool{}
	for _, c := range o.configs {
		if !isKnown(c) {
			return fmt.Errorf("unknown configuration %q (known: %s)", c, strings.Join(knownConfigs, ", "))
		}
		if seen[c] {
			return fmt.Errorf("configuration %q given twice", c)
		}
		seen[c] = true
	}
	if !seen[configNone] {
		return fmt.Errorf("-configs must include %q: overheads are relative to it", configNone)
	}
	return nil
}

// parseInts parses "1,10,100".
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers, got %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func isKnown(c string) bool {
	for _, k := range knownConfigs {
		if c == k {
			return true
		}
	}
	return false
}
