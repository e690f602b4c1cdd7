package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fullSample is a full report built from made-up samples: the shapes, not the numbers, are
// what the tests look at (no timing is asserted anywhere).
func fullSample() fullReport {
	var samples []sample
	add := func(config, variant, work string, xs ...float64) {
		for i, x := range xs {
			samples = append(samples, sample{Round: i + 1, Config: config, Variant: variant, Work: work, NsPerOp: x})
		}
	}
	for _, v := range variants {
		add(configNone, v, "open", 1000, 1000, 1000)
		add(configFloor, v, "open", 1100, 1100, 1100)
		add(configAuditd, v, "open", 20000, 20000, 20000)
		add(configNone, v, "connect", 30000, 30000, 30000)
		add(configAuditd, v, "connect", 40000, 40000, 40000)
		add(configVigil, v, "connect", 30000, 30000, 30000)
	}
	add(configVigil, untracked, "open", 1100, 1100, 1100)
	add(configVigil, tracked, "open", 1500, 1500, 1500)
	configs := []string{configNone, configFloor, configVigil, configAuditd}
	side := report{Rounds: 3, N: map[string]int{"open": 1}, Configs: configs, Samples: samples}
	side.Summaries = summarize(samples, configs)
	r := fullReport{
		Side: &side,
		Throughput: &throughputReport{
			Bursts:   []burstRun{{RingKB: defaultRingKB, Threads: 1, Generated: 100, Written: 100}, {RingKB: smallRingKB, Threads: 4, Generated: 100, Written: 90, Lost: map[string]uint64{"open": 10}}},
			MaxClean: []maxClean{{RingKB: defaultRingKB, Threads: 2, Rate: 1000}},
		},
		Correlator: &correlatorReport{Runs: []correlatorRun{{Sessions: 1, EventsPerSec: 300_000, HeapBytes: 1 << 20}, {Sessions: 10, EventsPerSec: 200_000, HeapBytes: 2 << 20}}},
		Sensor:     &sensorCost{ReadyMs: []float64{100, 120, 300}, StartWallMs: []float64{150, 170, 350}, Idle: phaseCost{Name: "idle", RSSMaxMiB: 30, HWMMiB: 31}, Load: []phaseCost{{Name: "load", HWMMiB: 80, Rate: 5000}}},
	}
	r.finish()
	return r
}

func TestFullGoals(t *testing.T) {
	r := fullSample()
	met := map[string]string{}
	for _, g := range r.Goals {
		met[g.Goal] = g.Met
	}
	want := map[string]string{
		"untracked overhead ≤ floor + 2 points":                                                     "yes",
		"tracked open+close ≤ +35%":                                                                 "no",
		"≥ 50× less overhead than auditd (added ns per open+close)":                                 "no", // tracked: 19,000 / 500 = 38×
		fmt.Sprintf("0 loss up to the machine's max rate (default %d MiB ring)", defaultRingKB>>10): "yes",
		"correlator ≥ 250k events/s on one core":                                                    "no",
		"RSS ≤ 64 MiB":               "no",
		"ready ≤ 250 ms":             "yes",
		"real-agent task time ≤ +2%": "n/a",
	}
	for g, w := range want {
		if met[g] != w {
			t.Errorf("goal %q: met %q, want %q", g, met[g], w)
		}
	}
	var connect *auditdRatio
	for i, a := range r.VsAuditd {
		if a.Work == "connect" && a.Variant == tracked {
			connect = &r.VsAuditd[i]
		}
	}
	if connect == nil || connect.Times != 0 || connect.AudAddedNs != 10000 {
		t.Errorf("connect, Vigil adding nothing: %+v", connect)
	}
}

func TestFullMarkdown(t *testing.T) {
	md := fullSample().markdown()
	for _, want := range []string{
		"## Goals (issue 5)",
		"| auditd, tracked | 20,000 (20,000–20,000) | +1900.0% |",
		"| tracked | open | +500 ns | +19,000 ns | 38.0× |",
		"| tracked | connect | +0 ns | +10,000 ns | Vigil within noise |",
		"| 256 KiB | 4 | full speed | 100 |",
		"## 5. Real agent",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("full.md lacks %q:\n%s", want, md)
		}
	}
}

func TestPlotOverhead(t *testing.T) {
	r := fullSample()
	path := filepath.Join(t.TempDir(), "full.png")
	if err := plotOverhead(r.Side, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("not a PNG: % x", b[:min(len(b), 8)])
	}
}

func TestCorrelatorReplay(t *testing.T) {
	tpl, n, err := loadSamples("../correlate/testdata")
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || len(tpl["claude"]) == 0 || len(tpl["codex"]) == 0 {
		t.Fatalf("samples: %d payloads, %d claude, %d codex batches", n, len(tpl["claude"]), len(tpl["codex"]))
	}
	_, _, st, c := replay(tpl, 2, 2, 200, false)
	if c.kernel != 2*2*200 || st.Released != uint64(c.kernel) {
		t.Errorf("kernel events %d, released %d", c.kernel, st.Released)
	}
	// The shapes must exercise the stitcher's keys, not only "none".
	for _, how := range []string{"traceparent", "env_call_id", "file_path"} {
		if st.Bindings[how] == 0 {
			t.Errorf("no %s bindings: %v", how, st.Bindings)
		}
	}
	if c.agentLines == 0 {
		t.Error("no agent lines written")
	}
}
