package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// These tests run the real binary as a user would: build it, start `vigil run` as root,
// drive an agent-named process, stop it with a signal and read the JSONL it wrote.

var vigilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", vigilBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build vigil: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	otlptest.RemoveBuild()
	os.Exit(code)
}

type runningSensor struct {
	cmd        *exec.Cmd
	config     vigilConfig
	jsonl      string
	hookSocket string // the private hook socket startVigil configured
	stderr     *lockedBuilder
}

// lockedBuilder holds the sensor's stderr: the goroutine reading the pipe appends to it
// while a test reads it (after ready, or after Wait, which does not wait for that goroutine).
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// vigilConfig is a sensor's configuration file and the paths it names.
type vigilConfig struct {
	path, jsonl, untrusted, floods, store, hookSocket, journal string
}

// writeVigilConfig writes, in dir, a configuration with ephemeral loopback ports, a private
// hook socket, journal and output (nothing else on the machine, an OpenTelemetry Collector on
// 4318 or another test's sensor, can collide with them), the given hold, output keys (YAML
// lines indented under output:) and the overlay.
func writeVigilConfig(t *testing.T, dir string, holdSeconds int, output, overlay string) vigilConfig {
	t.Helper()
	c := vigilConfig{path: filepath.Join(dir, "vigil.yaml"), jsonl: filepath.Join(dir, "out", "events.jsonl"),
		untrusted: filepath.Join(dir, "out", "untrusted.jsonl"), floods: filepath.Join(dir, "out", "floods.jsonl"), store: filepath.Join(dir, "out", "vigil.db"),
		hookSocket: filepath.Join(dir, "hook.sock"), journal: filepath.Join(dir, "hold")}
	base := fmt.Sprintf("output:\n  jsonl: %s\n  untrusted_jsonl: %s\n  flood_jsonl: %s\n  store: %s\n%scorrelate:\n  otlp_http: 127.0.0.1:0\n  otlp_grpc: 127.0.0.1:0\n  hook_socket: %s\n  hook_undelivered_dir: %s\n  hold_seconds: %d\n  hold_journal: %s\n",
		c.jsonl, c.untrusted, c.floods, c.store, output, c.hookSocket, filepath.Join(dir, "undelivered"), holdSeconds, c.journal)
	if err := os.WriteFile(c.path, []byte(base+overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// startVigil starts `vigil run` with the given configuration overlay and a 1 s hold, and
// waits until it reports that the probes are attached.
func startVigil(t *testing.T, overlay string) *runningSensor {
	t.Helper()
	return launchVigil(t, writeVigilConfig(t, t.TempDir(), 1, "", overlay))
}

// launchVigil starts `vigil run` with the configuration c and waits until it reports that the
// probes are attached.
func launchVigil(t *testing.T, c vigilConfig) *runningSensor {
	t.Helper()
	return startCommand(t, exec.Command(vigilBin, "run", "--config", c.path), c)
}

// startCommand starts cmd, a `vigil run` with the configuration c (possibly under a wrapper
// such as setpriv), and waits until it reports that the probes are attached.
func startCommand(t *testing.T, cmd *exec.Cmd, c vigilConfig) *runningSensor {
	t.Helper()
	testenv.RequireRoot(t, "vigil run (loading eBPF programs)")
	testenv.RequireBTF(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &runningSensor{cmd: cmd, config: c, jsonl: c.jsonl, hookSocket: c.hookSocket, stderr: &lockedBuilder{}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			s.stderr.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "vigil running") {
				close(ready)
				signalled = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("vigil run did not report ready within 20s:\n%s", s.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		// A stop, not a kill, so that a failed test leaves no audit rules or held events
		// behind for the next one; killed only if it hangs.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return s
}

// bashAs copies /bin/bash into dir under an agent's name (claude, codex): running it roots an
// agent tree the kernel tracks, whose every process the test controls.
func bashAs(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(dir, name)
	if err := os.WriteFile(agent, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return agent
}

// stop sends sig and requires exit status 0. The sensor bounds its own drain at 2 s (the
// rest is counted), 5 s in all (shutdownGrace); the test only guards against a hang, with a
// bound a loaded machine cannot trip, and logs how long the stop took.
func (s *runningSensor) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vigil run exited with %v after %s:\n%s", err, sig, s.stderr)
		}
		t.Logf("stopped %s after %s", sig, time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("vigil run still running 15s after %s", sig)
	}
}

// lines reads every JSONL record as a generic map, failing on any line that is not JSON.
// lines returns the records of the three output files: the events and, after them, untrusted
// telemetry and the lines of trees past their budget.
func (s *runningSensor) lines(t *testing.T) []map[string]any {
	t.Helper()
	if _, err := os.Stat(s.jsonl); err != nil {
		t.Fatal(err)
	}
	return slices.Concat(linesOf(t, s.jsonl), linesOf(t, s.config.untrusted), linesOf(t, s.config.floods))
}

// linesOf returns the records of one JSONL file, compact lines restored as vigil trace
// restores them; a file not (yet) created has none.
func linesOf(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	restorer := compact.NewRestorer(0)
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %.200s", i+1, err, line)
		}
		if fieldIs(m, "event.dataset", proto.DatasetKernel) {
			m = restored(t, restorer, line, m)
		}
		out = append(out, m)
	}
	return out
}

// fieldIs reports whether m has the dotted field with value v.
func fieldIs(m map[string]any, dotted string, v any) bool {
	got, ok := field(m, dotted)
	return ok && got == v
}

// restored is a kernel line's map m, its context put back if it is compact. Every kernel
// line goes through the restorer, which remembers the contexts the whole ones state.
func restored(t *testing.T, r *compact.Restorer, line string, m map[string]any) map[string]any {
	t.Helper()
	var e proto.Event
	if err := proto.UnmarshalJSON([]byte(line), &e); err != nil {
		t.Fatalf("kernel line: %v: %.200s", err, line)
	}
	wasCompact := e.Vigil.Compact
	if err := r.Restore(&e); err != nil {
		t.Fatal(err)
	}
	if !wasCompact {
		return m
	}
	b, err := proto.MarshalJSON(&e)
	if err != nil {
		t.Fatal(err)
	}
	var whole map[string]any
	if err := json.Unmarshal(b, &whole); err != nil {
		t.Fatal(err)
	}
	return whole
}

// field walks a dotted ECS name through nested objects.
func field(m map[string]any, dotted string) (any, bool) {
	var cur any = m
	for _, part := range strings.Split(dotted, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func num(m map[string]any, dotted string) int {
	v, _ := field(m, dotted)
	f, _ := v.(float64)
	return int(f)
}

func str(m map[string]any, dotted string) string {
	v, _ := field(m, dotted)
	s, _ := v.(string)
	return s
}

func TestRunWritesRequiredFieldsAndStopsOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			s := startVigil(t, "")
			dir := t.TempDir()
			agent := bashAs(t, dir, "claude")
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for c, err := ln.Accept(); err == nil; c, err = ln.Accept() {
					c.Close()
				}
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			cmd := exec.Command(agent, "-c", fmt.Sprintf("cat notes.txt >/dev/null; exec 3<>/dev/tcp/127.0.0.1/%d", port))
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("agent: %v: %s", err, out)
			}
			root := cmd.Process.Pid
			time.Sleep(300 * time.Millisecond) // past the reader's poll and the sink's flush
			s.stop(t, sig)

			fi, err := os.Stat(s.jsonl)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("events file mode %o, want 640", fi.Mode().Perm())
			}
			common := []string{"@timestamp", "event.action", "event.outcome", "process.pid", "process.parent.pid",
				"process.executable", "process.working_directory", "gen_ai.agent.name", "vigil.root.pid"}
			perAction := map[string][]string{
				"exec": {"process.args"},
				"open": {"file.path"},
			}
			// A connect names an inet peer by ip and port, a unix socket by its path (glibc
			// may connect to nscd's socket while resolving).
			connectFields := func(m map[string]any) []string {
				if _, ok := field(m, "destination.address"); ok {
					return []string{"destination.address"}
				}
				return []string{"destination.ip", "destination.port"}
			}
			seen := map[string]bool{}
			for _, m := range s.lines(t) {
				action := str(m, "event.action")
				if action == "lost" {
					continue
				}
				if num(m, "vigil.root.pid") != root {
					continue // another agent tree on the machine (tests of other packages run meanwhile)
				}
				required := append(common, perAction[action]...)
				if action == "connect" {
					required = append(required, connectFields(m)...)
				}
				for _, f := range required {
					if _, ok := field(m, f); !ok {
						t.Errorf("%s line lacks %s", action, f)
					}
				}
				if _, err := time.Parse(time.RFC3339Nano, str(m, "@timestamp")); err != nil {
					t.Errorf("@timestamp: %v", err)
				}
				switch {
				case action == "open" && str(m, "file.path") == filepath.Join(dir, "notes.txt"):
					seen["open notes.txt"] = true
				case action == "connect" && str(m, "destination.ip") == "127.0.0.1" && num(m, "destination.port") == port:
					seen["connect"] = true
				case action == "exec" && num(m, "process.pid") == root:
					seen["exec root"] = true
				case action == "exit" && num(m, "process.pid") == root:
					seen["exit root"] = true
				}
			}
			for _, want := range []string{"exec root", "open notes.txt", "connect", "exit root"} {
				if !seen[want] {
					t.Errorf("no line for %s", want)
				}
			}
		})
	}
}

