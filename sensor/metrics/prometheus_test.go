package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

// TestRealPrometheusScrapes runs a real Prometheus server (Debian's prometheus package, which
// .ci/run installs) against the endpoint, scraping every second, and reads the families back
// through its query API: the exposition is what a real scraper accepts, names, labels, types
// and values included. Everything binds 127.0.0.1.
func TestRealPrometheusScrapes(t *testing.T) {
	promBin := testenv.LookPath(t, "prometheus")
	snap := testSnapshot
	srv, err := Listen("127.0.0.1:0", NewRegistry(Options{Source: "ebpf", Started: testStart, Snapshot: func() Snapshot { return snap }}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: [%q]
`, srv.Addr()), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := freeLoopbackAddr(t)
	var logs syncBuffer
	cmd := exec.Command(promBin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})

	want := map[string]float64{
		`vigil_events_total{kind="open"}`:                                  340,
		`vigil_events_total{kind="exec"}`:                                  12,
		`vigil_events_lost_total{kind="open"}`:                             7,
		`vigil_sink_lost_total{sink="store"}`:                              3,
		`vigil_agent_silent{agent="codex"}`:                                1,
		`vigil_self_check_healthy`:                                         1,
		`vigil_ring_buffer_size_bytes`:                                     4 << 20,
		`vigil_source_info{source="ebpf"}`:                                 1,
		`up{job="vigil"}`:                                                  1,
		`vigil_telemetry_last_seen_timestamp_seconds{agent="claude-code"}`: float64(testStart.Add(80 * time.Second).Unix()),
	}
	deadline := time.Now().Add(60 * time.Second) // Prometheus starts, then scrapes every second
	for query, value := range want {
		for {
			got, err := promQuery(promAddr, query)
			if err == nil && got == value {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("query %s: got %v, %v; want %v", query, got, err, value)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// promQuery asks Prometheus for the one sample a query selects, at the latest scrape.
func promQuery(addr, query string) (float64, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("decode the answer: %w", err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", body.Error)
	}
	if len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("%d series, want 1", len(body.Data.Result))
	}
	s, ok := body.Data.Result[0].Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", body.Data.Result[0].Value[1])
	}
	return strconv.ParseFloat(s, 64)
}

// freeLoopbackAddr is a port free a moment ago: Prometheus takes no port 0.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a child's output, written from the exec package's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
