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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-sensor/vigil/bench/floor"
)

// trackedName is the basename of the loadgen copy: a built-in agent binary (claude-code), so
// its exec roots a tracked tree in Vigil's kernel catalog.
const trackedName = "claude"

// Timeouts for the processes the driver starts; generous, they only turn a hang into an error.
const (
	vigilStartTimeout = 30 * time.Second
	vigilStopTimeout  = 30 * time.Second
	loadgenTimeout    = 10 * time.Minute
)

// loadResult is the loadgen's output line (bench/loadgen).
type loadResult struct {
	Work           string             `json:"work"`
	N              int                `json:"n"`
	Warmup         int                `json:"warmup"`
	NsPerOp        float64            `json:"ns_per_op"`
	CPUNsPerOp     float64            `json:"cpu_ns_per_op"`
	EventsExpected int                `json:"events_expected"`
	EventsPerOp    map[string]float64 `json:"events_per_op"`
	// EventsGenerated is by action what the loops made, warm-up included.
	EventsGenerated map[string]int `json:"events_generated"`
}

// generated sums EventsGenerated.
func (r loadResult) generated() int {
	n := 0
	for _, k := range r.EventsGenerated {
		n += k
	}
	return n
}

// recording is what a sensor configuration wrote while it ran, by root pid and event.action.
type recording struct {
	byRoot map[int]map[string]int
	// merged is per root pid and action the events merged lines stand for beyond themselves
	// (their vigil.merged.count less the line).
	merged map[int]map[string]int
	lost   map[string]uint64
}

// running is a started configuration; stop ends it and returns its recording (nil when the
// configuration records nothing the driver can read). pid is the sensor's process, 0 when the
// configuration has none: the driver waits for that process to go idle before each loadgen run
// and charges its CPU time to the run.
type running interface {
	stop() (*recording, error)
	pid() int
}

