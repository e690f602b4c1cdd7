package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-sensor/vigil/sensor/metrics"
)

var statusStart = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

// statusNow is the clock of the status tests: the sensor has run for ten minutes.
func statusNow() time.Time { return statusStart.Add(10 * time.Minute) }

// healthySnapshot is a sensor at work: one agent tree with telemetry, a little loss.
func healthySnapshot() metrics.Snapshot {
	return metrics.Snapshot{
		Kinds: []metrics.Kind{
			{Kind: "exec", Events: 12, Last: statusStart.Add(9 * time.Minute)},
			{Kind: "open", Events: 340, Last: statusStart.Add(9*time.Minute + 30*time.Second)},
		},
		Lost:          map[string]uint64{"open": 5, "exe_hash": 2, "hook": 0},
		TelemetrySeen: map[string]time.Time{"claude-code": statusStart.Add(8 * time.Minute)},
		AgentTrees:    map[string]int{"claude-code": 1},
		AgentSilent:   map[string]int{},
		SelfCheck:     metrics.SelfCheckHealthy,
	}
}

// sensorEndpoint serves the real exposition of a sensor registry with the snapshot.
func sensorEndpoint(t *testing.T, s metrics.Snapshot) string {
	t.Helper()
	reg := metrics.NewRegistry(metrics.Options{Source: "ebpf", Started: statusStart, Snapshot: func() metrics.Snapshot { return s }})
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv.URL + metrics.Path
}

// status runs vigil status and returns its exit status, stdout and stderr.
func status(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runStatus(args, &out, &errOut, statusNow)
	return exitStatus(err), out.String(), errOut.String()
}

func TestStatusHealthy(t *testing.T) {
	url := sensorEndpoint(t, healthySnapshot())
	code, out, _ := status(t, "--metrics", url, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	var h sensorHealth
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !h.Healthy || h.Source != "ebpf" || h.UptimeSeconds != 600 || h.SelfCheck != "healthy" || h.Lost != 7 ||
		len(h.LostByKind) != 2 || h.LostByKind["open"] != 5 || h.LostByKind["exe_hash"] != 2 {
		t.Errorf("report %+v", h)
	}
	if e := h.Events["open"]; e.Events != 340 || !e.Last.Equal(statusStart.Add(9*time.Minute+30*time.Second)) {
		t.Errorf("open events %+v", e)
	}
	if seen := h.TelemetrySeen["claude-code"]; !seen.Equal(statusStart.Add(8 * time.Minute)) {
		t.Errorf("claude-code telemetry seen %v", seen)
	}
	if a := h.Agents["claude-code"]; a != (agentTrees{Running: 1, Silent: 0}) {
		t.Errorf("claude-code trees %+v", a)
	}

	code, out, _ = status(t, "--metrics", url)
	for _, line := range []string{"vigil status: healthy", "source:     ebpf", "uptime:     10m0s", "self-check: healthy",
		"lost:       7 since start (exe_hash 2, open 5)", "open       340, last 2026-12-05T09:09:30Z (30s ago)",
		"claude-code  2026-12-05T09:08:00Z (2m0s ago)", "claude-code  1 running, 0 silent"} {
		if !strings.Contains(out, line) {
			t.Errorf("text report lacks %q:\n%s", line, out)
		}
	}
	if code != 0 {
		t.Errorf("text: exit %d", code)
	}
}

func TestStatusUnhealthy(t *testing.T) {
	silent := healthySnapshot()
	silent.AgentTrees["codex"] = 2
	silent.AgentSilent["codex"] = 1
	failed := healthySnapshot()
	failed.SelfCheck = metrics.SelfCheckFailed
	pending := healthySnapshot()
	pending.SelfCheck = metrics.SelfCheckPending
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + metrics.Path
	down.Close()
	notVigil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "node_load1 0.5") }))
	defer notVigil.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		why  string // in the report, when unhealthy
	}{
		{"an agent silent", []string{"--metrics", sensorEndpoint(t, silent)}, 1, "1 codex tree(s) running silent"},
		{"self-check failed", []string{"--metrics", sensorEndpoint(t, failed)}, 1, "the start-up self-check failed"},
		{"self-check still running", []string{"--metrics", sensorEndpoint(t, pending)}, 0, ""},
		{"loss over --max-lost", []string{"--metrics", sensorEndpoint(t, healthySnapshot()), "--max-lost", "6"}, 1, "7 events lost since the sensor started, more than --max-lost 6"},
		{"loss within --max-lost", []string{"--metrics", sensorEndpoint(t, healthySnapshot()), "--max-lost", "7"}, 0, ""},
		{"unreachable", []string{"--metrics", downURL}, 1, "the metrics endpoint cannot be read: scrape " + downURL},
		{"not a Vigil sensor", []string{"--metrics", notVigil.URL}, 1, "not a Vigil sensor's metrics"},
		{"not found", []string{"--metrics", notVigil.URL + "/metrics"}, 1, "not a Vigil sensor's metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := status(t, append(tc.args, "--format", "json")...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
			}
			var h sensorHealth
			if err := json.Unmarshal([]byte(out), &h); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if h.Healthy != (tc.code == 0) || tc.why != "" && !strings.Contains(strings.Join(h.Reasons, "\n"), tc.why) {
				t.Errorf("healthy %v, reasons %q, want %q", h.Healthy, h.Reasons, tc.why)
			}
			if _, text, _ := status(t, tc.args...); tc.why != "" && !strings.Contains(text, "vigil status: UNHEALTHY") {
				t.Errorf("text report:\n%s", text)
			}
		})
	}
}

