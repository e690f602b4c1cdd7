package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-sensor/vigil/sensor/metrics"
)

// statusUsage says what `vigil status` checks, because scripts act on its exit status.
const statusUsage = `Usage: vigil status [--metrics URL] [--config FILE] [--max-lost N] [--format text|json]
  Read the running sensor's metrics endpoint and print its health: source, uptime,
  self-check, events lost (in total and per kind), the newest event per kind, when each
  agent's telemetry last arrived, and the agent trees running and silent.

  Exit status: 0 healthy; 1 unhealthy, which is any of
    - the endpoint cannot be read (sensor down, metrics.listen off, not a Vigil sensor),
    - the start-up self-check failed (vigil_self_check_healthy 0),
    - an agent tree runs silent (vigil_agent_silent > 0: the agent.silent alert was raised
      for it and no trusted telemetry or hook has named it since),
    - with --max-lost N, more than N events lost since the sensor started;
  2 a mistake on the command line. Loss is always printed; it does not fail the check
  unless --max-lost is given, because a burst lost an hour ago stays in the count until the
  sensor restarts.

  Without --metrics the address is metrics.listen of --config, else of /etc/vigil/vigil.yaml
  when it exists, else of the embedded default (127.0.0.1:9464).
`

// statusTimeout bounds the scrape: a sensor that cannot answer in it is unhealthy.
const statusTimeout = 5 * time.Second

// maxScrapeBytes bounds what is read of the page (a few KiB normally).
const maxScrapeBytes = 16 << 20

// errUnhealthy is the exit status 1 of a sensor read but found unhealthy; the report says why.
var errUnhealthy = errors.New("sensor unhealthy")

func statusCommand(args []string) error {
	return runStatus(args, os.Stdout, os.Stderr, time.Now)
}

// sensorHealth is what `vigil status` reports.
type sensorHealth struct {
	URL     string   `json:"url"`
	Healthy bool     `json:"healthy"`
	Reasons []string `json:"unhealthy_because,omitempty"`
	// Error is why the endpoint could not be read; the rest is empty then.
	Error         string                `json:"error,omitempty"`
	Source        string                `json:"source,omitempty"`
	Started       *time.Time            `json:"started,omitempty"`
	UptimeSeconds float64               `json:"uptime_seconds,omitempty"`
	SelfCheck     string                `json:"self_check,omitempty"` // healthy, failed, pending or off
	Lost          uint64                `json:"lost"`
	LostByKind    map[string]uint64     `json:"lost_by_kind,omitempty"`
	Events        map[string]kindHealth `json:"events,omitempty"`
	TelemetrySeen map[string]time.Time  `json:"telemetry_seen,omitempty"`
	Agents        map[string]agentTrees `json:"agents,omitempty"`
}

type kindHealth struct {
	Events uint64    `json:"events"`
	Last   time.Time `json:"last"`
}

type agentTrees struct {
	Running int `json:"running"`
	Silent  int `json:"silent"`
}

func runStatus(args []string, out, errOut io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(errOut)
	url := fs.String("metrics", "", "metrics URL or host:port of the sensor (default: metrics.listen of the configuration)")
	configPath := fs.String("config", "", "configuration file whose metrics.listen to read")
	maxLost := fs.Int64("max-lost", -1, "unhealthy when more events than this were lost since the sensor started; -1: loss does not fail the check")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprint(errOut, statusUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *format != "text" && *format != "json" || *maxLost < -1 {
		return usageError{fmt.Errorf("status: want [--metrics URL] [--config FILE] [--max-lost N>=-1] [--format text|json], got %q", strings.Join(args, " "))}
	}
	target := *url
	if target == "" {
		listen, err := configuredListen(*configPath)
		if err != nil {
			return err
		}
		target = listen
	}
	h := sensorHealth{URL: metricsURL(target)}
	if fams, err := scrape(h.URL); err != nil {
		h.Error = err.Error()
	} else {
		h.read(fams, now())
	}
	h.judge(*maxLost)
	if *format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(h); err != nil {
			return fmt.Errorf("status: write: %w", err)
		}
	} else {
		h.writeText(out, now())
	}
	if !h.Healthy {
		return errUnhealthy
	}
	return nil
}

// configuredListen is metrics.listen of the configuration `vigil run` would read.
func configuredListen(given string) (string, error) {
	cfg, path, err := loadConfig(given, "")
	if err != nil {
		return "", fmt.Errorf("status: %w (or give --metrics)", err)
	}
	if cfg.Metrics.Listen == "" {
		name := path
		if name == "" {
			name = "the embedded default"
		}
		return "", fmt.Errorf("status: metrics.listen is empty in %s: the sensor serves no metrics (or give --metrics)", name)
	}
	return cfg.Metrics.Listen, nil
}

// metricsURL makes a URL of a listen address: host:port becomes http://host:port/metrics,
// and an address listening on every interface is reached on loopback.
func metricsURL(target string) string {
	if strings.Contains(target, "://") {
		return target
	}
	if host, port, err := net.SplitHostPort(target); err == nil {
		switch host {
		case "", "0.0.0.0":
			target = net.JoinHostPort("127.0.0.1", port)
		case "::":
			target = net.JoinHostPort("::1", port)
		}
	}
	return "http://" + target + metrics.Path
}

// scrape reads the exposition at url in the text format.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := (&http.Client{Timeout: statusTimeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxScrapeBytes))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: parse: %w", url, err)
	}
	if _, ok := fams["vigil_source_info"]; !ok {
		return nil, fmt.Errorf("scrape %s: no vigil_source_info: not a Vigil sensor's metrics", url)
	}
	return fams, nil
}

