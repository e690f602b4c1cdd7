package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigil-sensor/vigil/sensor"
)

// Configurations: what runs beside the loadgen. New ones (auditd, throughput runs) are added
// here and in start (run_linux.go).
const (
	configNone  = "none"  // nothing: the reference every overhead is relative to
	configFloor = "floor" // empty programs on Vigil's hooks, attached by this process
	configVigil = "vigil" // vigil run, JSONL to a file
	// configVigilStdout is vigil run writing JSONL to standard output, which the driver sends
	// to /dev/null: it separates the JSONL file's cost from the rest of the sensor.
	configVigilStdout = "vigil-stdout"
	// configAuditd is auditd with rules equivalent to Vigil's hooks, for every process
	// (audit cannot follow a tree): -a always,exit -F arch=b64 -S openat,open,creat,openat2,
	// execve,connect. Installed by the bench if missing; the audit state is restored after.
	configAuditd = "auditd"
	// configVigilAudit is vigil run with its audit source (source: audit), where eBPF cannot
	// load: audit follows no tree in the kernel, so its rules select every exec and, per
	// followed process, opens, connects, forks and exits.
	configVigilAudit = "vigil-audit"
)

var (
	knownConfigs   = []string{configNone, configFloor, configVigil, configVigilStdout, configVigilAudit, configAuditd}
	defaultConfigs = []string{configNone, configFloor, configVigil}
	fullConfigs    = []string{configNone, configFloor, configVigil, configVigilAudit, configAuditd}
	// workloads are the loadgen's -work values, in report order: the tight loops, then the
	// floods (an rg-like walk of distinct files, a runner-like fan-out of short processes).
	workloads = []string{"open", "forkexec", "connect", "sendto", "walk", "fanout"}
)

// Variants: the loadgen as built (no agent tree) and a copy named like an agent, which the
// kernel roots a tracked tree at.
const (
	untracked = "untracked"
	tracked   = "tracked"
)

var variants = []string{untracked, tracked}

// fanoutParallel is the fan-out's processes at a time (loadgen -parallel).
const fanoutParallel = 8

// auditdDivisor: auditd runs 1/auditdDivisor of the operations of the other configurations
// (ns/op is per operation, so ratios are unaffected): 200k audited opens take ~20 s per run.
const auditdDivisor = 10

// Sensor settings: the small ring of the loss measurement, the bench's short correlator hold
// and the shipped one (see vigilConfig).
const (
	smallRingKB = 256
	benchHold   = 1
	shippedHold = 10
)

// defaultRingKB is the ring size vigil ships with (sensor/default.yaml).
var defaultRingKB = sensor.DefaultConfig().Kernel.RingBufferKB

// sample is one loadgen run.
type sample struct {
	Round   int     `json:"round"`
	Config  string  `json:"config"`
	Variant string  `json:"variant"`
	Work    string  `json:"work"`
	NsPerOp float64 `json:"ns_per_op"`
	// LoadgenCPUNsPerOp is the loadgen's own CPU time in the loop per operation: probes run
	// in its context, so this grows with their kernel cost, while wall time above it is
	// waiting for a CPU.
	LoadgenCPUNsPerOp float64 `json:"loadgen_cpu_ns_per_op"`
	// SensorCPUNsPerOp is the sensor process's CPU time (user+system, 10 ms resolution) from
	// the start of the run until it was idle again, per operation including the warm-up.
	SensorCPUNsPerOp float64 `json:"sensor_cpu_ns_per_op,omitempty"`
	// EventsPerOp is what one operation generates when tracked, from the loadgen's
	// construction (its events_expected / n): ns_per_op / EventsPerOp is the time per event.
	EventsPerOp float64 `json:"events_per_op"`
	// Events is what a sensor writing a JSONL file did with a tracked run's events.
	Events *runEvents `json:"events,omitempty"`
	// Foreign names the sensors the driver did not start that were running when the run
	// began (another vigil, an auditd): their hooks cost every configuration, none included.
	Foreign []string `json:"foreign_sensors,omitempty"`
}

