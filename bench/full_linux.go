package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runFull runs the parts of the full benchmark in order, the side by side first (the most
// sensitive to other load), and writes full.md, full.json and full.png. A part that fails is
// reported in the notes; the others still run.
func runFull(o options, dir string) error {
	rep := fullReport{Machine: describeMachine()}
	fmt.Printf("bench: full run, parts %s; load average %s\n", strings.Join(selectedParts(o), ", "), rep.Machine.LoadAvg)
	trackedBin, err := copyExecutable(o.loadgen, filepath.Join(dir, "agent", trackedName))
	if err != nil {
		return fmt.Errorf("make the tracked loadgen copy: %w", err)
	}
	note := func(part string, err error) {
		msg := fmt.Sprintf("%s: %v", part, err)
		fmt.Fprintln(os.Stderr, "bench:", msg)
		rep.Notes = append(rep.Notes, msg)
	}
	if o.parts[partSide] {
		side, err := sideBySide(o, dir)
		if err != nil {
			return err // the headline numbers: no report without them
		}
		rep.Side = &side
	}
	if o.parts[partThroughput] {
		fmt.Println("bench: throughput and loss")
		waitQuiet()
		if tp, err := throughputPart(o, dir, trackedBin); err != nil {
			note(partThroughput, err)
		} else {
			rep.Throughput = tp
		}
	}
	if o.parts[partCorrelator] {
		fmt.Println("bench: correlator replay on one core")
		if cr, err := correlatorPart(o); err != nil {
			note(partCorrelator, err)
		} else {
			rep.Correlator = cr
		}
	}
	if o.parts[partSensor] {
		fmt.Println("bench: sensor cost (RSS, CPU, start-up)")
		waitQuiet()
		if sc, err := sensorPart(o, dir, trackedBin); err != nil {
			note(partSensor, err)
		} else {
			rep.Sensor = sc
		}
	}
	if o.parts[partAgent] {
		fmt.Println("bench: real agent (Claude Code, bench/e2e) with and without Vigil")
		if a, err := agentPart(o, dir); err != nil {
			note(partAgent, err)
		} else {
			rep.Agent = a
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			rep.LoadAvgAtEnd = strings.Join(f[:3], " ")
		}
	}
	rep.finish()
	return writeFull(rep, o.out)
}

func selectedParts(o options) []string {
	var out []string
	for _, p := range allParts {
		if o.parts[p] {
			out = append(out, p)
		}
	}
	return out
}

// ---- throughput and loss ----

// throughputPart: for the default and the small ring, a tracked generator at full speed on
// 1, 2 and 4 threads, then a rate-limited one stepping up (2 threads) to find the highest
// rate written without loss. Each run has its own sensor instance, so every lost count
// belongs to it.
func throughputPart(o options, dir, trackedBin string) (*throughputReport, error) {
	tp := &throughputReport{BurstSeconds: o.burst.Seconds(), Hold: benchHold}
	// The machine's own maximum: the generator untracked, no sensor.
	for _, threads := range []int{1, 2, 4} {
		out, err := exec.Command(o.loadgen, "-work", "open", "-duration", o.burst.String(), "-threads", strconv.Itoa(threads)).Output()
		if err != nil {
			return tp, fmt.Errorf("generator without sensor: %w", err)
		}
		var res struct {
			OpsPerSec float64 `json:"ops_per_sec"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return tp, fmt.Errorf("generator output %q: %w", out, err)
		}
		tp.NoSensor = append(tp.NoSensor, noSensorRate{Threads: threads, Rate: res.OpsPerSec})
		fmt.Printf("[throughput] no sensor, %d thread(s): %.0f opens/s\n", threads, res.OpsPerSec)
	}
	for _, ring := range []int{defaultRingKB, smallRingKB} {
		for _, threads := range []int{1, 2, 4} {
			b, err := burst(o, dir, trackedBin, ring, threads, 0)
			if err != nil {
				return tp, err
			}
			tp.Bursts = append(tp.Bursts, b)
		}
		// Rate search: double until a step loses or the generator cannot reach the rate,
		// then bisect twice between the last clean step and the first lossy one.
		const threads = 2
		good, bad := 0.0, 0.0
		for rate := 25_000.0; ; rate *= 2 {
			b, err := burst(o, dir, trackedBin, ring, threads, rate)
			if err != nil {
				return tp, err
			}
			tp.Steps = append(tp.Steps, b)
			if b.lossy() {
				bad = rate
				break
			}
			good = b.GenRate
			if b.GenRate < 0.9*rate {
				break // the machine's maximum: nothing was lost at it
			}
		}
		for i := 0; i < 2 && bad > 0; i++ {
			mid := (good + bad) / 2
			b, err := burst(o, dir, trackedBin, ring, threads, mid)
			if err != nil {
				return tp, err
			}
			tp.Steps = append(tp.Steps, b)
			if b.lossy() {
				bad = mid
			} else {
				good = b.GenRate
			}
		}
		tp.MaxClean = append(tp.MaxClean, maxClean{RingKB: ring, Threads: threads, Rate: good, LossAbove: bad})
		fmt.Printf("[throughput] ring %d KiB: highest rate without loss %.0f opens/s", ring, good)
		if bad > 0 {
			fmt.Printf(" (loss at %.0f/s requested)", bad)
		}
		fmt.Println()
	}
	return tp, nil
}

// burst runs one tracked generator beside a fresh sensor and counts what it wrote.
func burst(o options, dir, trackedBin string, ringKB, threads int, rate float64) (burstRun, error) {
	b := burstRun{RingKB: ringKB, Threads: threads, Rate: rate}
	v, err := startVigil(o.vigil, dir, false, vigilConfigFor(ringKB, benchHold))
	if err != nil {
		return b, err
	}
	id := cleanups.add(func() error { return stopQuietly(v) })
	defer cleanups.remove(id)
	fail := func(err error) (burstRun, error) { return b, errors.Join(err, stopQuietly(v)) }
	before, err := settle(v.pid())
	if err != nil {
		return fail(err)
	}
	args := []string{"-work", "open", "-duration", o.burst.String(), "-threads", strconv.Itoa(threads)}
	if rate > 0 {
		args = append(args, "-rate", fmt.Sprintf("%.0f", rate))
	}
	out, err := exec.Command(trackedBin, args...).Output()
	if err != nil {
		return fail(fmt.Errorf("generator: %w", err))
	}
	var res struct {
		Seconds    float64 `json:"seconds"`
		N          int64   `json:"n"`
		OpsPerSec  float64 `json:"ops_per_sec"`
		Target     string  `json:"target"`
		SetupOpens int     `json:"target_setup_opens"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fail(fmt.Errorf("generator output %q: %w", out, err))
	}
	// The hold, then idle: every event is bound and written before the sensor stops.
	time.Sleep(benchHold*time.Second + 500*time.Millisecond)
	after, err := settle(v.pid())
	if err != nil {
		return fail(err)
	}
	b.Seconds, b.Generated, b.GenRate = res.Seconds, res.N, res.OpsPerSec
	b.SensorCPUPct = (after - before).Seconds() / res.Seconds * 100
	v.keepJSONL = true
	if _, err := v.stop(); err != nil {
		return b, err
	}
	written, lost := 0, map[string]uint64{}
	for _, f := range v.files() {
		if err == nil {
			err = countTarget(f, res.Target, &written, lost)
		}
		os.Remove(f)
	}
	if err != nil {
		return b, err
	}
	b.Written, b.Lost = written-res.SetupOpens, lost
	b.Unaccounted = b.Generated - int64(b.Written) - int64(lost["open"])
	if b.Generated > 0 {
		b.LossPct = float64(b.Generated-int64(b.Written)) / float64(b.Generated) * 100
	}
	label := "full speed"
	if rate > 0 {
		label = fmt.Sprintf("%.0f/s", rate)
	}
	fmt.Printf("[throughput] ring %4d KiB, %d thread(s), %-10s generated %9d (%7.0f/s), written %9d, lost %v (%.2f%%), sensor CPU %.0f%%\n",
		ringKB, threads, label, b.Generated, b.GenRate, b.Written, formatLost(b.Lost), b.LossPct, b.SensorCPUPct)
	return b, nil
}

// countTarget adds the opens of path in a JSONL file (one a line, or a merged line's
// vigil.merged.count) to written and its lost records to lost, without decoding the other
// lines; a file never written (no flood) adds nothing.
func countTarget(jsonl, path string, written *int, lost map[string]uint64) error {
	f, err := os.Open(jsonl)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	pathField, _ := json.Marshal(path)
	needle := append([]byte(`"path":`), pathField...)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if bytes.Contains(l, needle) && bytes.Contains(l, []byte(`"action":"open"`)) {
			n, err := opensOfLine(l)
			if err != nil {
				return err
			}
			*written += n
			continue
		}
		if err := addLost(l, lost); err != nil {
			return err
		}
	}
	return sc.Err()
}

// opensOfLine is how many opens an open line stands for: 1, or a merged line's count.
func opensOfLine(l []byte) (int, error) {
	if !bytes.Contains(l, []byte(`"merged":{`)) {
		return 1, nil
	}
	var line struct {
		Vigil struct {
			Merged struct {
				Count int `json:"count"`
			} `json:"merged"`
		} `json:"vigil"`
	}
	if err := json.Unmarshal(l, &line); err != nil {
		return 0, fmt.Errorf("merged open line: %w", err)
	}
	return line.Vigil.Merged.Count, nil
}

// addLost adds the counts of a lost record to lost; other lines are skipped undecoded.
func addLost(l []byte, lost map[string]uint64) error {
	if !bytes.Contains(l, []byte(`"action":"lost"`)) {
		return nil
	}
	var line struct {
		Vigil struct {
			Lost map[string]uint64 `json:"lost"`
		} `json:"vigil"`
	}
	if err := json.Unmarshal(l, &line); err != nil {
		return fmt.Errorf("lost record: %w", err)
	}
	for k, n := range line.Vigil.Lost {
		lost[k] += n
	}
	return nil
}

// lostBetween sums the lost records among the JSONL lines written between the offsets from
// and to (the sensor flushes its buffer whenever it has nothing queued, so an idle sensor's
// file ends at a line's end).
func lostBetween(jsonl string, from, to int64) (map[string]uint64, error) {
	f, err := os.Open(jsonl)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lost := map[string]uint64{}
	sc := bufio.NewScanner(io.NewSectionReader(f, from, to-from))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		if err := addLost(sc.Bytes(), lost); err != nil {
			return nil, err
		}
	}
	return lost, sc.Err()
}