func run(o options) error {
	if o.mode == modeAgent && o.vigil != "" {
		o.loadgen = o.vigil // not used: the real-agent part runs no loadgen
	}
	if o.vigil == "" || o.loadgen == "" {
		return errors.New("-vigil and -loadgen are required (build them first, see bench/README.md)")
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: the floor and vigil load eBPF programs")
	}
	for _, p := range []string{o.vigil, o.loadgen} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("check binaries: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	// Cleanups run on return and on SIGINT/SIGTERM: the audit state is restored and the
	// processes the driver started are stopped on every exit path.
	stopSignals := cleanups.handleSignals()
	defer stopSignals()
	defer cleanups.runAll()
	cleanups.add(func() error { return os.RemoveAll(dir) })
	if slices.Contains(o.configs, configAuditd) {
		if err := ensureAuditd(); err != nil {
			return err
		}
	}
	if o.mode == modeFull {
		return runFull(o, dir)
	}
	if o.mode == modeAgent {
		a, err := agentPart(o, dir)
		if err != nil {
			return err
		}
		return writeAgent(a, o.out)
	}
	rep, err := sideBySide(o, dir)
	if err != nil {
		return err
	}
	return writeReport(rep, o.out)
}

// sideBySide runs the interleaved rounds of every configuration and workload.
func sideBySide(o options, dir string) (report, error) {
	trackedBin, err := copyExecutable(o.loadgen, filepath.Join(dir, "agent", trackedName))
	if err != nil {
		return report{}, fmt.Errorf("make the tracked loadgen copy: %w", err)
	}
	bins := map[string]string{untracked: o.loadgen, tracked: trackedBin}

	rep := report{Machine: describeMachine(), Rounds: o.rounds, N: o.n, Configs: o.configs}
	fmt.Printf("bench: side by side, %d rounds of %s on %d vCPU, kernel %s, load average %s\n", o.rounds, strings.Join(o.configs, ", "), rep.Machine.Nproc, rep.Machine.Kernel, rep.Machine.LoadAvg)
	args := workArgs(o.loadgen, dir)
	began := time.Now()
	for round := 1; round <= o.rounds; round++ {
		waitQuiet()
		for _, c := range rotate(o.configs, round-1) {
			r, err := start(c, o, dir)
			if err != nil {
				return report{}, fmt.Errorf("round %d: start %s: %w", round, c, err)
			}
			id := cleanups.add(func() error { return stopQuietly(r) })
			pids := map[int]loadResult{}
			runOf := map[int]int{} // tracked loadgen pid → its sample in rep.Samples
			for _, w := range workloads {
				if o.n[w] == 0 {
					continue // not selected (-works)
				}
				for _, v := range variants {
					n := o.n[w]
					if c == configAuditd || c == configVigilAudit {
						n = max(n/auditdDivisor, 1)
					}
					extra, err := args(w, n)
					if err != nil {
						return report{}, errors.Join(err, cleanups.run(id))
					}
					s, res, pid, err := measure(r, bins[v], w, n, v == tracked, extra...)
					if err != nil {
						return report{}, errors.Join(fmt.Errorf("round %d: %s, %s %s: %w", round, c, w, v, err), cleanups.run(id))
					}
					if v == tracked {
						pids[pid] = res
						runOf[pid] = len(rep.Samples)
					}
					s.Round, s.Config, s.Variant = round, c, v
					rep.Samples = append(rep.Samples, s)
					fmt.Printf("[round %d/%d] %-12s %-8s %-9s %12.0f ns/op (own CPU %.0f)", round, o.rounds, c, w, v, s.NsPerOp, s.LoadgenCPUNsPerOp)
					if r.pid() > 0 {
						fmt.Printf("   sensor CPU %8.0f ns/op", s.SensorCPUNsPerOp)
					}
					if e := s.Events; e != nil {
						fmt.Printf("   %d events generated, JSONL +%d bytes, lost %s", e.Generated, e.Bytes, formatLost(e.Lost))
					}
					if len(s.Foreign) > 0 {
						fmt.Printf("   (another sensor was running: %s)", strings.Join(s.Foreign, ", "))
					}
					fmt.Println()
				}
			}
			cleanups.remove(id)
			rec, err := r.stop()
			if err != nil {
				return report{}, fmt.Errorf("round %d: stop %s: %w", round, c, err)
			}
			if a, ok := r.(*auditdRun); ok && round == 1 {
				fmt.Printf("[round %d] auditd stopped; audit state restored: %s\n", round, a.Restored)
			}
			if rec != nil {
				// Written: the lines of each tracked run's tree with the actions it generated,
				// counted over the whole file (a line is the run's by its root pid, whenever
				// it was written).
				for pid, i := range runOf {
					if e := rep.Samples[i].Events; e != nil {
						for a := range pids[pid].EventsGenerated {
							e.Written += rec.byRoot[pid][a]
							e.Merged += rec.merged[pid][a]
						}
					}
				}
				ch := check(round, c, rec, pids)
				rep.Checks = append(rep.Checks, ch)
				printCheck(ch)
			}
		}
		if round == 1 {
			per := time.Since(began)
			fmt.Printf("bench: round 1 took %s; about %s in all\n", per.Round(time.Second), (per * time.Duration(o.rounds)).Round(time.Second))
		}
	}
	rep.Summaries = summarize(rep.Samples, o.configs)
	return rep, nil
}

// start brings a configuration up and returns once it is in effect.
func start(c string, o options, dir string) (running, error) {
	switch c {
	case configNone:
		return nothing{}, nil
	case configFloor:
		cl, err := floor.Attach()
		if err != nil {
			return nil, err
		}
		return closer{cl}, nil
	case configVigil:
		return startVigil(o.vigil, dir, false, vigilConfigFor(defaultRingKB, benchHold))
	case configVigilStdout:
		return startVigil(o.vigil, dir, true, vigilConfigFor(defaultRingKB, benchHold))
	case configVigilAudit:
		return startVigil(o.vigil, dir, false, vigilConfigFor(defaultRingKB, benchHold)+"source: audit\n")
	case configAuditd:
		return startAuditd(dir)
	}
	return nil, fmt.Errorf("unknown configuration %q", c)
}

type nothing struct{}

func (nothing) stop() (*recording, error) { return nil, nil }
func (nothing) pid() int                  { return 0 }

type closer struct{ io.Closer }

func (c closer) stop() (*recording, error) { return nil, c.Close() }
func (closer) pid() int                    { return 0 }

// measure runs the loadgen once. With a sensor process, it first waits for the sensor to go
// idle, so that a run never pays for the previous run's backlog (on 2 vCPUs a sensor still
// writing 200k events would steal the next run's CPU), and it charges the sensor's CPU time
// from the start of the run until the sensor is idle again (its drain included) to the run.
//
// A tracked run beside a sensor writing a JSONL file is also accounted per event: the driver
// waits out the hold and the lost-record interval before it waits for idle (held events are
// written, and a loss reported, after the sensor looked idle), and takes the file's growth
// and the lost records written over that span (Written is filled in once the sensor stops).
func measure(r running, bin, work string, n int, isTracked bool, args ...string) (sample, loadResult, int, error) {
	pid := r.pid()
	var files []string // the events file first, where lost records go
	if j, ok := r.(jsonlWriter); ok && isTracked {
		files = j.jsonlFiles()
	}
	var before time.Duration
	var size0, eventsSize0 int64
	if pid > 0 {
		var err error
		if before, err = settle(pid); err != nil {
			return sample{}, loadResult{}, 0, err
		}
		if files != nil {
			if size0, err = filesSize(files); err != nil {
				return sample{}, loadResult{}, 0, err
			}
			if eventsSize0, err = filesSize(files[:1]); err != nil {
				return sample{}, loadResult{}, 0, err
			}
		}
	}
	foreign := foreignSensors()
	res, lpid, err := runLoadgen(bin, work, n, args...)
	if err != nil {
		return sample{}, loadResult{}, 0, err
	}
	s := sample{Work: work, NsPerOp: res.NsPerOp, LoadgenCPUNsPerOp: res.CPUNsPerOp, Foreign: foreign,
		EventsPerOp: float64(res.EventsExpected) / float64(res.N)}
	if pid > 0 {
		if files != nil {
			time.Sleep(writtenWait)
		}
		after, err := settle(pid)
		if err != nil {
			return sample{}, loadResult{}, 0, err
		}
		cpu := float64((after - before).Nanoseconds())
		s.SensorCPUNsPerOp = cpu / float64(res.N+res.Warmup)
		if files != nil {
			size1, err := filesSize(files)
			if err != nil {
				return sample{}, loadResult{}, 0, err
			}
			eventsSize1, err := filesSize(files[:1])
			if err != nil {
				return sample{}, loadResult{}, 0, err
			}
			lost, err := lostBetween(files[0], eventsSize0, eventsSize1)
			if err != nil {
				return sample{}, loadResult{}, 0, err
			}
			s.Events = &runEvents{Generated: res.generated(), Lost: lost, Bytes: size1 - size0}
			if s.Events.Generated > 0 {
				s.Events.SensorCPUNsPerEvent = cpu / float64(s.Events.Generated)
			}
		}
	}
	return s, res, lpid, nil
}

// writtenWait is how long a tracked run's events may still be unwritten after the run: the
// bench's hold, then one interval of the sensor's loss check (sensor.PipelineOptions'
// LostInterval, 1 s by default), then a margin.
const writtenWait = benchHold*time.Second + time.Second + 500*time.Millisecond

// jsonlWriter is a running configuration writing JSONL files the driver may read meanwhile:
// the events file first.
type jsonlWriter interface{ jsonlFiles() []string }

func (v *vigilRun) jsonlFiles() []string { return v.files() }

// filesSize is the bytes the files hold together; a file not written yet holds none.
func filesSize(paths []string) (int64, error) {
	var n int64
	for _, path := range paths {
		fi, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return 0, fmt.Errorf("JSONL size: %w", err)
		}
		n += fi.Size()
	}
	return n, nil
}

