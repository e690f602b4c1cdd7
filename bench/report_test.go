package main

import (
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !reflect.DeepEqual(in, tc.in) {
			t.Errorf("median reordered its input: %v", in)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) should be NaN")
	}
}

func TestSummarize(t *testing.T) {
	var samples []sample
	add := func(config, variant string, xs ...float64) {
		for i, x := range xs {
			samples = append(samples, sample{Round: i + 1, Config: config, Variant: variant, Work: "open", NsPerOp: x})
		}
	}
	add(configNone, untracked, 1000, 1200, 900)
	add(configNone, tracked, 2000, 2000, 2000)
	add(configFloor, untracked, 1100, 1150, 1500)
	add(configVigil, untracked, 1200, 1300, 1000)
	add(configVigil, tracked, 3000, 2500, 4000)

	got := summarize(samples, []string{configNone, configFloor, configVigil})
	if len(got) != 5 {
		t.Fatalf("got %d summaries, want 5: %+v", len(got), got)
	}
	byKey := map[string]summary{}
	for _, s := range got {
		byKey[s.Config+"/"+s.Variant] = s
	}
	none := byKey["none/untracked"]
	if none.Median != 1000 || none.Min != 900 || none.Max != 1200 || none.Runs != 3 || none.OverheadPct != nil {
		t.Errorf("none: %+v", none)
	}
	floor := byKey["floor/untracked"]
	if floor.Median != 1150 || *floor.OverheadPct != 15 || floor.FloorDistancePP != nil {
		t.Errorf("floor: %+v", floor)
	}
	vu := byKey["vigil/untracked"]
	if *vu.OverheadPct != 20 || *vu.FloorDistancePP != 5 {
		t.Errorf("vigil untracked: overhead %v, floor distance %v; want 20 and 5", *vu.OverheadPct, *vu.FloorDistancePP)
	}
	// Tracked runs compare with none's tracked runs, and have no floor distance.
	vt := byKey["vigil/tracked"]
	if *vt.OverheadPct != 50 || vt.FloorDistancePP != nil {
		t.Errorf("vigil tracked: %+v", vt)
	}
}

func TestRotate(t *testing.T) {
	c := []string{"a", "b", "c"}
	for round, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := rotate(c, round); !reflect.DeepEqual(got, want) {
			t.Errorf("rotate(round %d) = %v, want %v", round, got, want)
		}
	}
	if !reflect.DeepEqual(c, []string{"a", "b", "c"}) {
		t.Errorf("rotate modified its input: %v", c)
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
	if got := formatOp("forkexec", 724000); got != "724.0" {
		t.Errorf("formatOp(forkexec) = %q", got)
	}
	got := compareCounts(map[string]int{"open": 1005, "exec": 1}, map[string]int{"open": 20000}, map[string]int{"open": 21000})
	if got != "exec 1 / 0, open 1,005 + 20,000 merged / 21,000" {
		t.Errorf("compareCounts = %q", got)
	}
	if formatLost(nil) != "none" || formatLost(map[string]uint64{"open": 3}) != "open 3" {
		t.Error("formatLost")
	}
}