// read fills h from the families.
func (h *sensorHealth) read(fams map[string]*dto.MetricFamily, now time.Time) {
	each := func(name string, f func(label string, v float64)) {
		fam := fams[name]
		if fam == nil {
			return
		}
		for _, m := range fam.GetMetric() {
			label := ""
			if ls := m.GetLabel(); len(ls) > 0 {
				label = ls[0].GetValue()
			}
			switch {
			case m.Counter != nil:
				f(label, m.Counter.GetValue())
			case m.Gauge != nil:
				f(label, m.Gauge.GetValue())
			case m.Untyped != nil:
				f(label, m.Untyped.GetValue())
			}
		}
	}
	each("vigil_source_info", func(source string, _ float64) { h.Source = source })
	each("vigil_start_time_seconds", func(_ string, v float64) {
		t := fromUnixSeconds(v)
		h.Started, h.UptimeSeconds = &t, math.Round(now.Sub(t).Seconds())
	})
	h.SelfCheck = "off"
	each("vigil_self_check_pending", func(_ string, v float64) {
		if v == 1 {
			h.SelfCheck = "pending"
		}
	})
	each("vigil_self_check_healthy", func(_ string, v float64) {
		h.SelfCheck = map[bool]string{true: "healthy", false: "failed"}[v == 1]
	})
	h.LostByKind = map[string]uint64{}
	each("vigil_events_lost_total", func(kind string, v float64) {
		if v > 0 {
			h.LostByKind[kind] = uint64(v)
			h.Lost += uint64(v)
		}
	})
	h.Events = map[string]kindHealth{}
	each("vigil_events_total", func(kind string, v float64) {
		h.Events[kind] = kindHealth{Events: uint64(v), Last: h.Events[kind].Last}
	})
	each("vigil_last_event_timestamp_seconds", func(kind string, v float64) {
		k := h.Events[kind]
		k.Last = fromUnixSeconds(v)
		h.Events[kind] = k
	})
	h.TelemetrySeen = map[string]time.Time{}
	each("vigil_telemetry_last_seen_timestamp_seconds", func(agent string, v float64) { h.TelemetrySeen[agent] = fromUnixSeconds(v) })
	h.Agents = map[string]agentTrees{}
	each("vigil_agent_trees", func(agent string, v float64) {
		a := h.Agents[agent]
		a.Running = int(v)
		h.Agents[agent] = a
	})
	each("vigil_agent_silent", func(agent string, v float64) {
		a := h.Agents[agent]
		a.Silent = int(v)
		h.Agents[agent] = a
	})
}

// judge decides Healthy, with the reasons when not (statusUsage says which).
func (h *sensorHealth) judge(maxLost int64) {
	if h.Error != "" {
		h.Reasons = append(h.Reasons, "the metrics endpoint cannot be read: "+h.Error)
	}
	if h.SelfCheck == "failed" {
		h.Reasons = append(h.Reasons, "the start-up self-check failed: the source did not deliver the canary's events (see the sensor's log)")
	}
	for _, agent := range slices.Sorted(maps.Keys(h.Agents)) {
		if n := h.Agents[agent].Silent; n > 0 {
			h.Reasons = append(h.Reasons, fmt.Sprintf("%d %s tree(s) running silent: working with no trusted telemetry or hook", n, agent))
		}
	}
	if maxLost >= 0 && h.Lost > uint64(maxLost) {
		h.Reasons = append(h.Reasons, fmt.Sprintf("%d events lost since the sensor started, more than --max-lost %d", h.Lost, maxLost))
	}
	h.Healthy = len(h.Reasons) == 0
}

// writeText prints the report for a person.
func (h *sensorHealth) writeText(w io.Writer, now time.Time) {
	verdict := "healthy"
	if !h.Healthy {
		verdict = "UNHEALTHY"
	}
	fmt.Fprintf(w, "vigil status: %s (%s)\n", verdict, h.URL)
	for _, r := range h.Reasons {
		fmt.Fprintf(w, "  ! %s\n", r)
	}
	if h.Error != "" {
		return
	}
	ago := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	fmt.Fprintf(w, "source:     %s\n", h.Source)
	if h.Started != nil {
		fmt.Fprintf(w, "uptime:     %s (since %s)\n", (time.Duration(h.UptimeSeconds) * time.Second).String(), h.Started.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "self-check: %s\n", h.SelfCheck)
	fmt.Fprintf(w, "lost:       %d since start", h.Lost)
	if len(h.LostByKind) > 0 {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(h.LostByKind)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, h.LostByKind[k]))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "events:")
	if len(h.Events) == 0 {
		fmt.Fprintln(w, "  none yet")
	}
	for _, k := range slices.Sorted(maps.Keys(h.Events)) {
		fmt.Fprintf(w, "  %-10s %d, last %s\n", k, h.Events[k].Events, ago(h.Events[k].Last))
	}
	fmt.Fprintln(w, "telemetry seen:")
	if len(h.TelemetrySeen) == 0 {
		fmt.Fprintln(w, "  none yet")
	}
	for _, a := range slices.Sorted(maps.Keys(h.TelemetrySeen)) {
		fmt.Fprintf(w, "  %-12s %s\n", a, ago(h.TelemetrySeen[a]))
	}
	fmt.Fprintln(w, "agent trees:")
	if len(h.Agents) == 0 {
		fmt.Fprintln(w, "  none running")
	}
	for _, a := range slices.Sorted(maps.Keys(h.Agents)) {
		fmt.Fprintf(w, "  %-12s %d running, %d silent\n", a, h.Agents[a].Running, h.Agents[a].Silent)
	}
}

// fromUnixSeconds is the inverse of the collector's Unix seconds, to the microsecond (what a
// float64 of today's seconds holds).
func fromUnixSeconds(v float64) time.Time {
	return time.UnixMicro(int64(math.Round(v * 1e6))).UTC()
}
