// Package otlptest runs a real OpenTelemetry Collector for tests: the one built from the
// collector's own Go modules in sensor/sink/otlp/internal/collector (OTLP receiver, contrib
// file exporter), on loopback ports, and reads back every log record its file exporter wrote.
// Both the exporter's tests and the sensor's end-to-end tests send through it, so that what
// arrives is judged by an independent implementation of OTLP, not by Vigil's own decoder.
package otlptest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

// The collector is built once per test binary; Go's build cache makes later runs quick.
var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles the collector module into a temporary directory, which RemoveBuild removes.
func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, here, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = fmt.Errorf("locate the collector module: no caller information")
			return
		}
		var dir string
		if dir, buildErr = os.MkdirTemp("", "vigil-otelcol-"); buildErr != nil {
			return
		}
		binary = filepath.Join(dir, "otelcol")
		cmd := exec.Command("go", "build", "-o", binary, ".")
		cmd.Dir = filepath.Join(filepath.Dir(here), "..", "internal", "collector")
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build the test collector: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		testenv.Skipf(t, "the OpenTelemetry Collector helper does not build (the Go module proxy unreachable?): %v", buildErr)
	}
	return binary
}

// RemoveBuild removes the collector binary, if one was built: call it from TestMain after
// the tests ran.
func RemoveBuild() {
	if binary != "" {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
}

// Collector is a real OpenTelemetry Collector: OTLP in on two loopback ports (GRPCAddr,
// HTTPAddr), records out to a file per run by the contrib file exporter.
type Collector struct {
	GRPCAddr, HTTPAddr string

	t       testing.TB
	bin     string
	dir     string
	cmd     *exec.Cmd
	outputs []string // one file per run, in run order
}

// New builds (once) and prepares a collector on two free loopback ports; Start runs it. It is
// killed at the test's end if still running.
func New(t testing.TB) *Collector {
	t.Helper()
	c := &Collector{t: t, bin: build(t), dir: t.TempDir(), GRPCAddr: FreeAddr(t), HTTPAddr: FreeAddr(t)}
	t.Cleanup(func() {
		if c.cmd != nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// FreeAddr is a loopback address whose port was free a moment ago, taken below the kernel's
// ephemeral range. A test that stops its endpoint and starts it again on the same port needs
// that: while it is down, the exporter's own connection attempts (and any other outgoing
// connection on the machine) take ports from the ephemeral range, and a client socket can
// even connect to itself when its local port is the one it dials. Either would hold the port
// the endpoint restarts on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken: try another
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatalf("no free loopback port between 10000 and %d", low)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default 32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= 10100 {
		return 32768
	}
	return low
}

// Start runs the collector writing to a new file, and waits until both receivers listen.
func (c *Collector) Start() {
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
`, c.GRPCAddr, c.HTTPAddr, out)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(c.bin, "--config", cfg)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start collector: %v", err)
	}
	c.outputs = append(c.outputs, out)
	for _, addr := range []string{c.GRPCAddr, c.HTTPAddr} {
		WaitFor(c.t, "the collector listening on "+addr, func() bool {
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}
}

// Stop sends SIGTERM (the collector drains its pipeline and flushes the file) without
// waiting; Wait waits for the exit.
func (c *Collector) Stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("stop collector: %v", err)
	}
}

// Wait waits for the collector to exit after Stop.
func (c *Collector) Wait() {
	c.t.Helper()
	_ = c.cmd.Wait() // a SIGTERM'd collector exits 0; anything else shows in the records
	c.cmd = nil
}

// Record is one log record as the collector's file exporter wrote it.
type Record struct {
	Body     string
	Attrs    map[string]any
	Resource map[string]any
}

// Records is every log record in the collector's output files, in the order written.
func (c *Collector) Records() []Record {
	c.t.Helper()
	var out []Record
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
						out = append(out, Record{Body: lr.GetBody().GetStringValue(), Attrs: AttrMap(lr.GetAttributes()), Resource: AttrMap(rl.GetResource().GetAttributes())})
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

// Int is attribute key of r as an integer: pdata's JSON writes an int64 as a string.
func (r Record) Int(key string) int64 {
	switch v := r.Attrs[key].(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

// AttrMap is OTLP attributes as a map: strings and integers as such, any other value as its
// protobuf message.
func AttrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		default:
			m[kv.GetKey()] = v
		}
	}
	return m
}

// WaitFor polls cond until it holds, failing the test after 20 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