func TestMarkdownTable(t *testing.T) {
	samples := []sample{
		{Round: 1, Config: configNone, Variant: untracked, Work: "open", NsPerOp: 2000},
		{Round: 1, Config: configVigil, Variant: untracked, Work: "open", NsPerOp: 2500, LoadgenCPUNsPerOp: 2400, SensorCPUNsPerOp: 100},
	}
	r := report{Rounds: 1, N: map[string]int{"open": 1}, Configs: []string{configNone, configVigil}, Samples: samples}
	r.Summaries = summarize(samples, r.Configs)
	md := r.markdown()
	for _, want := range []string{"| none, untracked | 2,000 (2,000–2,000) | – |", "| vigil, untracked | 2,500 (2,500–2,500) | +25.0% |", "| vigil, untracked | 2,400 / 100 | – | – |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Samples from before the loadgen said its events per operation: no per-event table.
	if strings.Contains(md, "## Per event") {
		t.Errorf("per-event table without events per operation:\n%s", md)
	}
}

func TestValidate(t *testing.T) {
	ok := options{rounds: 1, n: map[string]int{"open": 1}, configs: []string{configNone, configVigil}}
	if err := validate(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
	for name, o := range map[string]options{
		"no none":   {rounds: 1, n: map[string]int{"open": 1}, configs: []string{configVigil}},
		"unknown":   {rounds: 1, n: map[string]int{"open": 1}, configs: []string{configNone, "bogus"}},
		"mode":      {rounds: 1, n: map[string]int{"open": 1}, configs: []string{configNone}, mode: "slow"},
		"part":      {rounds: 1, n: map[string]int{"open": 1}, configs: []string{configNone}, parts: map[string]bool{"bogus": true}},
		"duplicate": {rounds: 1, n: map[string]int{"open": 1}, configs: []string{configNone, configNone}},
		"rounds":    {rounds: 0, n: map[string]int{"open": 1}, configs: []string{configNone}},
		"n":         {rounds: 1, n: map[string]int{"open": 0}, configs: []string{configNone}},
		"n-walk":    {rounds: 1, n: map[string]int{"walk": 0}, configs: []string{configNone}},
		"no work":   {rounds: 1, n: map[string]int{}, configs: []string{configNone}},
		"bad work":  {rounds: 1, n: map[string]int{"bogus": 1}, configs: []string{configNone}},
	} {
		if validate(o) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPerEventTable renders the per-event table from a JSON fixture in the shape the driver
// writes (quick.json's samples; the numbers are made up): ratios and ns per event against
// none, the sensor's CPU and the JSONL bytes per generated event as medians over the runs,
// generated, written, merged and lost summed.
func TestPerEventTable(t *testing.T) {
	b, err := os.ReadFile("testdata/perevent-report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	r.Summaries = summarize(r.Samples, r.Configs)
	md := r.markdown()
	for _, want := range []string{
		"| workload | variant | configuration | ratio | ns/event | added ns/event | sensor CPU ns/event | JSONL bytes/event | generated | written | merged | lost |",
		// 4,400 / 4,000; 4,400 / 1.01001; (4,400 − 4,000) / 1.01001.
		"| walk | untracked | floor | 1.100× | 4,356 | +396 | – | – | – | – | – | – |",
		"| walk | untracked | vigil | 1.105× | 4,376 | +416 | – | – | – | – | – | – |",
		// Bytes per event 600, 610, 590 over the rounds: median 600; CPU 2,000, 2,200, 2,100.
		"| walk | tracked | vigil | 1.300× | 5,277 | +1,218 | 2,100 | 600 | 333,306 | 333,321 | 0 | open 12 |",
		"| fan-out | untracked | floor | 1.010× | 60,600 | +600 | – | – | – | – | – | – |",
		"| fan-out | tracked | vigil | 1.126× | 68,000 | +7,600 | 40,000 | 500 | 11,000 | 11,008 | 0 | 0 |",
		"| walk ns/file | ovh | fan-out µs/process | ovh |",
		"| vigil, tracked | – | – | – | – | – | – | – | – | 5,330 (5,330–5,330) | +30.0% | 340.0 (340.0–340.0) | +12.6% |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"median_jsonl_bytes_per_event":600`, `"median_sensor_cpu_ns_per_event":2100`, `"merged":0`, `"lost":{"open":12}`, `"generated":333306`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("report JSON lacks %s", want)
		}
	}
}

// TestWorkDescs: every workload the driver runs has its descriptor (flags, tables, plot).
func TestWorkDescs(t *testing.T) {
	for _, w := range workloads {
		d, ok := workInfo[w]
		if !ok || d.name == "" || d.title == "" || d.run == "" || d.n < 1 || d.help == "" {
			t.Errorf("workload %s: descriptor %+v", w, d)
		}
	}
	if len(workInfo) != len(workloads) {
		t.Errorf("%d descriptors for %d workloads", len(workInfo), len(workloads))
	}
}