// workArgs returns the loadgen's arguments for a workload of n operations beyond -work, -n
// and -warmup. The walk's trees are made by the untracked loadgen, once per size (auditd's
// runs have their own, smaller one), before the first run that walks them, so that a tracked
// run records the walk and not the trees' creation and every run of a size walks the same
// files.
func workArgs(loadgen, dir string) func(work string, n int) ([]string, error) {
	trees := map[int]string{}
	return func(work string, n int) ([]string, error) {
		switch work {
		case "fanout":
			return []string{"-parallel", strconv.Itoa(fanoutParallel)}, nil
		case "walk":
			tree, ok := trees[n]
			if !ok {
				tree = filepath.Join(dir, fmt.Sprintf("walk-%d", n))
				fmt.Printf("bench: making the walk's trees (%d + %d files) in %s\n", n, n/10, tree)
				out, err := exec.Command(loadgen, "-make-tree", tree, "-n", strconv.Itoa(n), "-warmup", strconv.Itoa(n/10)).CombinedOutput()
				if err != nil {
					return nil, fmt.Errorf("make the walk's trees: %w: %s", err, strings.TrimSpace(string(out)))
				}
				trees[n] = tree
			}
			return []string{"-tree", tree}, nil
		}
		return nil, nil
	}
}

// quietWait bounds how long waitQuiet waits for another sensor to go away.
const quietWait = 90 * time.Second

