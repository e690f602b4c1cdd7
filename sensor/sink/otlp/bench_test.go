package otlp

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// BenchmarkExport is the exporter's throughput to a loopback server that decodes every
// request, per protocol: records written, batched, encoded, compressed and sent (make
// bench-otlp runs it with -cpu 1, so the server shares the one core). Bytes are the records'
// JSON lines.
func BenchmarkExport(b *testing.B) {
	for _, p := range Protocols {
		b.Run(string(p), func(b *testing.B) {
			srv := &server{t: &testing.T{}, protocol: p, addr: otlptest.FreeAddr(b), discard: true}
			srv.start()
			defer srv.stop()
			st, _ := exportAll(b, srv.endpoint(), p)
			b.ReportMetric(float64(st.Retried), "retried")
		})
	}
}

// BenchmarkExportCollector is the exporter's throughput and CPU cost per record when the
// endpoint is a real OpenTelemetry Collector in a process of its own (the other core, here),
// so that only the exporter's work is on the benchmark's one core: cpu-ns/record is this
// process's CPU time (user+system, getrusage) per record sent.
func BenchmarkExportCollector(b *testing.B) {
	for _, p := range Protocols {
		b.Run(string(p), func(b *testing.B) {
			col := otlptest.New(b)
			col.Start()
			defer func() { col.Stop(); col.Wait() }()
			endpoint := "http://" + col.GRPCAddr
			if p != ProtocolGRPC {
				endpoint = "http://" + col.HTTPAddr
			}
			_, cpu := exportAll(b, endpoint, p)
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
		})
	}
}

// exportAll times b.N records written to an exporter sending to endpoint, until Close has
// sent them all (failing the benchmark when one was not), and reports records/s; it returns
// the exporter's stats and this process's CPU time over the timed part.
func exportAll(b *testing.B, endpoint string, p Protocol) (Stats, time.Duration) {
	ev := testEvent(1)
	line := lineOf(b, ev)
	e, err := Open(Options{
		Endpoint: endpoint, Protocol: p, SpoolDir: filepath.Join(b.TempDir(), "spool"),
		CloseTimeout: time.Minute, SpoolMaxBytes: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(line)))
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		if err := e.WriteLine(ev, line); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	st := e.Stats()
	if st.Sent != uint64(b.N) {
		b.Fatalf("sent %d of %d (stats %+v)", st.Sent, b.N, st)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	return st, cpu
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSpoolWrite is the spool's append rate, in batches of the default size: what the
// exporter can put aside per second while the endpoint is down.
func BenchmarkSpoolWrite(b *testing.B) {
	sp, _, err := openSpool(filepath.Join(b.TempDir(), "spool"), 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	bt := testBatch(b, 0, DefaultMaxBatchRecords)
	b.ResetTimer()
	for i := 0; i < b.N; i += DefaultMaxBatchRecords {
		if err := sp.append(encodeBatch(bt), bt.count); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSpoolReplay is the rate at which spooled records are read back, checked and
// assembled into a request (the network left out): how fast a spool drains behind a fast
// endpoint.
func BenchmarkSpoolReplay(b *testing.B) {
	sp, _, err := openSpool(filepath.Join(b.TempDir(), "spool"), 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	bt := testBatch(b, 0, DefaultMaxBatchRecords)
	p := encodeBatch(bt)
	for i := 0; i < b.N; i += DefaultMaxBatchRecords {
		if err := sp.append(p, bt.count); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	n := 0
	for {
		payload, count, _, err := sp.peek()
		if err != nil {
			b.Fatal(err)
		}
		if payload == nil {
			break
		}
		bt, err := decodeBatch(payload)
		if err != nil {
			b.Fatal(err)
		}
		_ = requestBytes(envelope{}, bt, bt.attempt+1)
		if err := sp.commit(count); err != nil {
			b.Fatal(err)
		}
		n += count
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