// runEvents is one tracked run beside a sensor writing JSONL: the events the run generated
// (the loadgen's events_generated, warm-up included), the JSONL lines of its tree with those
// actions, what the kernel merged, the lost records written during the run, and the bytes
// the JSONL file grew by from the run's start until the sensor was idle after the hold.
type runEvents struct {
	Generated int `json:"generated"`
	Written   int `json:"written"`
	// Merged is the events the kernel merged into the lines Written counts, beyond the lines
	// themselves (a merged line stands for its vigil.merged.count opens), so Written + Merged
	// are the events written.
	Merged int               `json:"merged"`
	Lost   map[string]uint64 `json:"lost,omitempty"`
	Bytes  int64             `json:"jsonl_bytes"`
	// SensorCPUNsPerEvent is the sensor's CPU time charged to the run (see sample) over
	// Generated.
	SensorCPUNsPerEvent float64 `json:"sensor_cpu_ns_per_event"`
}

// eventCheck compares what one sensor instance wrote for each tracked loadgen run (matched
// by the tree's root pid) with what the loop should have produced (warm-up included). The
// loadgen process adds a few events of its own (exec, exit, Go runtime opens), so written is
// expected plus a small constant when nothing is lost.
type eventCheck struct {
	Round  int               `json:"round"`
	Config string            `json:"config"`
	Works  []workCheck       `json:"works"`
	Lost   map[string]uint64 `json:"lost,omitempty"`  // sums of the instance's lost records
	Other  map[string]int    `json:"other,omitempty"` // events of trees the benchmark did not start
}

type workCheck struct {
	Work     string         `json:"work"`
	Expected map[string]int `json:"expected"`
	Written  map[string]int `json:"written"`
	// Merged is per action the events merged lines stand for beyond the lines themselves
	// (vigil.merged.count less one a line).
	Merged map[string]int `json:"merged,omitempty"`
}

// summary is one configuration × variant × workload over all rounds.
type summary struct {
	Config  string  `json:"config"`
	Variant string  `json:"variant"`
	Work    string  `json:"work"`
	Runs    int     `json:"runs"`
	Median  float64 `json:"median_ns_per_op"`
	Min     float64 `json:"min_ns_per_op"`
	Max     float64 `json:"max_ns_per_op"`
	// LoadgenCPU is the median of the samples' LoadgenCPUNsPerOp.
	LoadgenCPU float64 `json:"median_loadgen_cpu_ns_per_op"`
	// SensorCPU is the median of the samples' SensorCPUNsPerOp (0 without a sensor process).
	SensorCPU float64 `json:"median_sensor_cpu_ns_per_op,omitempty"`
	// OverheadPct is (median − none's median) / none's median, same variant and workload.
	OverheadPct *float64 `json:"overhead_pct,omitempty"`
	// FloorDistancePP is OverheadPct minus the floor's, in percentage points (untracked
	// Vigil only): what Vigil's programs add on top of the hooks themselves.
	FloorDistancePP *float64 `json:"floor_distance_pp,omitempty"`
	// Per event (EventsPerOp from the loadgen's construction): Ratio is Median / none's
	// median, NsPerEvent is Median / EventsPerOp, AddedNsPerEvent (Median − none's median)
	// / EventsPerOp: the caller's overhead per event.
	EventsPerOp     float64  `json:"events_per_op"`
	Ratio           *float64 `json:"ratio,omitempty"`
	NsPerEvent      float64  `json:"median_ns_per_event"`
	AddedNsPerEvent *float64 `json:"added_ns_per_event,omitempty"`
	// Events sums the runs' event accounting (tracked runs beside a JSONL sensor); the
	// per-event CPU and bytes are medians over the runs.
	Events *eventTotals `json:"events,omitempty"`
}

// eventTotals: generated, written, merged and lost summed over a summary's runs; the
// sensor's CPU and the JSONL bytes per generated event are the medians of the runs' values.
type eventTotals struct {
	Runs                int               `json:"runs"`
	Generated           int               `json:"generated"`
	Written             int               `json:"written"`
	Merged              int               `json:"merged"`
	Lost                map[string]uint64 `json:"lost,omitempty"`
	SensorCPUNsPerEvent float64           `json:"median_sensor_cpu_ns_per_event"`
	BytesPerEvent       float64           `json:"median_jsonl_bytes_per_event"`
}

// machine describes where the numbers came from; they only compare within one run.
type machine struct {
	// Commit is git describe of the tree the measured binaries were built from (-dirty:
	// uncommitted changes); Settings what the sensor ran with.
	Commit   string `json:"commit"`
	Settings string `json:"settings"`
	Date     string `json:"date"`
	Nproc    int    `json:"nproc"`
	Kernel   string `json:"kernel"`
	CPU      string `json:"cpu"`
	Go       string `json:"go"`
	LoadAvg  string `json:"loadavg_at_start"`
}