// waitQuiet waits (at most quietWait) until no foreign sensor runs: other sessions' tests
// start vigil for a minute or two at a time. The runs taken anyway are flagged.
func waitQuiet() {
	deadline := time.Now().Add(quietWait)
	for f := foreignSensors(); len(f) > 0; f = foreignSensors() {
		if time.Now().After(deadline) {
			fmt.Printf("bench: another sensor still runs after %s (%s); going on, its runs are flagged\n", quietWait, strings.Join(f, ", "))
			return
		}
		fmt.Printf("bench: waiting for another sensor to stop (%s)\n", strings.Join(f, ", "))
		time.Sleep(5 * time.Second)
	}
}

// foreignSensors lists the sensors running on the machine that the driver did not start:
// processes named vigil* or auditd that do not descend from it (the sensor's own
// self-check canary, vigil-selfcheck, is its grandchild). Their hooks make every
// configuration (none included) pay, so samples taken beside one are flagged.
func foreignSensors() []string {
	self := os.Getpid()
	dirs, _ := os.ReadDir("/proc")
	var out []string
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if !strings.HasPrefix(name, "vigil") && name != "auditd" {
			continue
		}
		if descendsFrom(pid, self) {
			continue // started by this driver
		}
		out = append(out, fmt.Sprintf("%s[%d]", name, pid))
	}
	return out
}

// descendsFrom reports whether pid's parent chain, read from /proc, reaches ancestor.
func descendsFrom(pid, ancestor int) bool {
	for depth := 0; pid > 1 && depth < 64; depth++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return false
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			return false
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			return false
		}
		if pid == ancestor {
			return true
		}
	}
	return false
}

// Idle detection: the sensor is idle when it used at most idleTicks of CPU (clock ticks,
// 10 ms each at USER_HZ 100) during one idlePeriod; settleTimeout turns a busy sensor into an
// error instead of a hang.
const (
	idlePeriod    = 100 * time.Millisecond
	idleTicks     = 1
	settleTimeout = 2 * time.Minute
)

// settle waits until pid is idle and returns its CPU time (user+system) at that point.
func settle(pid int) (time.Duration, error) {
	deadline := time.Now().Add(settleTimeout)
	prev, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	for {
		time.Sleep(idlePeriod)
		cur, err := cpuTicks(pid)
		if err != nil {
			return 0, err
		}
		if cur-prev <= idleTicks {
			return time.Duration(cur) * time.Second / userHZ, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("sensor (pid %d) still busy after %s", pid, settleTimeout)
		}
		prev = cur
	}
}

