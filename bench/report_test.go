package main

import (
	"math"
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
	got := compareCounts(map[string]int{"open": 1005, "exec": 1}, map[string]int{"open": 1000})
	if got != "exec 1 / 0, open 1,005 / 1,000" {
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
	} {
		if validate(o) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