// Without --metrics, the address is the configuration's metrics.listen.
func TestStatusReadsTheConfiguredAddress(t *testing.T) {
	url := sensorEndpoint(t, healthySnapshot())
	dir := t.TempDir()
	config := func(listen string) string {
		path := filepath.Join(dir, "vigil.yaml")
		if err := os.WriteFile(path, []byte("metrics:\n  listen: \""+listen+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	hostPort := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), metrics.Path)
	if code, out, _ := status(t, "--config", config(hostPort)); code != 0 || !strings.Contains(out, "("+url+")") {
		t.Errorf("exit %d, want 0 reading %s:\n%s", code, url, out)
	}
	var out, errOut bytes.Buffer
	err := runStatus([]string{"--config", config("")}, &out, &errOut, statusNow)
	if exitStatus(err) != 1 || err == nil || !strings.Contains(err.Error(), "metrics.listen is empty") {
		t.Errorf("metrics off: %v (exit %d)", err, exitStatus(err))
	}
}

func TestStatusUsage(t *testing.T) {
	for _, args := range [][]string{{"--format", "yaml"}, {"extra"}, {"--max-lost", "-2"}, {"--no-such-flag"}} {
		if code, _, _ := status(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	var out, errOut bytes.Buffer
	err := runStatus([]string{"--help"}, &out, &errOut, statusNow)
	if !errors.Is(err, flag.ErrHelp) || exitStatus(err) != 0 {
		t.Errorf("--help: %v (exit %d), want flag.ErrHelp, exit 0", err, exitStatus(err))
	}
	if n := strings.Count(errOut.String(), "Usage: vigil status"); n != 1 || !strings.Contains(errOut.String(), "Exit status: 0 healthy; 1 unhealthy") {
		t.Errorf("--help printed the usage %d times:\n%s", n, errOut.String())
	}
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9464":                "http://127.0.0.1:9464/metrics",
		"0.0.0.0:9464":                  "http://127.0.0.1:9464/metrics",
		"[::]:9464":                     "http://[::1]:9464/metrics",
		"localhost:9464":                "http://localhost:9464/metrics",
		"http://10.0.0.5:9464/metrics":  "http://10.0.0.5:9464/metrics",
		"https://vigil.example/metrics": "https://vigil.example/metrics",
	} {
		if got := metricsURL(in); got != want {
			t.Errorf("metricsURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {fmt.Errorf("rules: %w", flag.ErrHelp), 0},
		{usageError{errors.New("bad flag")}, 2}, {errUnhealthy, 1}, {errors.New("open: permission denied"), 1},
	} {
		if got := exitStatus(tc.err); got != tc.want {
			t.Errorf("exitStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
