package otlp

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	otlptest.RemoveBuild()
	os.Exit(code)
}

// TestCollector sends records through a real OpenTelemetry Collector over each protocol,
// stops the collector mid-stream, keeps writing (the exporter retries and spools), starts it
// again, and reads what the collector's file exporter wrote: every record the test marked
// arrives, exactly once or as a duplicate marked by its attempt, and in order.
func TestCollector(t *testing.T) {
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			c := otlptest.New(t)
			c.Start()
			endpoint := "http://" + c.GRPCAddr
			if p != ProtocolGRPC {
				endpoint = "http://" + c.HTTPAddr
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
					c.Stop() // mid-stream: batches are in flight
				case n / 2:
					c.Wait() // the next quarter is written while it is down
				case 3 * n / 4:
					otlptest.WaitFor(t, "records in the spool while the collector is down", func() bool { return e.Stats().SpooledRecords > 0 })
					c.Start()
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
			c.Stop()
			c.Wait()

			recs := arrived(c.Records())
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

// arrived is the collector's records with the exporter's record id and attempt read out.
func arrived(recs []otlptest.Record) []got {
	out := make([]got, len(recs))
	for i, r := range recs {
		id, _ := r.Attrs[AttrRecordID].(string)
		out[i] = got{id: id, attempt: r.Int(AttrAttempt), body: r.Body, attrs: r.Attrs, resource: r.Resource}
	}
	return out
}