// report is quick.json.
type report struct {
	Machine   machine        `json:"machine"`
	Rounds    int            `json:"rounds"`
	N         map[string]int `json:"n"`
	Configs   []string       `json:"configs"`
	Summaries []summary      `json:"summaries"`
	Checks    []eventCheck   `json:"event_checks,omitempty"`
	Samples   []sample       `json:"samples"`
}

// median of xs (the mean of the two middle values for an even count); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// summarize reduces samples to one summary per configuration × variant × workload, in the
// order of configs, variants and workloads.
func summarize(samples []sample, configs []string) []summary {
	type key struct{ config, variant, work string }
	groups, lcpu, cpu, epo := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	evs := map[key][]*runEvents{}
	for _, s := range samples {
		k := key{s.Config, s.Variant, s.Work}
		groups[k] = append(groups[k], s.NsPerOp)
		lcpu[k] = append(lcpu[k], s.LoadgenCPUNsPerOp)
		cpu[k] = append(cpu[k], s.SensorCPUNsPerOp)
		epo[k] = append(epo[k], s.EventsPerOp)
		if s.Events != nil {
			evs[k] = append(evs[k], s.Events)
		}
	}
	var out []summary
	for _, c := range configs {
		for _, v := range variants {
			for _, w := range workloads {
				xs := groups[key{c, v, w}]
				if len(xs) == 0 {
					continue
				}
				lo, hi := xs[0], xs[0]
				for _, x := range xs {
					lo, hi = math.Min(lo, x), math.Max(hi, x)
				}
				k := key{c, v, w}
				s := summary{Config: c, Variant: v, Work: w, Runs: len(xs), Median: median(xs), Min: lo, Max: hi,
					LoadgenCPU: median(lcpu[k]), SensorCPU: median(cpu[k]), EventsPerOp: median(epo[k]), Events: totalEvents(evs[k])}
				if s.EventsPerOp > 0 {
					s.NsPerEvent = s.Median / s.EventsPerOp
				}
				out = append(out, s)
			}
		}
	}
	find := func(c, v, w string) *summary {
		for i := range out {
			if out[i].Config == c && out[i].Variant == v && out[i].Work == w {
				return &out[i]
			}
		}
		return nil
	}
	for i := range out {
		s := &out[i]
		if base := find(configNone, s.Variant, s.Work); base != nil && s.Config != configNone && base.Median > 0 {
			pct := (s.Median - base.Median) / base.Median * 100
			ratio := s.Median / base.Median
			s.OverheadPct, s.Ratio = &pct, &ratio
			if s.EventsPerOp > 0 {
				added := (s.Median - base.Median) / s.EventsPerOp
				s.AddedNsPerEvent = &added
			}
		}
	}
	for i := range out {
		s := &out[i]
		if s.Variant != untracked || !strings.HasPrefix(s.Config, configVigil) || s.OverheadPct == nil {
			continue
		}
		if f := find(configFloor, untracked, s.Work); f != nil && f.OverheadPct != nil {
			pp := *s.OverheadPct - *f.OverheadPct
			s.FloorDistancePP = &pp
		}
	}
	return out
}

// totalEvents sums the runs' event accounting (nil without any).
func totalEvents(runs []*runEvents) *eventTotals {
	if len(runs) == 0 {
		return nil
	}
	t := &eventTotals{Runs: len(runs)}
	var cpu, bytes []float64
	for _, r := range runs {
		t.Generated += r.Generated
		t.Written += r.Written
		t.Merged += r.Merged
		for k, n := range r.Lost {
			if t.Lost == nil {
				t.Lost = map[string]uint64{}
			}
			t.Lost[k] += n
		}
		cpu = append(cpu, r.SensorCPUNsPerEvent)
		if r.Generated > 0 {
			bytes = append(bytes, float64(r.Bytes)/float64(r.Generated))
		}
	}
	t.SensorCPUNsPerEvent = median(cpu)
	if len(bytes) > 0 {
		t.BytesPerEvent = median(bytes)
	}
	return t
}

