package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// fullReport is full.json: every part that ran, the goals of issue 5 and notes.
type fullReport struct {
	Machine      machine           `json:"machine"`
	LoadAvgAtEnd string            `json:"loadavg_at_end"`
	Side         *report           `json:"side_by_side,omitempty"`
	VsAuditd     []auditdRatio     `json:"vigil_vs_auditd,omitempty"`
	Throughput   *throughputReport `json:"throughput,omitempty"`
	Correlator   *correlatorReport `json:"correlator,omitempty"`
	Sensor       *sensorCost       `json:"sensor,omitempty"`
	Agent        *agentReport      `json:"real_agent,omitempty"`
	Goals        []goal            `json:"goals"`
	Notes        []string          `json:"notes,omitempty"`
}

// auditdRatio compares the time each adds to one operation: (auditd − none) / (vigil − none),
// medians of the same run. Times is 0 when Vigil's added time is within noise (≤ 0).
type auditdRatio struct {
	Variant      string  `json:"variant"`
	Work         string  `json:"work"`
	VigilAddedNs float64 `json:"vigil_added_ns_per_op"`
	AudAddedNs   float64 `json:"auditd_added_ns_per_op"`
	Times        float64 `json:"times"`
}

type throughputReport struct {
	BurstSeconds float64 `json:"burst_seconds"`
	Hold         int     `json:"hold_seconds"`
	// NoSensor is the generator's rate untracked with no sensor: the machine's maximum.
	NoSensor []noSensorRate `json:"no_sensor"`
	Bursts   []burstRun     `json:"full_speed"`
	Steps    []burstRun     `json:"rate_steps"`
	MaxClean []maxClean     `json:"max_rate_without_loss"`
}

type noSensorRate struct {
	Threads int     `json:"threads"`
	Rate    float64 `json:"opens_per_sec"`
}

// burstRun is one tracked generator run beside its own sensor instance.
type burstRun struct {
	RingKB    int     `json:"ring_kb"`
	Threads   int     `json:"threads"`
	Rate      float64 `json:"rate_requested"` // 0: full speed
	Seconds   float64 `json:"seconds"`
	Generated int64   `json:"generated"` // ground truth: opens the generator made
	GenRate   float64 `json:"generated_per_sec"`
	Written   int     `json:"written"` // JSONL open lines of the generator's file
	// Lost sums the sensor's lost records (counted in the kernel on ring-buffer reserve
	// failure, per kind); Unaccounted is generated − written − lost opens (should be 0).
	Lost         map[string]uint64 `json:"lost"`
	Unaccounted  int64             `json:"unaccounted"`
	LossPct      float64           `json:"loss_pct"`
	SensorCPUPct float64           `json:"sensor_cpu_pct"`
}

func (b burstRun) lossy() bool { return int64(b.Written) < b.Generated || b.Lost["open"] > 0 }

type maxClean struct {
	RingKB    int     `json:"ring_kb"`
	Threads   int     `json:"threads"`
	Rate      float64 `json:"rate"`       // highest achieved rate with nothing lost
	LossAbove float64 `json:"loss_above"` // lowest requested rate that lost (0: none did)
}

type sensorCost struct {
	StartWallMs []float64   `json:"start_wall_ms"` // exec to the "vigil running" line
	ReadyMs     []float64   `json:"ready_ms"`      // the sensor's own ready= value
	IdleSeconds float64     `json:"idle_seconds"`
	Hold        int         `json:"hold_seconds"`
	Idle        phaseCost   `json:"idle"`
	Load        []phaseCost `json:"load"`
}

