package otlp

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// testOptions are quick ones for a loopback server: short delays and backoffs, a spool in the
// test's directory, the resource set by hand.
func testOptions(t *testing.T, srv *server) Options {
	return Options{
		Endpoint:        srv.endpoint(),
		Protocol:        srv.protocol,
		Headers:         map[string]string{"x-api-key": "secret-key"},
		MaxBatchRecords: 10,
		MaxDelay:        20 * time.Millisecond,
		MinBackoff:      5 * time.Millisecond,
		MaxBackoff:      50 * time.Millisecond,
		CloseTimeout:    10 * time.Second,
		SpoolDir:        filepath.Join(t.TempDir(), "spool"),
		InstanceID:      "inst1",
		ServiceVersion:  "1.2.3",
		HostName:        "devbox",
		HostID:          "0123456789abcdef",
		OSType:          "linux",
		BootID:          "boot-1",
	}
}

func open(t *testing.T, o Options) *Exporter {
	t.Helper()
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// write writes records from..to-1 as the pipeline does, with their lines.
func write(t *testing.T, e *Exporter, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		ev := testEvent(i)
		if err := e.WriteLine(ev, lineOf(t, ev)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkInOrder checks that records 1..n of instance arrived, each exactly once, in order, and
// that each body is the JSON line of the test's record with that marker.
func checkInOrder(t *testing.T, recs []got, instance string, n int) {
	t.Helper()
	var mine []got
	for _, g := range recs {
		if strings.HasPrefix(g.id, instance+"-") {
			mine = append(mine, g)
		}
	}
	if len(mine) != n {
		t.Fatalf("instance %s: %d records arrived, want %d", instance, len(mine), n)
	}
	for i, g := range mine {
		if g.seq(t) != uint64(i+1) {
			t.Fatalf("instance %s: record %d arrived as number %d (%s): not in order, or not exactly once", instance, i, g.seq(t), g.id)
		}
	}
}

// markers are the event.sequence markers of the bodies, in arrival order.
func markers(t *testing.T, recs []got) []int {
	t.Helper()
	out := make([]int, len(recs))
	for i, g := range recs {
		var ev proto.Event
		if err := proto.UnmarshalJSON([]byte(g.body), &ev); err != nil {
			t.Fatalf("body of %s is not a record: %v", g.id, err)
		}
		out[i] = int(ev.Event.Sequence)
	}
	return out
}

// TestProtocols sends records over each protocol, compressed and not, to a real server that
// decodes them: all arrive in order with the JSON line as body, the routing attributes, the
// resource and the header.
func TestProtocols(t *testing.T) {
	for _, p := range Protocols {
		for _, uncompressed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/uncompressed=%v", p, uncompressed), func(t *testing.T) {
				srv := newServer(t, p, nil)
				o := testOptions(t, srv)
				o.Uncompressed = uncompressed
				e := open(t, o)
				write(t, e, 0, 25)
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				recs := srv.got()
				checkInOrder(t, recs, "inst1", 25)
				for i, g := range recs {
					want := strings.TrimSuffix(string(lineOf(t, testEvent(i))), "\n")
					if g.body != want {
						t.Fatalf("body %d = %s, want %s", i, g.body, want)
					}
					for k, v := range map[string]any{
						"event.kind": "event", "event.category": "file", "event.action": "open",
						"event.dataset": "vigil.kernel", "event.sequence": int64(i), "process.pid": int64(4242),
						"vigil.schema": proto.SchemaVersion, AttrAttempt: int64(1),
					} {
						if g.attrs[k] != v {
							t.Errorf("record %d: %s = %v, want %v", i, k, g.attrs[k], v)
						}
					}
				}
				for k, v := range map[string]any{
					"service.name": "vigil", "service.version": "1.2.3", "host.name": "devbox",
					"host.id": "0123456789abcdef", "os.type": "linux", "vigil.boot_id": "boot-1",
				} {
					if recs[0].resource[k] != v {
						t.Errorf("resource %s = %v, want %v", k, recs[0].resource[k], v)
					}
				}
				srv.mu.Lock()
				defer srv.mu.Unlock()
				for _, h := range srv.headers {
					if h != "secret-key" {
						t.Errorf("a request came with x-api-key %q", h)
					}
				}
				if len(srv.gzipped) != srv.reqs {
					t.Errorf("compression seen on %d of %d requests", len(srv.gzipped), srv.reqs)
				}
				for _, gz := range srv.gzipped {
					if gz == uncompressed {
						t.Errorf("a request came gzip-encoded %v, want %v", gz, !uncompressed)
					}
				}
				if srv.reqs != 3 {
					t.Errorf("%d requests for 25 records in batches of 10, want 3", srv.reqs)
				}
				if st := e.Stats(); st.Sent != 25 || st.Retried != 0 {
					t.Errorf("stats %+v, want 25 sent", st)
				}
			})
		}
	}
}