// ---- correlator ----

// correlatorPart runs the replay in a child process pinned to the last CPU with GOMAXPROCS=1.
func correlatorPart(o options) (*correlatorReport, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-correlator-child", "-correlator-testdata", o.testdata, "-sessions", joinInts(o.sessions),
		"-turns", strconv.Itoa(o.correlatorTurns), "-events-per-turn", strconv.Itoa(o.eventsPerTurn)}
	name := self
	if ts, err := exec.LookPath("taskset"); err == nil {
		args = append([]string{"-c", strconv.Itoa(runtime.NumCPU() - 1), self}, args...)
		name = ts
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stdout // progress lines
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("correlator replay: %w", err)
	}
	var r correlatorReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("correlator output: %w", err)
	}
	r.Pinned = name != self
	return &r, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// ---- sensor cost ----

// vigilShipped is the shipped configuration except where the JSONL goes (the command line),
// the OTLP ports (picked by the kernel, an installed sensor may hold the default ones) and
// where the other state is kept (the run's directory).
const vigilShipped = "output:\n" + runStatePaths + `correlate:
  otlp_http: 127.0.0.1:0
  otlp_grpc: 127.0.0.1:0
` + runCorrelatePaths

// startups is how many times the sensor is started for the start-up times.
const startups = 5