// workDesc is what the driver says about one loadgen -work: one entry per workload, read by
// the flags (-n-<work>), the tables, the plot and the sentences.
type workDesc struct {
	name  string // in tables and the plot
	title string // the side-by-side column, with its unit
	run   string // what one run does
	inNs  bool   // the column is in ns per operation (else µs: the slower loops)
	n     int    // default operations per run
	help  string // -n-<work>'s help
}

var workInfo = map[string]workDesc{
	"open":     {name: "open+close", title: "open+close ns/op", run: "open+close", inNs: true, n: 200000, help: "open+close operations per run"},
	"forkexec": {name: "fork+exec", title: "fork+exec µs/op", run: "fork+exec of /bin/true", n: 1000, help: "fork+exec operations per run"},
	"connect":  {name: "connect", title: "connect µs/op", run: "loopback connects", n: 10000, help: "connect operations per run"},
	"sendto": {name: "sendto+recv", title: "sendto+recv ns/op", run: "loopback UDP sendto+recvfrom (no connect)", inNs: true, n: 100000,
		help: "UDP sendto+recvfrom operations per run"},
	"walk": {name: "walk", title: "walk ns/file", inNs: true, n: 100000, help: "walk: distinct files opened per run",
		run: "distinct files read by an rg-like walk (getdents64 per directory; openat, fstat, read, close per file; 100 files a directory)"},
	"fanout": {name: "fan-out", title: "fan-out µs/process", n: 2000, help: fmt.Sprintf("fan-out: processes per run (%d at a time)", fanoutParallel),
		run: fmt.Sprintf("processes of /bin/true fanned out %d at a time", fanoutParallel)},
}

// measured are the workloads this run measured, in report order. The tables keep a column
// for every workload ("–" where a run has none); the sentences and the plot name only these,
// so a run made before a workload existed does not read as having measured it.
func (r report) measured() []string {
	var out []string
	for _, w := range workloads {
		if r.N[w] > 0 {
			out = append(out, w)
		}
	}
	return out
}

func formatOp(work string, ns float64) string {
	if workInfo[work].inNs {
		return thousands(ns)
	}
	return fmt.Sprintf("%.1f", ns/1000)
}

// thousands formats a non-negative value rounded to an integer with comma separators.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func signedPct(p *float64, unit string) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%+.1f%s", *p, unit)
}