// TestRetry: a retryable failure is retried after the delay the server asked for (HTTP
// Retry-After, gRPC RetryInfo), the resent records say attempt 2, and nothing is lost.
func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		p     Protocol
		reply reply
	}{
		{ProtocolHTTPProtobuf, reply{httpStatus: http.StatusServiceUnavailable, retryAfter: time.Second}},
		{ProtocolHTTPJSON, reply{httpStatus: http.StatusTooManyRequests, retryAfter: time.Second}},
		{ProtocolGRPC, reply{code: codes.ResourceExhausted, retryAfter: time.Second}},
		{ProtocolGRPC, reply{code: codes.Unavailable}},
	} {
		t.Run(fmt.Sprintf("%s/%d%v", tc.p, tc.reply.httpStatus, tc.reply.code), func(t *testing.T) {
			srv := newServer(t, tc.p, nil)
			srv.setScript(tc.reply)
			o := testOptions(t, srv)
			o.MaxBackoff = 5 * time.Second
			e := open(t, o)
			start := time.Now()
			write(t, e, 0, 10)
			otlptest.WaitFor(t, "the retried batch", func() bool { return len(srv.got()) == 10 })
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			recs := srv.got()
			checkInOrder(t, recs, "inst1", 10)
			if recs[0].attempt != 2 {
				t.Errorf("resent record says attempt %d, want 2", recs[0].attempt)
			}
			if elapsed := recs[0].at.Sub(start); elapsed < tc.reply.retryAfter {
				t.Errorf("retried after %v, before the %v the server asked for", elapsed, tc.reply.retryAfter)
			}
			if st := e.Stats(); st.Retried != 10 || st.Sent != 10 || st.LastError == "" {
				t.Errorf("stats %+v, want 10 retried, 10 sent, the failure as last error", st)
			}
		})
	}
}

// TestRetryMarksEveryRecord: a batch sent three times (two retryable failures) arrives with
// every one of its records saying attempt 3, and the batches behind it, sent once, say 1. The
// request is assembled again for each try: a retry sent with the bytes of the try before would
// arrive saying 1.
func TestRetryMarksEveryRecord(t *testing.T) {
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			srv := newServer(t, p, nil)
			fail := reply{httpStatus: http.StatusServiceUnavailable}
			if p == ProtocolGRPC {
				fail = reply{code: codes.Unavailable}
			}
			srv.setScript(fail, fail)
			e := open(t, testOptions(t, srv))
			write(t, e, 0, 30)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			recs := srv.got()
			checkInOrder(t, recs, "inst1", 30)
			for i, g := range recs {
				want := int64(1)
				if i < 10 {
					want = 3
				}
				if g.attempt != want {
					t.Errorf("record %s arrived saying attempt %d, want %d", g.id, g.attempt, want)
				}
			}
			if st := e.Stats(); st.Retried != 20 || st.Sent != 30 {
				t.Errorf("stats %+v, want 20 retried (10 records twice), 30 sent", st)
			}
		})
	}
}

// TestPermanentFailure: a batch the endpoint refuses for good is dropped and counted, never
// retried, and the next batch goes on.
func TestPermanentFailure(t *testing.T) {
	for _, tc := range []struct {
		p     Protocol
		reply reply
	}{
		{ProtocolHTTPProtobuf, reply{httpStatus: http.StatusBadRequest}},
		{ProtocolHTTPJSON, reply{httpStatus: http.StatusUnauthorized}},
		{ProtocolGRPC, reply{code: codes.InvalidArgument}},
		{ProtocolGRPC, reply{code: codes.ResourceExhausted}}, // without RetryInfo: permanent
	} {
		t.Run(fmt.Sprintf("%s/%d%v", tc.p, tc.reply.httpStatus, tc.reply.code), func(t *testing.T) {
			srv := newServer(t, tc.p, nil)
			srv.setScript(tc.reply)
			e := open(t, testOptions(t, srv))
			write(t, e, 0, 20)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			recs := srv.got()
			if len(recs) != 10 || recs[0].id != "inst1-11" {
				t.Fatalf("%d records arrived starting at %v, want the second batch (inst1-11...)", len(recs), recs)
			}
			st := e.Stats()
			if st.Dropped[DropRejected] != 10 || st.Sent != 10 || srv.requests() != 2 {
				t.Errorf("stats %+v after %d requests, want 10 rejected, 10 sent, 2 requests", st, srv.requests())
			}
			if e.Losses()["otlp_rejected"] != 10 {
				t.Errorf("losses %v, want otlp_rejected 10", e.Losses())
			}
		})
	}
}

