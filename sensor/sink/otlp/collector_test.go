package otlp

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

// The collector helper (internal/collector, a module of its own) is built once per test run;
// Go's build cache makes later runs quick.
var (
	collectorOnce sync.Once
	collectorBin  string
	collectorErr  error
	collectorDir  string
)

func buildCollector(t *testing.T) string {
	t.Helper()
	collectorOnce.Do(func() {
		collectorDir, collectorErr = os.MkdirTemp("", "vigil-otelcol-")
		if collectorErr != nil {
			return
		}
		collectorBin = filepath.Join(collectorDir, "otelcol")
		cmd := exec.Command("go", "build", "-o", collectorBin, ".")
		cmd.Dir = filepath.Join("internal", "collector")
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			collectorErr = fmt.Errorf("go build the test collector: %v\n%s", err, out)
		}
	})
	if collectorErr != nil {
		testenv.Skipf(t, "the OpenTelemetry Collector helper does not build (the Go module proxy unreachable?): %v", collectorErr)
	}
	return collectorBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if collectorDir != "" {
		_ = os.RemoveAll(collectorDir)
	}
	os.Exit(code)
}

// collector is a running OpenTelemetry Collector: OTLP in on two loopback ports, records out
// to a file by the contrib file exporter.
type collector struct {
	t                  *testing.T
	bin, dir           string
	grpcAddr, httpAddr string
	cmd                *exec.Cmd
	outputs            []string // one file per run, in run order
}

func newCollector(t *testing.T) *collector {
	c := &collector{t: t, bin: buildCollector(t), dir: t.TempDir(), grpcAddr: freeAddr(t), httpAddr: freeAddr(t)}
	t.Cleanup(func() {
		if c.cmd != nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// freeAddr is a loopback port free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the collector writing to a new file, and waits until both receivers listen.
func (c *collector) start() {
	c.t.Helper()
	out := filepath.Join(c.dir, fmt.Sprintf("out-%d.json", len(c.outputs)+1))
	cfg := filepath.Join(c.dir, fmt.Sprintf("config-%d.yaml", len(c.outputs)+1))
	yaml := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
exporters:
  file:
    path: %s
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
`, c.grpcAddr, c.httpAddr, out)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(c.bin, "--config", cfg)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start collector: %v", err)
	}
	c.outputs = append(c.outputs, out)
	for _, addr := range []string{c.grpcAddr, c.httpAddr} {
		waitFor(c.t, "the collector listening on "+addr, func() bool {
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}
}

// stop sends SIGTERM (the collector drains its pipeline and flushes the file) without waiting;
// wait waits for the exit.
func (c *collector) stop() {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("stop collector: %v", err)
	}
}

func (c *collector) wait() {
	c.t.Helper()
	_ = c.cmd.Wait() // a SIGTERM'd collector exits 0; anything else shows in the records
	c.cmd = nil
}

// arrived is every LogRecord in the collector's output files, in the order written.
func (c *collector) arrived() []got {
	c.t.Helper()
	var out []got
	for _, path := range c.outputs {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue // a run that received nothing
		}
		if err != nil {
			c.t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var ld logspb.LogsData
			if err := protojson.Unmarshal(sc.Bytes(), &ld); err != nil {
				c.t.Fatalf("%s: a line the file exporter wrote is not OTLP JSON: %v", path, err)
			}
			for _, rl := range ld.GetResourceLogs() {
				for _, sl := range rl.GetScopeLogs() {
					for _, lr := range sl.GetLogRecords() {
						a := attrMap(lr.GetAttributes())
						id, _ := a[AttrRecordID].(string)
						att, _ := a[AttrAttempt].(int64)
						if s, ok := a[AttrAttempt].(string); ok { // pdata's JSON writes int64 as a string
							att, _ = strconv.ParseInt(s, 10, 64)
						}
						out = append(out, got{id: id, attempt: att, body: lr.GetBody().GetStringValue(), attrs: a, resource: attrMap(rl.GetResource().GetAttributes())})
					}
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			c.t.Fatal(err)
		}
	}
	return out
}

// TestCollector sends records through a real OpenTelemetry Collector over each protocol,
// stops the collector mid-stream, keeps writing (the exporter retries and spools), starts it
// again, and reads what the collector's file exporter wrote: every record the test marked
// arrives, exactly once or as a duplicate marked by its attempt, and in order.
func TestCollector(t *testing.T) {
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			c := newCollector(t)
			c.start()
			endpoint := "http://" + c.grpcAddr
			if p != ProtocolGRPC {
				endpoint = "http://" + c.httpAddr
			}
			o := Options{
				Endpoint: endpoint, Protocol: p,
				MaxBatchRecords: 25, MaxDelay: 20 * time.Millisecond,
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				CloseTimeout: 30 * time.Second,
				SpoolDir:     filepath.Join(t.TempDir(), "spool"), InstanceID: "col",
				ServiceVersion: "test", HostName: "devbox",
			}
			e := open(t, o)
			const n = 1000
			for i := range n {
				switch i {
				case n / 4:
					c.stop() // mid-stream: batches are in flight
				case n / 2:
					c.wait() // the next quarter is written while it is down
				case 3 * n / 4:
					waitFor(t, "records in the spool while the collector is down", func() bool { return e.Stats().SpooledRecords > 0 })
					c.start()
				}
				ev := testEvent(i)
				ev.Event.Dataset = "collector." + string(p)
				if err := e.WriteLine(ev, lineOf(t, ev)); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			c.stop()
			c.wait()

			recs := c.arrived()
			seen := map[string]int{}
			var firstSeqs []uint64
			marked := 0
			for i, m := range markers(t, recs) {
				g := recs[i]
				if g.seq(t) != uint64(m+1) {
					t.Fatalf("record %s carries marker %d: the id and the body disagree", g.id, m)
				}
				if seen[g.id] > 0 {
					if g.attempt < 2 {
						t.Errorf("record %s arrived again with attempt %d: an unmarked duplicate", g.id, g.attempt)
					}
					marked++
				} else {
					firstSeqs = append(firstSeqs, g.seq(t))
				}
				seen[g.id]++
			}
			if len(firstSeqs) != n {
				t.Fatalf("%d distinct records arrived, want %d (stats %+v)", len(firstSeqs), n, e.Stats())
			}
			for i, s := range firstSeqs {
				if s != uint64(i+1) {
					t.Fatalf("the %dth distinct record to arrive is number %d: out of order", i+1, s)
				}
			}
			if st := e.Stats(); st.SpooledRecords != 0 {
				t.Errorf("%d records still spooled after Close", st.SpooledRecords)
			}
			if recs[0].resource["service.name"] != "vigil" || recs[0].attrs["event.dataset"] != "collector."+string(p) {
				t.Errorf("resource %v, attributes %v", recs[0].resource, recs[0].attrs)
			}
			t.Logf("%s: %d records, %d duplicates (marked), %d retried by the exporter", p, n, marked, e.Stats().Retried)
		})
	}
}