type phaseCost struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"opens_per_sec,omitempty"`
	Events  int64   `json:"events,omitempty"`
	// CPUPct is the sensor's user+system CPU over the phase (load: while the generator ran)
	// as a percentage of one CPU; CPUNsPerEvent charges it until the sensor is idle again.
	CPUPct        float64 `json:"cpu_pct"`
	CPUNsPerEvent float64 `json:"cpu_ns_per_event,omitempty"`
	RSSMiB        float64 `json:"rss_median_mib"`
	RSSMaxMiB     float64 `json:"rss_max_mib"`
	HWMMiB        float64 `json:"vm_hwm_mib"`
	RSSAfterMiB   float64 `json:"rss_after_mib,omitempty"`
}

// goal is one line of issue 5's goals.
type goal struct {
	Goal   string `json:"goal"`
	Result string `json:"result"`
	Met    string `json:"met"` // yes, no, n/a
}

func metStr(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func (r *report) find(c, v, w string) *summary {
	if r == nil {
		return nil
	}
	for i := range r.Summaries {
		s := &r.Summaries[i]
		if s.Config == c && s.Variant == v && s.Work == w {
			return s
		}
	}
	return nil
}

// finish computes the auditd ratios and the goals from what ran.
func (r *fullReport) finish() {
	r.VsAuditd = nil
	if r.Side != nil {
		for _, v := range variants {
			for _, w := range workloads {
				none, vig, aud := r.Side.find(configNone, v, w), r.Side.find(configVigil, v, w), r.Side.find(configAuditd, v, w)
				if none == nil || vig == nil || aud == nil {
					continue
				}
				a := auditdRatio{Variant: v, Work: w, VigilAddedNs: vig.Median - none.Median, AudAddedNs: aud.Median - none.Median}
				if a.VigilAddedNs > 0 {
					a.Times = a.AudAddedNs / a.VigilAddedNs
				}
				r.VsAuditd = append(r.VsAuditd, a)
			}
		}
	}
	var g []goal
	if r.Side != nil {
		var parts []string
		ok := true
		for _, w := range workloads {
			if s := r.Side.find(configVigil, untracked, w); s != nil && s.FloorDistancePP != nil {
				parts = append(parts, fmt.Sprintf("%s %+.1f pp", w, *s.FloorDistancePP))
				ok = ok && *s.FloorDistancePP <= 2
			}
		}
		if len(parts) > 0 {
			g = append(g, goal{"untracked overhead ≤ floor + 2 points", "distance to the floor: " + strings.Join(parts, ", "), metStr(ok)})
		}
		if s := r.Side.find(configVigil, tracked, "open"); s != nil && s.OverheadPct != nil {
			res := fmt.Sprintf("%+.1f%%", *s.OverheadPct)
			if *s.OverheadPct > 35 {
				res += fmt.Sprintf(" (%.1f points over)", *s.OverheadPct-35)
			}
			g = append(g, goal{"tracked open+close ≤ +35%", res, metStr(*s.OverheadPct <= 35)})
		}
	}
	if len(r.VsAuditd) > 0 {
		var parts []string
		ok := true
		for _, a := range r.VsAuditd {
			if a.Work != "open" {
				continue
			}
			if a.Times == 0 {
				parts = append(parts, fmt.Sprintf("%s open: Vigil adds nothing measurable, auditd %s ns", a.Variant, thousands(a.AudAddedNs)))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s open: %.1f×", a.Variant, a.Times))
			ok = ok && a.Times >= 50
		}
		g = append(g, goal{"≥ 50× less overhead than auditd (added ns per open+close)", strings.Join(parts, "; "), metStr(ok)})
	}
	if t := r.Throughput; t != nil {
		var parts []string
		ok := true
		for _, b := range t.Bursts {
			if b.RingKB != defaultRingKB {
				continue
			}
			parts = append(parts, fmt.Sprintf("%d thread(s) %s/s: %.2f%% lost", b.Threads, thousands(b.GenRate), b.LossPct))
			ok = ok && !b.lossy()
		}
		for _, m := range t.MaxClean {
			if m.RingKB == defaultRingKB {
				parts = append(parts, fmt.Sprintf("highest clean rate %s/s", thousands(m.Rate)))
			}
		}
		g = append(g, goal{fmt.Sprintf("0 loss up to the machine's max rate (default %d MiB ring)", defaultRingKB>>10), strings.Join(parts, "; "), metStr(ok)})
	}
	if c := r.Correlator; c != nil && len(c.Runs) > 0 {
		lo := math.Inf(1)
		var parts []string
		for _, run := range c.Runs {
			lo = math.Min(lo, run.EventsPerSec)
			parts = append(parts, fmt.Sprintf("%d sessions %s/s", run.Sessions, thousands(run.EventsPerSec)))
		}
		g = append(g, goal{"correlator ≥ 250k events/s on one core", strings.Join(parts, ", "), metStr(lo >= 250_000)})
	}
	if s := r.Sensor; s != nil {
		hwm := s.Idle.HWMMiB
		parts := []string{fmt.Sprintf("idle %.1f MiB", s.Idle.RSSMaxMiB)}
		for _, l := range s.Load {
			hwm = math.Max(hwm, l.HWMMiB)
			parts = append(parts, fmt.Sprintf("%s: max %.1f MiB", l.Name, l.RSSMaxMiB))
		}
		parts = append(parts, fmt.Sprintf("VmHWM %.1f MiB", hwm))
		g = append(g, goal{"RSS ≤ 64 MiB", strings.Join(parts, "; "), metStr(hwm <= 64)})
		if len(s.ReadyMs) > 0 {
			m := median(s.ReadyMs)
			g = append(g, goal{"ready ≤ 250 ms", fmt.Sprintf("ready= median %.0f ms (%.0f–%.0f); exec to log line %.0f ms", m, minOf(s.ReadyMs), maxOf(s.ReadyMs), median(s.StartWallMs)), metStr(m <= 250)})
		}
	}
	if r.Agent != nil {
		r.Agent.finish()
	}
	g = append(g, r.Agent.goal())
	r.Goals = g
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func minOf(xs []float64) float64 {
	m := math.Inf(1)
	for _, x := range xs {
		m = math.Min(m, x)
	}
	return m
}

// markdown renders full.md.
func (r fullReport) markdown() string {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# Vigil under load — full benchmark\n\n")
	fmt.Fprintf(&b, "Machine: %d vCPU (%s), kernel %s, %s. Load average at start %s, at end %s. Date %s. Method and how to read this: bench/README.md.\n\n",
		m.Nproc, m.CPU, m.Kernel, m.Go, m.LoadAvg, r.LoadAvgAtEnd, m.Date)
	fmt.Fprintf(&b, "Measured: commit `%s`; %s.\n\n", m.Commit, m.Settings)
	b.WriteString("## Goals (issue 5)\n\n| goal | result | met |\n|---|---|---|\n")
	for _, g := range r.Goals {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", g.Goal, g.Result, g.Met)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nParts that failed:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "* %s\n", n)
		}
	}
	if r.Side != nil {
		b.WriteString("\n## 1. Overhead side by side\n\n![overhead per configuration](full.png)\n\n")
		side := r.Side.markdown()
		// Drop quick.md's title, machine and measured lines: they are above.
		if i := strings.Index(side, "\n\n"); i >= 0 {
			side = side[i+2:]
			for _, head := range []string{"Machine:", "Measured:"} {
				if j := strings.Index(side, "\n\n"); j >= 0 && strings.HasPrefix(side, head) {
					side = side[j+2:]
				}
			}
		}
		b.WriteString(strings.ReplaceAll(side, "\n## ", "\n### "))
		if slices.Contains(r.Side.Configs, configAuditd) {
			fmt.Fprintf(&b, "\nauditd and vigil-audit run 1/%d of the operations per run (audited opens cost tens of µs each); ns/op and ratios are per operation, so they compare directly. The audit state is read before (`auditctl -s`, `-l`) and restored after every auditd round (rule deleted by key, daemon stopped, enabled and backlog settings put back).\n", auditdDivisor)
		}
		if len(r.VsAuditd) > 0 {
			b.WriteString("\n### Vigil vs auditd\n\nTime each adds to one operation (median − none's median, same variant), and auditd's added time over Vigil's. auditd's rule covers every process (audit cannot follow a tree), so its untracked and tracked rows pay the same; Vigil pays only for tracked trees.\n\n")
			b.WriteString("| variant | workload | Vigil adds | auditd adds | auditd / Vigil |\n|---|---|---|---|---|\n")
			for _, a := range r.VsAuditd {
				times := "Vigil within noise"
				if a.Times > 0 {
					times = fmt.Sprintf("%.1f×", a.Times)
				}
				fmt.Fprintf(&b, "| %s | %s | %s ns | %s ns | %s |\n", a.Variant, a.Work, signedInt(a.VigilAddedNs), signedInt(a.AudAddedNs), times)
			}
		}
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(&b, "\n## 2. Throughput and loss\n\nA tracked generator (a copy of loadgen named `claude`) opening one file on T threads for %.0f s beside a fresh `vigil run` (hold %d s); generated = opens it made (ground truth), written = JSONL open lines of that file, lost = the sensor's lost records (counted in the kernel when the ring is full), unaccounted = generated − written − lost.\n\n", t.BurstSeconds, t.Hold)
		if len(t.NoSensor) > 0 {
			b.WriteString("The machine's own maximum (the generator untracked, no sensor): ")
			var parts []string
			for _, n := range t.NoSensor {
				parts = append(parts, fmt.Sprintf("%d thread(s) %s opens/s", n.Threads, thousands(n.Rate)))
			}
			b.WriteString(strings.Join(parts, ", ") + ".\n\n")
		}
		b.WriteString("| ring | threads | requested | generated | rate/s | written | lost | unaccounted | loss | sensor CPU |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, x := range append(append([]burstRun(nil), t.Bursts...), t.Steps...) {
			req := "full speed"
			if x.Rate > 0 {
				req = thousands(x.Rate) + "/s"
			}
			fmt.Fprintf(&b, "| %d KiB | %d | %s | %s | %s | %s | %s | %d | %.2f%% | %.0f%% |\n", x.RingKB, x.Threads, req, thousands(float64(x.Generated)),
				thousands(x.GenRate), thousands(float64(x.Written)), formatLost(x.Lost), x.Unaccounted, x.LossPct, x.SensorCPUPct)
		}
		b.WriteString("\nHighest rate without loss (rate-limited generator on 2 threads, doubling from 25k/s, then two bisection steps):\n\n")
		for _, m := range t.MaxClean {
			fmt.Fprintf(&b, "* %d KiB ring: %s opens/s", m.RingKB, thousands(m.Rate))
			if m.LossAbove > 0 {
				fmt.Fprintf(&b, " (loss at %s/s requested)", thousands(m.LossAbove))
			} else {
				b.WriteString(" (no step lost: this is as fast as the generator went)")
			}
			b.WriteString("\n")
		}
	}
	if c := r.Correlator; c != nil {
		pin := "GOMAXPROCS=1"
		if c.Pinned {
			pin += ", pinned to one CPU with taskset"
		}
		fmt.Fprintf(&b, "\n## 3. Correlator\n\nA replay through `correlate.Stitcher` alone (%s): the %d real OTLP payloads of correlate/testdata (Claude Code: one prompt, Bash/Read/Write/Edit; Codex: exec_command, apply_patch) replayed as turns of many sessions with fresh ids (Claude and Codex sessions alternate), plus %d synthetic kernel events per turn shaped like the sample runs (a shell per command call with the agent's join keys and its children's opens, the agent's own opens of the paths its file tools name, opens no call explains). Timed: AddTelemetry, Push and Release per turn; heap: live heap after GC with the stitcher alive, minus before.\n\n",
			pin, c.Payloads, c.EventsPerTurn)
		b.WriteString("| sessions | turns each | kernel events | telemetry records | kernel events/s | heap after GC | per session | bindings |\n|---|---|---|---|---|---|---|---|\n")
		for _, x := range c.Runs {
			fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %.2f MiB | %s KiB | %s |\n", x.Sessions, x.Turns, thousands(float64(x.KernelEvents)), thousands(float64(x.TelemetryEvents)),
				thousands(x.EventsPerSec), float64(x.HeapBytes)/(1<<20), thousands(float64(x.HeapBytes)/1024/float64(x.Sessions)), formatCounts(x.Bindings))
		}
	}
	if s := r.Sensor; s != nil {
		fmt.Fprintf(&b, "\n## 4. Sensor cost\n\n`vigil run` with the shipped configuration (hold %d s; only the JSONL path and the OTLP ports differ). RSS from /proc/<pid>/status (VmRSS sampled, VmHWM the peak), CPU from /proc/<pid>/stat utime+stime, as %% of one CPU.\n\n", s.Hold)
		fmt.Fprintf(&b, "Start-up (%d starts): ready= (the sensor's own: probes attached, bootstrap done) median %.0f ms (%.0f–%.0f); exec to the \"vigil running\" line median %.0f ms (%.0f–%.0f).\n\n",
			len(s.StartWallMs), median(s.ReadyMs), minOf(s.ReadyMs), maxOf(s.ReadyMs), median(s.StartWallMs), minOf(s.StartWallMs), maxOf(s.StartWallMs))
		b.WriteString("| phase | opens/s | CPU | CPU per event (until written) | RSS median | RSS max | VmHWM | RSS after |\n|---|---|---|---|---|---|---|---|\n")
		for _, p := range append([]phaseCost{s.Idle}, s.Load...) {
			rate, per, after := "–", "–", "–"
			if p.Rate > 0 {
				rate = thousands(p.Rate)
				per = thousands(p.CPUNsPerEvent) + " ns"
				after = fmt.Sprintf("%.1f MiB", p.RSSAfterMiB)
			}
			fmt.Fprintf(&b, "| %s (%.0f s) | %s | %.1f%% | %s | %.1f MiB | %.1f MiB | %.1f MiB | %s |\n", p.Name, p.Seconds, rate, p.CPUPct, per, p.RSSMiB, p.RSSMaxMiB, p.HWMMiB, after)
		}
	}
	b.WriteString("\n" + r.Agent.markdown("## 5. Real agent"))
	return b.String()
}

func signedInt(x float64) string {
	if x < 0 {
		return "−" + thousands(-x)
	}
	return "+" + thousands(x)
}

// writeFull writes full.json, full.md and full.png into dir.
func writeFull(r fullReport, dir string) error {
	if err := writeResults(dir, "full", r, r.markdown()); err != nil {
		return err
	}
	if r.Side != nil {
		if err := plotOverhead(r.Side, filepath.Join(dir, "full.png")); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	return nil
}

// rerender rewrites full.md and full.png from a full.json (after a change to the rendering;
// the goals are recomputed from the numbers).
func rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r fullReport
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r.finish()
	return writeFull(r, filepath.Dir(path))
}