// TestPartialSuccess: records a server refuses within a successful request are counted.
func TestPartialSuccess(t *testing.T) {
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			srv := newServer(t, p, nil)
			srv.setScript(reply{rejected: 3})
			e := open(t, testOptions(t, srv))
			write(t, e, 0, 10)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if st := e.Stats(); st.Dropped[DropPartial] != 3 || st.Sent != 7 {
				t.Errorf("stats %+v, want 3 dropped as partial, 7 sent", st)
			}
		})
	}
}

// TestEndpointDown: while the endpoint is down records go to the spool; when it is back they
// are sent, and the records written meanwhile after them: all exactly once, in order.
func TestEndpointDown(t *testing.T) {
	for _, p := range Protocols {
		t.Run(string(p), func(t *testing.T) {
			srv := newServer(t, p, nil)
			srv.stop()
			e := open(t, testOptions(t, srv))
			write(t, e, 0, 200)
			e.Flush()
			otlptest.WaitFor(t, "records in the spool", func() bool { return e.Stats().SpooledRecords > 100 })
			srv.start()
			write(t, e, 200, 250)
			otlptest.WaitFor(t, "all records", func() bool { return len(srv.got()) >= 250 })
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			recs := srv.got()
			checkInOrder(t, recs, "inst1", 250)
			for i, m := range markers(t, recs) {
				if m != i {
					t.Fatalf("record %d carries marker %d", i, m)
				}
			}
			st := e.Stats()
			if st.SpooledRecords != 0 || st.Sent != 250 {
				t.Errorf("stats %+v, want 250 sent and an empty spool", st)
			}
			for r, n := range st.Dropped {
				if n != 0 {
					t.Errorf("%d records dropped as %s", n, r)
				}
			}
		})
	}
}

// TestOrderBehindSpool: once batches are in the spool, a new batch goes behind them even when
// the sender has room for it in memory again; it must not overtake them.
func TestOrderBehindSpool(t *testing.T) {
	for _, p := range []Protocol{ProtocolGRPC, ProtocolHTTPProtobuf} {
		t.Run(string(p), func(t *testing.T) {
			srv := newServer(t, p, nil)
			srv.gate = make(chan struct{})
			e := open(t, testOptions(t, srv))
			write(t, e, 0, 10) // batch 1: the sender takes it, the server holds it
			otlptest.WaitFor(t, "the first request", func() bool { return srv.arrivals.Load() == 1 })
			write(t, e, 10, 100) // 4 batches wait in memory, 5 go to the spool
			if st := e.Stats(); st.SpooledRecords != 50 {
				t.Fatalf("stats %+v, want 50 records spooled behind 5 batches", st)
			}
			srv.gate <- struct{}{} // batch 1 done: the sender takes batch 2 and has room for one more
			otlptest.WaitFor(t, "the second request", func() bool { return srv.arrivals.Load() == 2 })
			write(t, e, 100, 110)
			close(srv.gate)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			checkInOrder(t, srv.got(), "inst1", 110)
		})
	}
}

// TestRestart: records an exporter could not send before Close (the endpoint down) are in the
// spool, and the next exporter on that spool sends them first, before its own.
func TestRestart(t *testing.T) {
	srv := newServer(t, ProtocolGRPC, nil)
	srv.stop()
	o := testOptions(t, srv)
	o.CloseTimeout = 100 * time.Millisecond
	e := open(t, o)
	write(t, e, 0, 95)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.SpooledRecords != 95 {
		t.Fatalf("after Close with the endpoint down: stats %+v, want the 95 records spooled", st)
	}
	srv.start()
	o.InstanceID = "inst2"
	o.CloseTimeout = 10 * time.Second
	e2 := open(t, o)
	write(t, e2, 95, 100)
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	recs := srv.got()
	checkInOrder(t, recs[:95], "inst1", 95)
	checkInOrder(t, recs[95:], "inst2", 5)
	// The first batch was tried in the first run (the endpoint down): sent again from the
	// spool, it says it may have arrived before. Every other batch was never sent until now.
	for i, g := range recs {
		if (i < 10) != (g.attempt >= 2) || g.attempt < 1 {
			t.Errorf("record %s arrived saying attempt %d", g.id, g.attempt)
		}
	}
	for i, m := range markers(t, recs) {
		if m != i {
			t.Fatalf("record %d carries marker %d", i, m)
		}
	}
	if st := e2.Stats(); st.SpooledRecords != 0 || st.Sent != 100 {
		t.Errorf("second run: stats %+v, want 100 sent, the spool empty", st)
	}
	entries, _ := os.ReadDir(o.SpoolDir)
	for _, de := range entries {
		if strings.HasSuffix(de.Name(), segSuffix) {
			t.Errorf("segment %s left after everything was sent", de.Name())
		}
	}
}