// userHZ is the unit of /proc/<pid>/stat's CPU times on Linux (USER_HZ, fixed at 100 on x86).
const userHZ = 100

// cpuTicks returns utime+stime of pid, all threads, from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read sensor CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its closing parenthesis are
	// fixed: state is field 3, utime field 14 and stime field 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, b)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11]+" "+f[12], &utime, &stime); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat CPU times: %w", pid, err)
	}
	return utime + stime, nil
}

// stopQuietly stops a configuration after a failure; its error joins the first one.
func stopQuietly(r running) error {
	_, err := r.stop()
	return err
}

// runLoadgen runs one loadgen process; the warm-up is a tenth of the timed loop.
func runLoadgen(bin, work string, n int, args ...string) (loadResult, int, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, append([]string{"-work", work, "-n", fmt.Sprint(n), "-warmup", fmt.Sprint(n / 10)}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return loadResult{}, 0, fmt.Errorf("start loadgen: %w", err)
	}
	timer := time.AfterFunc(loadgenTimeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	if err != nil {
		return loadResult{}, 0, fmt.Errorf("loadgen: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return loadResult{}, 0, fmt.Errorf("parse loadgen output %q: %w", out.String(), err)
	}
	return res, cmd.Process.Pid, nil
}

// copyExecutable copies src to dst (creating its directory) with mode 0755.
func copyExecutable(src, dst string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

// vigilConfig runs the shipped defaults (sensor/default.yaml) except the ring size, which the
// throughput part varies, and keeps the JSONL file from rotating, so every event of a round
// is countable. The OTLP receiver listens on ports the kernel picks (an installed sensor
// may hold the default ones) and the correlator holds kernel events for 1 s instead of 10 s,
// so that each run's events are bound, encoded and written (and their CPU charged to the run)
// before the next run starts; the hold changes when that work happens, not how much there is.
// The sensor-cost part uses the shipped hold (vigilConfigDefaults).
const vigilConfig = `output:
  max_size_mb: 65536
  max_files: 1
  flood_max_size_mb: 65536
  flood_max_files: 1
` + runStatePaths + `kernel:
  ring_buffer_kb: %d
correlate:
  otlp_http: 127.0.0.1:0
  otlp_grpc: 127.0.0.1:0
  hold_seconds: %d
` + runCorrelatePaths

// runStatePaths and runCorrelatePaths put what the sensor keeps besides its JSONL (the store,
// the untrusted telemetry and flood files, the hold journal, the hook socket) in the run's directory
// ($RUN, replaced by startVigil), not in the machine's /var/lib/vigil and /run/vigil: every
// run starts from an empty store, as the side by side's rounds must, and an installed sensor's
// files are never touched.
const (
	runStatePaths = `  untrusted_jsonl: $RUN/untrusted.jsonl
  flood_jsonl: $RUN/` + floodsName + `
  store: $RUN/vigil.db
`
	runCorrelatePaths = `  hook_socket: $RUN/hook.sock
  hook_undelivered_dir: $RUN/hook-undelivered
  hold_journal: $RUN/hold
`
)

// benchSettings names, in the reports, what the sensor ran with (vigilConfig, vigilShipped).
const benchSettings = "the sensor ran the embedded defaults (sensor/default.yaml) with its JSONL not rotating, OTLP on " +
	"kernel-picked ports, and its store, hold journal and hook socket in the run's directory (the store emptied before each run); the side by side and throughput parts hold kernel events 1 s instead of 10 s and the throughput " +
	"part varies the ring buffer; the sensor-cost part runs the shipped configuration"

func vigilConfigFor(ringKB, hold int) string { return fmt.Sprintf(vigilConfig, ringKB, hold) }

// vigilRun is a running `vigil run`.
type vigilRun struct {
	cmd    *exec.Cmd
	jsonl  string // "" when the JSONL went to standard output (discarded)
	stderr *tailBuffer
	exited chan error
	// started is just before exec; running is when the "vigil running" line was read, and
	// runningLine is that line (it carries ready=, the sensor's own start-up time).
	started, running time.Time
	runningLine      string
	// keepJSONL: stop leaves the JSONL file for the caller to count (and remove).
	keepJSONL bool
	stopped   bool
}

// startVigil starts `vigil run` with config ($RUN in it names dir) and waits for its "vigil
// running" log line, printed once the probes are attached and the bootstrap is done. toStdout sends the JSONL to /dev/null
// through standard output instead of a file.
func startVigil(bin, dir string, toStdout bool, config string) (*vigilRun, error) {
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(config, "$RUN", dir)), 0o600); err != nil {
		return nil, fmt.Errorf("write vigil config: %w", err)
	}
	// The previous run's store, untrusted telemetry and flood lines: each run starts empty.
	for _, name := range []string{"vigil.db", "vigil.db-wal", "vigil.db-shm", "untrusted.jsonl", floodsName} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove the previous run's %s: %w", name, err)
		}
	}
	v := &vigilRun{stderr: &tailBuffer{max: 64}, exited: make(chan error, 1)}
	target := "-"
	if !toStdout {
		v.jsonl = filepath.Join(dir, "events.jsonl")
		target = v.jsonl
		if err := os.Remove(v.jsonl); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove old JSONL: %w", err)
		}
	}
	v.cmd = exec.Command(bin, "run", "--config", cfg, "--jsonl", target)
	stderr, err := v.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("vigil stderr pipe: %w", err)
	}
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start vigil: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			v.stderr.add(sc.Text())
			if strings.Contains(sc.Text(), "vigil running") {
				once.Do(func() { v.running, v.runningLine = time.Now(), sc.Text(); close(ready) })
			}
		}
		v.exited <- v.cmd.Wait()
	}()
	select {
	case <-ready:
		return v, nil
	case err := <-v.exited:
		return nil, fmt.Errorf("vigil exited before it was running (%v):\n%s", err, v.stderr)
	case <-time.After(vigilStartTimeout):
		v.cmd.Process.Kill()
		<-v.exited
		return nil, fmt.Errorf("vigil not running after %s:\n%s", vigilStartTimeout, v.stderr)
	}
}