func sensorPart(o options, dir, trackedBin string) (*sensorCost, error) {
	sc := &sensorCost{IdleSeconds: o.idle.Seconds(), Hold: shippedHold}
	// Start-up: exec to the "vigil running" line, and the sensor's own ready= (probes
	// attached and the process bootstrap done).
	for i := 0; i < startups; i++ {
		v, err := startVigil(o.vigil, dir, false, vigilShipped)
		if err != nil {
			return sc, err
		}
		wall := v.running.Sub(v.started)
		ready, ok := parseReady(v.runningLine)
		if _, err := v.stop(); err != nil {
			return sc, err
		}
		sc.StartWallMs = append(sc.StartWallMs, float64(wall.Microseconds())/1000)
		if ok {
			sc.ReadyMs = append(sc.ReadyMs, float64(ready.Microseconds())/1000)
		}
		fmt.Printf("[sensor] start %d/%d: vigil running after %s (exec to log line), ready=%s\n", i+1, startups, wall.Round(time.Millisecond), ready)
	}

	v, err := startVigil(o.vigil, dir, false, vigilShipped)
	if err != nil {
		return sc, err
	}
	id := cleanups.add(func() error { return stopQuietly(v) })
	defer cleanups.remove(id)
	fail := func(err error) (*sensorCost, error) { return sc, errors.Join(err, stopQuietly(v)) }
	pid := v.pid()

	// Idle.
	time.Sleep(2 * time.Second)
	t0, err := cpuTicks(pid)
	if err != nil {
		return fail(err)
	}
	var rss []float64
	for end := time.Now().Add(o.idle); time.Now().Before(end); time.Sleep(time.Second) {
		m, err := readMem(pid)
		if err != nil {
			return fail(err)
		}
		rss = append(rss, m.rssMiB)
	}
	t1, err := cpuTicks(pid)
	if err != nil {
		return fail(err)
	}
	m, err := readMem(pid)
	if err != nil {
		return fail(err)
	}
	sc.Idle = phaseCost{Name: "idle", Seconds: o.idle.Seconds(), CPUPct: ticksPct(t1-t0, o.idle), RSSMiB: median(rss), RSSMaxMiB: maxOf(rss), HWMMiB: m.hwmMiB}
	fmt.Printf("[sensor] idle %s: CPU %.2f%%, RSS %.1f MiB (max %.1f), HWM %.1f MiB\n", o.idle, sc.Idle.CPUPct, sc.Idle.RSSMiB, sc.Idle.RSSMaxMiB, sc.Idle.HWMMiB)

	// Loads: a busy agent (5,000 opens/s), then one thread of opens at full speed, each for
	// 10 s, measured until the sensor has written everything (the shipped 10 s hold).
	for _, load := range []struct {
		name string
		rate float64
	}{{"load 5k opens/s", 5000}, {"load full speed, 1 thread", 0}} {
		ph, err := loadPhase(pid, trackedBin, load.name, load.rate)
		if err != nil {
			return fail(err)
		}
		sc.Load = append(sc.Load, ph)
		fmt.Printf("[sensor] %s: %.0f opens/s for %.0f s; CPU %.0f%% during, %.0f ns per event until written; RSS max %.1f MiB, HWM %.1f MiB, RSS after %.1f MiB\n",
			ph.Name, ph.Rate, ph.Seconds, ph.CPUPct, ph.CPUNsPerEvent, ph.RSSMaxMiB, ph.HWMMiB, ph.RSSAfterMiB)
	}
	if _, err := v.stop(); err != nil {
		return sc, err
	}
	return sc, nil
}