func TestRunReportsLostEvents(t *testing.T) {
	// A one-page ring cannot hold an exec record (about 8 KiB): every exec is lost, counted
	// in the kernel, and reported as a lost line.
	s := startVigil(t, "kernel:\n  ring_buffer_kb: 4\n  wakeup_bytes: 1024\n")
	dir := t.TempDir()
	agent := bashAs(t, dir, "codex")
	if out, err := exec.Command(agent, "-c", "for i in 1 2 3; do /bin/true; done").CombinedOutput(); err != nil {
		t.Fatalf("agent: %v: %s", err, out)
	}
	time.Sleep(1500 * time.Millisecond) // the pipeline checks the loss counters every second
	s.stop(t, syscall.SIGINT)
	var lostExec int
	for _, m := range s.lines(t) {
		if str(m, "event.action") == "lost" {
			if str(m, "event.kind") != "metric" {
				t.Errorf("lost line kind %q, want metric", str(m, "event.kind"))
			}
			lostExec += num(m, "vigil.lost.exec")
		}
	}
	if lostExec < 4 { // the agent's own exec and three /bin/true
		t.Errorf("lost lines count %d lost execs, want at least 4", lostExec)
	}
	if !strings.Contains(s.stderr.String(), "ring buffer") {
		t.Errorf("no warning about the undersized ring buffer in the log:\n%s", s.stderr)
	}
}