func (v *vigilRun) pid() int { return v.cmd.Process.Pid }

// stop sends SIGINT (the sensor drains and flushes), requires exit status 0 and counts the
// JSONL lines by root pid and action.
func (v *vigilRun) stop() (*recording, error) {
	if v.stopped {
		return nil, nil
	}
	v.stopped = true
	if err := v.cmd.Process.Signal(os.Interrupt); err != nil {
		return nil, fmt.Errorf("signal vigil: %w", err)
	}
	select {
	case err := <-v.exited:
		if err != nil {
			return nil, fmt.Errorf("vigil did not exit cleanly (%v):\n%s", err, v.stderr)
		}
	case <-time.After(vigilStopTimeout):
		v.cmd.Process.Kill()
		<-v.exited
		return nil, fmt.Errorf("vigil still running %s after SIGINT:\n%s", vigilStopTimeout, v.stderr)
	}
	if v.jsonl == "" || v.keepJSONL {
		return nil, nil
	}
	rec := &recording{byRoot: map[int]map[string]int{}, merged: map[int]map[string]int{}, lost: map[string]uint64{}}
	for _, path := range v.files() {
		if err := countJSONL(path, rec); err != nil {
			return nil, err
		}
		// Each tracked open run writes hundreds of MB; do not keep them between rounds.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove JSONL: %w", err)
		}
	}
	return rec, nil
}

// floodsName is the flood file's name in the run's directory (output.flood_jsonl): the lines
// of a tree past its line budget, as a flooding benchmark's are.
const floodsName = "floods.jsonl"