// loadPhase runs a tracked generator for 10 s beside the sensor, sampling its RSS, and
// charges its CPU from the start until it is idle again after the hold.
func loadPhase(pid int, trackedBin, name string, rate float64) (phaseCost, error) {
	ph := phaseCost{Name: name}
	t0, err := settle(pid)
	if err != nil {
		return ph, err
	}
	args := []string{"-work", "open", "-duration", "10s", "-threads", "1"}
	if rate > 0 {
		args = append(args, "-rate", fmt.Sprintf("%.0f", rate))
	}
	cmd := exec.Command(trackedBin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return ph, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var rss []float64
	var cpuEnd int64
	sample := func() error {
		m, err := readMem(pid)
		if err == nil {
			rss = append(rss, m.rssMiB)
		}
		return err
	}
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				return ph, fmt.Errorf("generator: %w", err)
			}
			if cpuEnd, err = cpuTicks(pid); err != nil {
				return ph, err
			}
			break wait
		case <-time.After(250 * time.Millisecond):
			if err := sample(); err != nil {
				return ph, err
			}
		}
	}
	var res struct {
		Seconds   float64 `json:"seconds"`
		N         int64   `json:"n"`
		OpsPerSec float64 `json:"ops_per_sec"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return ph, fmt.Errorf("generator output %q: %w", out.String(), err)
	}
	// The hold: events are bound and written shipped-hold seconds after they arrive.
	for end := time.Now().Add(shippedHold*time.Second + time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if err := sample(); err != nil {
			return ph, err
		}
	}
	t1, err := settle(pid)
	if err != nil {
		return ph, err
	}
	m, err := readMem(pid)
	if err != nil {
		return ph, err
	}
	ph.Seconds, ph.Rate, ph.Events = res.Seconds, res.OpsPerSec, res.N
	ph.CPUPct = float64(cpuEnd-int64(t0/(time.Second/userHZ))) / userHZ / res.Seconds * 100
	ph.CPUNsPerEvent = float64((t1 - t0).Nanoseconds()) / float64(max(res.N, 1))
	ph.RSSMiB, ph.RSSMaxMiB, ph.HWMMiB, ph.RSSAfterMiB = median(rss), maxOf(rss), m.hwmMiB, m.rssMiB
	return ph, nil
}

func ticksPct(ticks int64, d time.Duration) float64 {
	return float64(ticks) / userHZ / d.Seconds() * 100
}

type memInfo struct{ rssMiB, hwmMiB float64 }

// readMem reads VmRSS and VmHWM from /proc/<pid>/status.
func readMem(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	var m memInfo
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			m.rssMiB = kb / 1024
		case "VmHWM:":
			m.hwmMiB = kb / 1024
		}
	}
	return m, nil
}

var (
	ansi    = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	readyRe = regexp.MustCompile(`ready=([0-9.]+)([a-zµ]*)`)
)

// parseReady reads ready=<duration> from the "vigil running" line: zerolog's console writer
// prints a duration as a number of milliseconds, a Go duration string is accepted too.
func parseReady(line string) (time.Duration, bool) {
	m := readyRe.FindStringSubmatch(ansi.ReplaceAllString(line, ""))
	if m == nil {
		return 0, false
	}
	if m[2] != "" {
		d, err := time.ParseDuration(m[1] + m[2])
		return d, err == nil
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond)), err == nil
}
