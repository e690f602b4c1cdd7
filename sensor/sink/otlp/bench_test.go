package otlp

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkExport is the exporter's throughput to a loopback server that decodes every
// request, per protocol: records written, batched, encoded, compressed and sent (make
// bench-otlp runs it with -cpu 1, so the server shares the one core). Bytes are the records'
// JSON lines.
func BenchmarkExport(b *testing.B) {
	for _, p := range Protocols {
		b.Run(string(p), func(b *testing.B) {
			srv := &server{t: &testing.T{}, protocol: p, addr: "127.0.0.1:0", discard: true}
			srv.start()
			defer srv.stop()
			ev := testEvent(1)
			line := lineOf(b, ev)
			e, err := Open(Options{
				Endpoint: srv.endpoint(), Protocol: p, SpoolDir: filepath.Join(b.TempDir(), "spool"),
				CloseTimeout: time.Minute, SpoolMaxBytes: 1 << 30,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(line)))
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
			st := e.Stats()
			if st.Sent != uint64(b.N) {
				b.Fatalf("sent %d of %d (stats %+v)", st.Sent, b.N, st)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Retried), "retried")
		})
	}
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
		p, err := encodeBatch(bt)
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.append(p, len(bt.records)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSpoolReplay is the rate at which spooled records are read back and decoded for
// sending (the network left out): how fast a spool drains behind a fast endpoint.
func BenchmarkSpoolReplay(b *testing.B) {
	sp, _, err := openSpool(filepath.Join(b.TempDir(), "spool"), 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	bt := testBatch(b, 0, DefaultMaxBatchRecords)
	p, err := encodeBatch(bt)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i += DefaultMaxBatchRecords {
		if err := sp.append(p, len(bt.records)); err != nil {
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
		if _, err := decodeBatch(payload); err != nil {
			b.Fatal(err)
		}
		if err := sp.commit(count); err != nil {
			b.Fatal(err)
		}
		n += count
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