// files are the JSONL files the sensor writes kernel lines to: the events file and, beside
// it, the flood file.
func (v *vigilRun) files() []string {
	return []string{v.jsonl, filepath.Join(filepath.Dir(v.jsonl), floodsName)}
}

// countJSONL adds the fields of each line of path the check needs to rec; a file that was
// never written (no flood) adds nothing.
func countJSONL(path string, rec *recording) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open JSONL: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	var line struct {
		Event struct {
			Action string `json:"action"`
		} `json:"event"`
		Vigil struct {
			Root *struct {
				Pid int `json:"pid"`
			} `json:"root"`
			Lost   map[string]uint64 `json:"lost"`
			Merged *struct {
				Count int `json:"count"`
			} `json:"merged"`
		} `json:"vigil"`
	}
	for n := 1; sc.Scan(); n++ {
		line.Vigil.Root, line.Vigil.Lost, line.Vigil.Merged = nil, nil, nil
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
		for k, c := range line.Vigil.Lost {
			rec.lost[k] += c
		}
		if line.Vigil.Root == nil {
			continue
		}
		m := rec.byRoot[line.Vigil.Root.Pid]
		if m == nil {
			m = map[string]int{}
			rec.byRoot[line.Vigil.Root.Pid] = m
		}
		m[line.Event.Action]++
		if line.Vigil.Merged != nil {
			mm := rec.merged[line.Vigil.Root.Pid]
			if mm == nil {
				mm = map[string]int{}
				rec.merged[line.Vigil.Root.Pid] = mm
			}
			mm[line.Event.Action] += line.Vigil.Merged.Count - 1 // the line itself is counted above
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read JSONL: %w", err)
	}
	return nil
}

// check matches a recording with the tracked runs of the round (by root pid); the trees the
// benchmark did not start (agents running on the machine) are summed under Other.
func check(round int, config string, rec *recording, pids map[int]loadResult) eventCheck {
	ch := eventCheck{Round: round, Config: config, Lost: rec.lost}
	for _, w := range workloads {
		for pid, res := range pids {
			if res.Work != w {
				continue
			}
			exp := map[string]int{}
			for a, k := range res.EventsGenerated {
				exp[a] = k
			}
			written := rec.byRoot[pid]
			if written == nil {
				written = map[string]int{}
			}
			ch.Works = append(ch.Works, workCheck{Work: w, Expected: exp, Written: written, Merged: rec.merged[pid]})
		}
	}
	for pid, m := range rec.byRoot {
		if _, ok := pids[pid]; ok {
			continue
		}
		if ch.Other == nil {
			ch.Other = map[string]int{}
		}
		for a, n := range m {
			ch.Other[a] += n
		}
	}
	return ch
}

func printCheck(ch eventCheck) {
	for _, wc := range ch.Works {
		fmt.Printf("[round %d] %s events for tracked %s: %s\n", ch.Round, ch.Config, wc.Work, compareCounts(wc.Written, wc.Merged, wc.Expected))
	}
	if len(ch.Lost) > 0 {
		fmt.Printf("[round %d] %s lost: %s\n", ch.Round, ch.Config, formatLost(ch.Lost))
	}
	if len(ch.Other) > 0 {
		fmt.Printf("[round %d] %s also recorded other agent trees: %v\n", ch.Round, ch.Config, ch.Other)
	}
}

// tailBuffer keeps the last max lines of a process's stderr for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tailBuffer) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// describeMachine records what the numbers depend on; missing details stay empty.
func describeMachine() machine {
	m := machine{Date: time.Now().UTC().Format(time.RFC3339), Nproc: runtime.NumCPU(), Go: runtime.Version(), Settings: benchSettings}
	if out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// writeReport writes quick.json and quick.md into dir.
func writeReport(r report, dir string) error {
	return writeResults(dir, "quick", r, r.markdown())
}