// markdown renders quick.md: the machine, the table, the floor distances and the event checks.
func (r report) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# Vigil overhead — quick run\n\n")
	fmt.Fprintf(&b, "Machine: %d vCPU (%s), kernel %s, %s; load average at start %s. Date %s.\n\n", m.Nproc, m.CPU, m.Kernel, m.Go, m.LoadAvg, m.Date)
	fmt.Fprintf(&b, "Measured: commit `%s`; %s.\n\n", m.Commit, m.Settings)
	works := r.measured()
	perRun := make([]string, len(works))
	for i, w := range works {
		perRun[i] = thousands(float64(r.N[w])) + " " + workInfo[w].run
	}
	fmt.Fprintf(&b, "%d interleaved rounds (configuration order rotated each round); per run: %s, each after a warm-up of a tenth as many. ",
		r.Rounds, strings.Join(perRun, ", "))
	fmt.Fprintf(&b, "Cells: median (min–max) over the rounds; ovh = median vs `none` of the same variant in this run. Untracked = the loadgen as built; tracked = a copy named `claude`, which Vigil follows.\n\n")

	b.WriteString("| configuration |")
	for _, w := range workloads {
		fmt.Fprintf(&b, " %s | ovh |", workInfo[w].title)
	}
	b.WriteString("\n|---|")
	for range workloads {
		b.WriteString("---|---|")
	}
	b.WriteString("\n")
	for _, c := range r.Configs {
		for _, v := range variants {
			row := map[string]summary{}
			for _, s := range r.Summaries {
				if s.Config == c && s.Variant == v {
					row[s.Work] = s
				}
			}
			if len(row) == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s, %s |", c, v)
			for _, w := range workloads {
				s, ok := row[w]
				if !ok {
					b.WriteString(" – | – |")
					continue
				}
				fmt.Fprintf(&b, " %s (%s–%s) | %s |", formatOp(w, s.Median), formatOp(w, s.Min), formatOp(w, s.Max), signedPct(s.OverheadPct, "%"))
			}
			b.WriteString("\n")
		}
	}

	b.WriteString("\nCPU time per operation, ns, median: the loadgen's own (user+system in its loop; probes run in its context, so this is where their kernel cost shows, while wall time above it is waiting for a CPU) / the sensor process's (user+system from the run's start until it is idle again, backlog included; 10 ms resolution):\n\n")
	b.WriteString("| configuration |")
	for _, w := range workloads {
		fmt.Fprintf(&b, " %s |", workInfo[w].name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(workloads)) + "\n")
	for _, c := range r.Configs {
		for _, v := range variants {
			cells := make([]string, 0, len(workloads))
			for _, w := range workloads {
				cell := "–"
				for _, s := range r.Summaries {
					if s.Config == c && s.Variant == v && s.Work == w {
						cell = thousands(s.LoadgenCPU)
						if s.SensorCPU > 0 {
							cell += " / " + thousands(s.SensorCPU)
						}
					}
				}
				cells = append(cells, cell)
			}
			fmt.Fprintf(&b, "| %s, %s | %s |\n", c, v, strings.Join(cells, " | "))
		}
	}

	var dist []string
	for _, s := range r.Summaries {
		if s.FloorDistancePP != nil {
			dist = append(dist, fmt.Sprintf("%s %s: %s", s.Config, s.Work, signedPct(s.FloorDistancePP, " pp")))
		}
	}
	if len(dist) > 0 {
		fmt.Fprintf(&b, "\nUntracked distance to the floor (overhead minus the floor's overhead, percentage points): %s.\n", strings.Join(dist, "; "))
	}

	foreign, runs := 0, map[string]bool{}
	for _, s := range r.Samples {
		if len(s.Foreign) > 0 {
			foreign++
			for _, f := range s.Foreign {
				runs[strings.SplitN(f, "[", 2)[0]] = true
			}
		}
	}
	if foreign > 0 {
		names := make([]string, 0, len(runs))
		for n := range runs {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "\n**Another sensor was running during %d of %d runs** (%s, not started by the bench: another session's tests): its hooks cost every configuration alike, `none` included, which narrows the ratios; treat this run's overheads as lower bounds and its spreads as wider.\n", foreign, len(r.Samples), strings.Join(names, ", "))
	}

	r.perEvent(&b, works)

	if len(r.Checks) > 0 {
		b.WriteString("\n## Events written by Vigil for the tracked runs (sanity check, not asserted)\n\n")
		b.WriteString("Written / expected per event.action, summed over the rounds. Expected counts the loop and its warm-up only; each loadgen process also adds its own exec and exit and about 5–8 opens (Go runtime start-up, temp file set-up), see README.\n\n")
		b.WriteString("| configuration | workload | written / expected |\n|---|---|---|\n")
		// One sensor run covers all of a round's workloads, so its lost records are summed per
		// configuration, below the table.
		lostBy := map[string]map[string]uint64{}
		for _, c := range r.Configs {
			for _, ch := range r.Checks {
				if ch.Config != c {
					continue
				}
				if lostBy[c] == nil {
					lostBy[c] = map[string]uint64{}
				}
				for k, n := range ch.Lost {
					lostBy[c][k] += n
				}
			}
			for _, w := range works {
				written, merged, expected := map[string]int{}, map[string]int{}, map[string]int{}
				found := false
				for _, ch := range r.Checks {
					if ch.Config != c {
						continue
					}
					for _, wc := range ch.Works {
						if wc.Work != w {
							continue
						}
						found = true
						for a, n := range wc.Written {
							written[a] += n
						}
						for a, n := range wc.Merged {
							merged[a] += n
						}
						for a, n := range wc.Expected {
							expected[a] += n
						}
					}
				}
				if found {
					fmt.Fprintf(&b, "| %s | %s | %s |\n", c, w, compareCounts(written, merged, expected))
				}
			}
		}
		b.WriteString("\n")
		for _, c := range r.Configs {
			if lost, ok := lostBy[c]; ok {
				fmt.Fprintf(&b, "Lost records reported by %s over its runs (each covering a round's %d workloads): %s.\n", c, len(works), formatLost(lost))
			}
		}
	}
	return b.String()
}