// TestRunCapsItsCPUs: pipeline.max_cpus sets how many CPUs the sensor's Go code may use
// (GOMAXPROCS), one by default, and the ready line says what it runs with.
func TestRunCapsItsCPUs(t *testing.T) {
	for _, tt := range []struct {
		overlay string
		want    string
	}{
		{"", "cpus=1"},
		{"pipeline:\n  max_cpus: 3\n", "cpus=3"},
	} {
		s := startVigil(t, tt.overlay)
		s.stop(t, syscall.SIGTERM)
		var ready string
		for _, line := range strings.Split(s.stderr.String(), "\n") {
			if strings.Contains(line, "vigil running") {
				ready = line
			}
		}
		if !strings.Contains(ready, tt.want) {
			t.Errorf("config %q: ready line %q, want %s", tt.overlay, ready, tt.want)
		}
	}
}

// Every command's --help prints its usage and exits 0: asking for help is not an error.
func TestEveryCommandHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"hook", "--help"}, {"trace", "--help"}, {"rules", "--help"},
		{"rules", "test", "-h"}, {"query", "--help"}, {"agents", "--help"}, {"install", "--help"}, {"uninstall", "--help"}, {"version", "--help"},
		{"status", "--help"}, {"inventory", "--help"}} {
		out, err := exec.Command(vigilBin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("vigil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if n := strings.Count(strings.ToLower(string(out)), "usage:"); n != 1 {
			t.Errorf("vigil %s printed its usage %d times:\n%s", strings.Join(args, " "), n, out)
		}
	}
}

// A mistake on the command line exits 2 and says so once; vigil version names the commit.
func TestUsageErrorsExitTwoAndPrintOnce(t *testing.T) {
	for _, args := range [][]string{{"run", "--bogus"}, {"trace", "--bogus"}, {"trace"}, {"query", "--bogus"}, {"agents", "--bogus"},
		{"install", "--bogus"}, {"uninstall", "extra"}, {"rules", "list", "--bogus"}, {"version", "extra"}, {"nosuchcommand"}} {
		cmd := exec.Command(vigilBin, args...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("vigil %s: exit %d (%v), want 2\n%s", strings.Join(args, " "), code, err, out)
		}
		last := strings.TrimLeft(args[len(args)-1], "-")
		if n := strings.Count(string(out), last); n != 1 && last != "trace" {
			t.Errorf("vigil %s names %q %d times:\n%s", strings.Join(args, " "), last, n, out)
		}
	}
	out, err := exec.Command(vigilBin, "version").Output()
	if err != nil || !regexp.MustCompile(`^vigil \S+ \(commit \S+, go1\.\d+`).Match(out) {
		t.Errorf("vigil version: %v %q", err, out)
	}
}

// The binary's exit statuses for vigil status: 2 for a command-line mistake, 1 for a sensor
// that cannot be read.
func TestStatusExitStatusOfTheBinary(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		args []string
		want int
	}{{[]string{"status", "--format", "yaml"}, 2}, {[]string{"status", "--metrics", addr}, 1}} {
		err := exec.Command(vigilBin, tc.args...).Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.want {
			t.Errorf("vigil %s: %v, want exit status %d", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