// TestSpoolBound: past its bound the spool refuses the newest batches, and counts every
// record it refused; what it kept is the continuous start of the outage, all of it delivered.
func TestSpoolBound(t *testing.T) {
	srv := newServer(t, ProtocolHTTPProtobuf, nil)
	srv.stop()
	o := testOptions(t, srv)
	o.MaxBatchRecords = 1
	o.SpoolMaxBytes = 8 << 10 // a few dozen one-record batches
	o.CloseTimeout = 100 * time.Millisecond
	e := open(t, o)
	const n = 300
	write(t, e, 0, n)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	full := st.Dropped[DropSpoolFull]
	// Close puts what the sender held in memory (the batch it was retrying and the ready
	// ones, one record each) before the spool, past the bound if need be.
	held := int64(readyBatches + 1)
	if full == 0 || st.SpooledRecords+full != n || st.SpooledBytes > o.SpoolMaxBytes+held*st.SpooledBytes/int64(st.SpooledRecords) {
		t.Fatalf("stats %+v: want spooled + dropped(spool_full) = %d, some dropped, at most %d bytes and %d held batches", st, n, o.SpoolMaxBytes, held)
	}
	srv.start()
	o.InstanceID = "inst2"
	o.CloseTimeout = 10 * time.Second
	e2 := open(t, o)
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, srv.got(), "inst1", int(n-full))
}

// TestWrite: a record handed without its line is encoded as the JSONL sink would write it.
func TestWrite(t *testing.T) {
	srv := newServer(t, ProtocolHTTPProtobuf, nil)
	e := open(t, testOptions(t, srv))
	if err := e.Write(testEvent(3)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	recs := srv.got()
	if want := strings.TrimSuffix(string(lineOf(t, testEvent(3))), "\n"); len(recs) != 1 || recs[0].body != want {
		t.Fatalf("got %v, want one record with body %s", recs, want)
	}
}

// TestWriteAfterClose is counted, not silent.
func TestWriteAfterClose(t *testing.T) {
	srv := newServer(t, ProtocolGRPC, nil)
	e := open(t, testOptions(t, srv))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Write(testEvent(1)); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if e.Losses()["otlp_closed"] != 1 {
		t.Errorf("losses %v, want otlp_closed 1", e.Losses())
	}
}

func TestOptions(t *testing.T) {
	base := Options{Endpoint: "127.0.0.1:4317", SpoolDir: "/tmp/x"}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"no endpoint", func(o *Options) { o.Endpoint = "" }, "no endpoint"},
		{"bad protocol", func(o *Options) { o.Protocol = "http" }, "not one of"},
		{"no spool", func(o *Options) { o.SpoolDir = "" }, "no spool directory"},
		{"cert without key", func(o *Options) { o.TLS.CertFile = "/c.pem" }, "both its cert file and its key file"},
	} {
		o := base
		tc.edit(&o)
		got, err := o.withDefaults()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if err == nil && (got.Protocol != ProtocolGRPC || got.MaxBatchRecords != DefaultMaxBatchRecords || got.InstanceID == "") {
			t.Errorf("%s: defaults not filled: %+v", tc.name, got)
		}
	}
	for _, tc := range []struct {
		endpoint  string
		insecure  bool
		host      string
		plaintext bool
		err       bool
	}{
		{"collector:4317", false, "collector:4317", false, false},
		{"collector:4317", true, "collector:4317", true, false},
		{"http://collector:4318", false, "collector:4318", true, false},
		{"https://collector:4318/base", false, "collector:4318", false, false},
		{"ftp://collector", false, "", false, true},
	} {
		u, plain, err := splitEndpoint(tc.endpoint, tc.insecure)
		if tc.err != (err != nil) || (err == nil && (u.Host != tc.host || plain != tc.plaintext)) {
			t.Errorf("splitEndpoint(%q, %v) = %v, %v, %v", tc.endpoint, tc.insecure, u, plain, err)
		}
	}
}

// TestBackoff: exponential from the minimum, capped, jittered over its upper half; a server's
// delay wins. TestRetry sees the delay honoured on the wire.
func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: time.Second} {
		d := backoff(n, 100*time.Millisecond, time.Second, 0)
		if d < want/2 || d > want {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
		}
	}
	if d := backoff(1, time.Millisecond, time.Second, 3*time.Second); d != 3*time.Second {
		t.Errorf("a requested delay of 3s gave %v", d)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"": 0, "7": 7 * time.Second, "x": 0, "Thu, 01 Jan 2026 00:00:09 GMT": 9 * time.Second} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}