// perEvent renders the per-event table: for each workload, variant and configuration, the
// caller's overhead as a ratio and in ns per event, and for tracked runs beside a sensor
// writing JSONL the sensor's CPU and the JSONL bytes per generated event and the events
// generated, written, merged and lost. Reports from before the loadgen said its events per
// operation have no such table.
func (r report) perEvent(b *strings.Builder, works []string) {
	var rows []string
	for _, w := range works {
		for _, v := range variants {
			for _, c := range r.Configs {
				s := r.find(c, v, w)
				if c == configNone || s == nil || s.EventsPerOp <= 0 {
					continue
				}
				ratio, added := "–", "–"
				if s.Ratio != nil {
					ratio = fmt.Sprintf("%.3f×", *s.Ratio)
				}
				if s.AddedNsPerEvent != nil {
					added = signedInt(*s.AddedNsPerEvent)
				}
				cpu, bytes, gen, written, merged, lost := "–", "–", "–", "–", "–", "–"
				if e := s.Events; e != nil {
					cpu, bytes = thousands(e.SensorCPUNsPerEvent), fmt.Sprintf("%.0f", e.BytesPerEvent)
					gen, written, merged = thousands(float64(e.Generated)), thousands(float64(e.Written)), thousands(float64(e.Merged))
					lost = formatCounts(e.Lost)
					if len(e.Lost) == 0 {
						lost = "0"
					}
				}
				rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", workInfo[w].name, v, c, ratio,
					thousands(s.NsPerEvent), added, cpu, bytes, gen, written, merged, lost))
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## Per event: the caller's overhead, the sensor's cost, what was written\n\n")
	b.WriteString("Events per operation come from the loadgen's construction (walk: each file and each directory it opens; fan-out: fork, exec, exit and the 2 loader opens of each /bin/true). " +
		"ratio = median ns/op / `none`'s median, same variant; ns/event = median ns/op / events per op; added = (median − `none`'s median) / events per op. " +
		"For tracked runs beside a sensor writing JSONL (summed over the rounds): generated = the loadgen's events, warm-up included; written = JSONL lines of the run's tree (its root pid) with those actions (the loadgen's own exec, exit and Go runtime opens come on top); " +
		"merged = the events those lines stand for beyond themselves (a merged line stands for its vigil.merged.count repeated identical opens the kernel merged), so written + merged are the events written; lost = the lost records written during the run, by kind; sensor CPU/event = the sensor's CPU from the run's start until it is idle after the hold / generated (median of runs); " +
		"bytes/event = growth of the JSONL files (the events file and the flood file) over the same span / generated (median of runs).\n\n")
	b.WriteString("| workload | variant | configuration | ratio | ns/event | added ns/event | sensor CPU ns/event | JSONL bytes/event | generated | written | merged | lost |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n")
}

// compareCounts renders "open 220,008 / 220,000, exec 1 / 0" in a stable order.
func compareCounts(written, merged, expected map[string]int) string {
	actions := map[string]bool{}
	for a := range written {
		actions[a] = true
	}
	for a := range expected {
		actions[a] = true
	}
	keys := make([]string, 0, len(actions))
	for a := range actions {
		keys = append(keys, a)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, a := range keys {
		w := thousands(float64(written[a]))
		if merged[a] > 0 {
			w += " + " + thousands(float64(merged[a])) + " merged"
		}
		parts = append(parts, fmt.Sprintf("%s %s / %s", a, w, thousands(float64(expected[a]))))
	}
	return strings.Join(parts, ", ")
}

// formatLost renders the lost counters, or "none" (the lost records are per sensor
// instance, which covers all four workloads of a round).
func formatLost(lost map[string]uint64) string {
	if len(lost) == 0 {
		return "none"
	}
	return formatCounts(lost)
}

// formatCounts renders counters as "name N, name N" in name order.
func formatCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, thousands(float64(m[k]))))
	}
	return strings.Join(parts, ", ")
}

// rotate returns configs started at offset round: each configuration takes every position
// in turn, so none of them always runs first (cold caches) or right after a heavy one.
func rotate(configs []string, round int) []string {
	k := round % len(configs)
	return append(append([]string(nil), configs[k:]...), configs[:k]...)
}

// writeResults creates dir, writes v as name.json and md as name.md into it, and prints md:
// every mode's report is written this way.
func writeResults(dir, name string, v any, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s.json: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s.json: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("write %s.md: %w", name, err)
	}
	fmt.Print("\n" + md)
	return nil
}
