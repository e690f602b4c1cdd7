package correlate

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	pb "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
)

const fakePid = 4242

// fakeResolver answers fakePid (or err) and records its calls.
type fakeResolver struct {
	mu    sync.Mutex
	calls [][2]netip.AddrPort
	err   error
}

func (f *fakeResolver) PidOf(local, remote netip.AddrPort) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [2]netip.AddrPort{local, remote})
	if f.err != nil {
		return 0, f.err
	}
	return fakePid, nil
}

func (f *fakeResolver) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// collector is a Deliver that keeps the batches.
type collector struct {
	mu      sync.Mutex
	batches []Batch
}

func (c *collector) deliver(b Batch) {
	c.mu.Lock()
	c.batches = append(c.batches, b)
	c.mu.Unlock()
}

// take returns and forgets the batches delivered so far.
func (c *collector) take() []Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.batches
	c.batches = nil
	return b
}

type testReceiver struct {
	*Receiver
	res *fakeResolver
	col *collector
}

// startReceiver serves a receiver on 127.0.0.1:0 (both transports) until the test ends,
// and checks Serve returns promptly then.
func startReceiver(t testing.TB) testReceiver {
	t.Helper()
	tr := testReceiver{res: &fakeResolver{}, col: &collector{}}
	r, err := NewReceiver(ReceiverOptions{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Resolver: tr.res, Deliver: tr.col.deliver,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.Receiver = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return tr
}

// sample is one payload of testdata in both encodings, with the events AdaptLogs or
// AdaptTraces give for it directly.
type sample struct {
	path   string
	signal string
	json   []byte
	wire   []byte
	msg    pb.Message
	events []proto.AgentEvent
	stats  AdaptStats
}

func loadSamples(t testing.TB) []sample {
	t.Helper()
	files, _ := filepath.Glob("testdata/*/*.json")
	if len(files) == 0 {
		t.Fatal("no samples")
	}
	var out []sample
	for _, f := range files {
		s := sample{path: f, signal: SignalTraces}
		var err error
		if s.json, err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(filepath.Base(f), "logs") {
			s.signal = SignalLogs
			m, err := DecodeLogs(s.json, ContentTypeJSON)
			if err != nil {
				t.Fatal(err)
			}
			s.msg = m
			s.events, s.stats = AdaptLogs(m)
		} else {
			m, err := DecodeTraces(s.json, ContentTypeJSON)
			if err != nil {
				t.Fatal(err)
			}
			s.msg = m
			s.events, s.stats = AdaptTraces(m)
		}
		if s.wire, err = pb.Marshal(s.msg); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type post struct {
	method, path, ct, enc string
	body                  io.Reader
}

// do sends p over c and returns the status, the response's Content-Type and body, and the
// client's end of the connection used.
func do(t testing.TB, c *http.Client, base string, p post) (int, string, []byte, netip.AddrPort) {
	t.Helper()
	if p.method == "" {
		p.method = http.MethodPost
	}
	req, err := http.NewRequest(p.method, "http://"+base+p.path, p.body)
	if err != nil {
		t.Fatal(err)
	}
	var local netip.AddrPort
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { local = netip.MustParseAddrPort(i.Conn.LocalAddr().String()) },
	}))
	if p.ct != "" {
		req.Header.Set("Content-Type", p.ct)
	}
	if p.enc != "" {
		req.Header.Set("Content-Encoding", p.enc)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body, local
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}}
}

// TestHTTPSamples posts every real payload as JSON and protobuf, plain and gzip: Deliver
// gets what AdaptLogs/AdaptTraces give directly, with the transport, the resolver's pid and
// the client's address; the response is an empty Export*ServiceResponse in the request's
// encoding.
func TestHTTPSamples(t *testing.T) {
	tr := startReceiver(t)
	c := newClient()
	var wantStats AdaptStats
	n := 0
	for _, s := range loadSamples(t) {
		for _, ct := range []string{ContentTypeJSON, ContentTypeProtobuf} {
			for _, enc := range []string{"", "gzip"} {
				name := fmt.Sprintf("%s %s %s", s.path, ct, enc)
				body := s.json
				if ct == ContentTypeProtobuf {
					body = s.wire
				}
				if enc == "gzip" {
					body = gz(t, body)
				}
				code, rct, rbody, local := do(t, c, tr.HTTPAddr(), post{path: "/v1/" + s.signal, ct: ct, enc: enc, body: bytes.NewReader(body)})
				if code != http.StatusOK || rct != ct {
					t.Fatalf("%s: %d %q %s", name, code, rct, rbody)
				}
				if want := map[string]string{ContentTypeJSON: "{}", ContentTypeProtobuf: ""}[ct]; string(rbody) != want {
					t.Errorf("%s: response body %q, want %q", name, rbody, want)
				}
				got := tr.col.take()
				if len(s.events) == 0 {
					if len(got) != 0 {
						t.Errorf("%s: %d batches for no events", name, len(got))
					}
				} else {
					if len(got) != 1 {
						t.Fatalf("%s: %d batches", name, len(got))
					}
					b := got[0]
					if !reflect.DeepEqual(b.Events, s.events) {
						t.Errorf("%s: events differ\n got  %+v\n want %+v", name, b.Events, s.events)
					}
					if b.Transport != TransportOTLPHTTP || b.SenderPid != fakePid || b.Peer != local {
						t.Errorf("%s: transport %q pid %d peer %v (client %v)", name, b.Transport, b.SenderPid, b.Peer, local)
					}
				}
				wantStats.Add(s.stats)
				n++
			}
		}
	}
	// One keep-alive connection: resolved once, with the receiver's and the client's ends.
	if tr.res.n() != 1 {
		t.Errorf("resolver called %d times, want 1", tr.res.n())
	} else if call := tr.res.calls[0]; call[0].String() != tr.HTTPAddr() {
		t.Errorf("resolver local %v, want %s", call[0], tr.HTTPAddr())
	}
	st := tr.Stats()
	if st.Accepted[SignalLogs]+st.Accepted[SignalTraces] != uint64(n) || st.Requests[SignalLogs]+st.Requests[SignalTraces] != uint64(n) ||
		st.Transports[TransportOTLPHTTP] != uint64(n) || len(st.Rejected) != 0 {
		t.Errorf("stats %+v after %d requests", st, n)
	}
	if st.Records != uint64(wantStats.Records) || st.Events != uint64(wantStats.Events) || st.PeersResolved != 1 {
		t.Errorf("stats %+v, want %+v", st, wantStats)
	}
	for k, v := range wantStats.Skipped {
		if st.Skipped[k] != uint64(v) {
			t.Errorf("skipped[%s] = %d, want %d", k, st.Skipped[k], v)
		}
	}
}

// TestHTTPKeepAliveResolvesOnce: Claude's pattern, five requests over one connection, looks
// the pid up once; another connection is looked up again; a failed lookup gives pid 0 and
// is counted.
func TestHTTPKeepAliveResolvesOnce(t *testing.T) {
	tr := startReceiver(t)
	body := readSample(t, "claude/0006_logs.json")
	send := func(c *http.Client) netip.AddrPort {
		code, _, rbody, local := do(t, c, tr.HTTPAddr(), post{path: "/v1/logs", ct: ContentTypeJSON, body: bytes.NewReader(body)})
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, rbody)
		}
		return local
	}
	c := newClient()
	var ends []netip.AddrPort
	for range 5 {
		ends = append(ends, send(c))
	}
	if ends = slices.Compact(ends); len(ends) != 1 {
		t.Fatalf("client used %d connections: %v", len(ends), ends)
	}
	if tr.res.n() != 1 {
		t.Errorf("resolver called %d times for one connection", tr.res.n())
	}
	for _, b := range tr.col.take() {
		if b.SenderPid != fakePid || b.Peer != ends[0] {
			t.Errorf("batch pid %d peer %v", b.SenderPid, b.Peer)
		}
	}

	tr.res.mu.Lock()
	tr.res.err = errors.New("no such socket")
	tr.res.mu.Unlock()
	other := newClient()
	send(other)
	send(other)
	if tr.res.n() != 2 {
		t.Errorf("resolver called %d times for two connections", tr.res.n())
	}
	for _, b := range tr.col.take() {
		if b.SenderPid != 0 {
			t.Errorf("unresolved sender: pid %d", b.SenderPid)
		}
	}
	if st := tr.Stats(); st.PeersResolved != 1 || st.PeersUnresolved != 1 || st.Accepted[SignalLogs] != 7 {
		t.Errorf("stats %+v", st)
	}
}

// TestHTTPConcurrentClients: Codex's pattern, a connection per signal, concurrently.
func TestHTTPConcurrentClients(t *testing.T) {
	tr := startReceiver(t)
	samples := loadSamples(t)
	var wg sync.WaitGroup
	var fails atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			c := newClient()
			for j := range 4 {
				s := samples[(i*4+j)%len(samples)]
				req, _ := http.NewRequest(http.MethodPost, "http://"+tr.HTTPAddr()+"/v1/"+s.signal, bytes.NewReader(s.wire))
				req.Header.Set("Content-Type", ContentTypeProtobuf)
				resp, err := c.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					fails.Add(1)
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Fatalf("%d requests failed", fails.Load())
	}
	if tr.res.n() != 8 {
		t.Errorf("resolver called %d times for 8 connections", tr.res.n())
	}
	if st := tr.Stats(); st.Accepted[SignalLogs]+st.Accepted[SignalTraces] != 32 {
		t.Errorf("stats %+v", st)
	}
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb is 100 MiB of zeros, gzipped: 100 copies of a gzip member of 1 MiB of zeros
// (gzip readers read concatenated members as one stream), about 100 KiB in all. Compressing
// one 100 MiB member takes seconds under the race detector.
func gzipBomb(t testing.TB) []byte {
	bombOnce.Do(func() {
		member := gz(t, make([]byte, 1<<20))
		bomb = bytes.Repeat(member, 100)
	})
	if len(bomb) > MaxBodyBytes/8 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	return bomb
}

// unsized hides the length of a reader, so that the client sends it chunked.
type unsized struct{ io.Reader }

func TestHTTPRejects(t *testing.T) {
	tr := startReceiver(t)
	logs := readSample(t, "claude/0006_logs.json")
	gzLogs := gz(t, logs)
	big := bytes.Repeat([]byte{' '}, MaxBodyBytes+1)
	cases := []struct {
		name   string
		p      post
		code   int
		reason string
	}{
		{"text/plain", post{path: "/v1/logs", ct: "text/plain", body: bytes.NewReader(logs)}, 415, RejectContentType},
		{"no content type", post{path: "/v1/traces", body: bytes.NewReader(logs)}, 415, RejectContentType},
		{"bad media type", post{path: "/v1/logs", ct: "application/", body: bytes.NewReader(logs)}, 415, RejectContentType},
		{"brotli", post{path: "/v1/logs", ct: ContentTypeJSON, enc: "br", body: bytes.NewReader(logs)}, 415, RejectContentType},
		{"malformed json", post{path: "/v1/logs", ct: ContentTypeJSON, body: strings.NewReader(`{"resourceLogs":[{`)}, 400, RejectMalformed},
		{"json as protobuf", post{path: "/v1/logs", ct: ContentTypeProtobuf, body: bytes.NewReader(logs)}, 400, RejectMalformed},
		{"malformed protobuf", post{path: "/v1/traces", ct: ContentTypeProtobuf, body: bytes.NewReader([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})}, 400, RejectMalformed},
		{"too large", post{path: "/v1/logs", ct: ContentTypeJSON, body: bytes.NewReader(big)}, 413, RejectTooLarge},
		{"too large chunked", post{path: "/v1/traces", ct: ContentTypeJSON, body: unsized{bytes.NewReader(big)}}, 413, RejectTooLarge},
		{"too large metrics", post{path: "/v1/metrics", ct: ContentTypeProtobuf, body: unsized{bytes.NewReader(big)}}, 413, RejectTooLarge},
		{"gzip bomb", post{path: "/v1/logs", ct: ContentTypeProtobuf, enc: "gzip", body: bytes.NewReader(gzipBomb(t))}, 413, RejectTooLarge},
		{"not gzip", post{path: "/v1/logs", ct: ContentTypeJSON, enc: "gzip", body: bytes.NewReader(logs)}, 400, RejectGzip},
		{"truncated gzip", post{path: "/v1/logs", ct: ContentTypeJSON, enc: "gzip", body: bytes.NewReader(gzLogs[:len(gzLogs)/2])}, 400, RejectGzip},
		{"bad gzip checksum", post{path: "/v1/logs", ct: ContentTypeJSON, enc: "gzip", body: bytes.NewReader(append(slices.Clone(gzLogs[:len(gzLogs)-8]), 1, 2, 3, 4, 5, 6, 7, 8))}, 400, RejectGzip},
		{"GET", post{method: http.MethodGet, path: "/v1/logs"}, 405, RejectMethod},
		{"PUT", post{method: http.MethodPut, path: "/v1/metrics", ct: ContentTypeJSON, body: bytes.NewReader(logs)}, 405, RejectMethod},
		{"unknown path", post{path: "/v1/unknown", ct: ContentTypeJSON, body: bytes.NewReader(logs)}, 404, RejectNotFound},
		{"root", post{method: http.MethodGet, path: "/"}, 404, RejectNotFound},
		{"metrics accepted", post{path: "/v1/metrics", ct: ContentTypeJSON, body: strings.NewReader(`not even json`)}, 200, ""},
		{"metrics gzip bomb not inflated", post{path: "/v1/metrics", ct: ContentTypeProtobuf, enc: "gzip", body: bytes.NewReader(gzipBomb(t))}, 200, ""},
	}
	want := map[string]uint64{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh client each time: a 413 may close the connection.
			code, ct, body, _ := do(t, newClient(), tr.HTTPAddr(), tc.p)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if tc.reason != "" {
				want[tc.reason]++
			}
			if got := tr.Stats().Rejected; !reflect.DeepEqual(got, want) {
				t.Errorf("rejected %v, want %v", got, want)
			}
			switch {
			case code == 405:
				// checked below
			case code != 200 && tc.p.ct == ContentTypeJSON:
				// The OTLP/HTTP spec's error body: a google.rpc.Status in the request's encoding.
				var st statuspb.Status
				if err := protojson.Unmarshal(body, &st); err != nil || ct != ContentTypeJSON || st.Message == "" {
					t.Errorf("error body %q (%s): %v", body, ct, err)
				}
			case code != 200 && tc.p.ct == ContentTypeProtobuf:
				var st statuspb.Status
				if err := pb.Unmarshal(body, &st); err != nil || ct != ContentTypeProtobuf || st.Code == 0 {
					t.Errorf("error body %q (%s): %v", body, ct, err)
				}
			}
		})
	}
	resp, err := http.Get("http://" + tr.HTTPAddr() + "/v1/traces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	st := tr.Stats()
	if st.Accepted[SignalMetrics] != 2 || st.Accepted[SignalLogs] != 0 || len(tr.col.take()) != 0 {
		t.Errorf("stats %+v", st)
	}
	// Everything but the two unknown paths went to a signal's endpoint.
	if st.Requests[SignalLogs]+st.Requests[SignalTraces]+st.Requests[SignalMetrics] != uint64(len(cases)-2+1) {
		t.Errorf("requests %v", st.Requests)
	}
	// The receiver still works.
	if code, _, body, _ := do(t, newClient(), tr.HTTPAddr(), post{path: "/v1/logs", ct: ContentTypeJSON, body: bytes.NewReader(logs)}); code != 200 {
		t.Fatalf("after rejects: %d %s", code, body)
	}
}

func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestGRPCSamples exports every payload with the official OTLP gRPC clients, plain and gzip.
func TestGRPCSamples(t *testing.T) {
	tr := startReceiver(t)
	cc := grpcConn(t, tr.GRPCAddr())
	logs := collogspb.NewLogsServiceClient(cc)
	traces := coltracepb.NewTraceServiceClient(cc)
	ctx := context.Background()
	n := 0
	for _, s := range loadSamples(t) {
		for _, opts := range [][]grpc.CallOption{nil, {grpc.UseCompressor(grpcgzip.Name)}} {
			var err error
			if s.signal == SignalLogs {
				_, err = logs.Export(ctx, s.msg.(*collogspb.ExportLogsServiceRequest), opts...)
			} else {
				_, err = traces.Export(ctx, s.msg.(*coltracepb.ExportTraceServiceRequest), opts...)
			}
			if err != nil {
				t.Fatalf("%s: %v", s.path, err)
			}
			n++
			got := tr.col.take()
			if len(s.events) == 0 {
				if len(got) != 0 {
					t.Errorf("%s: %d batches for no events", s.path, len(got))
				}
				continue
			}
			if len(got) != 1 {
				t.Fatalf("%s: %d batches", s.path, len(got))
			}
			b := got[0]
			if !reflect.DeepEqual(b.Events, s.events) {
				t.Errorf("%s: events differ\n got  %+v\n want %+v", s.path, b.Events, s.events)
			}
			if b.Transport != TransportOTLPGRPC || b.SenderPid != fakePid || !b.Peer.Addr().IsLoopback() {
				t.Errorf("%s: transport %q pid %d peer %v", s.path, b.Transport, b.SenderPid, b.Peer)
			}
		}
	}
	if _, err := colmetricspb.NewMetricsServiceClient(cc).Export(ctx, &colmetricspb.ExportMetricsServiceRequest{}); err != nil {
		t.Fatal(err)
	}
	if tr.res.n() != 1 {
		t.Errorf("resolver called %d times for one gRPC connection", tr.res.n())
	} else if got := tr.res.calls[0][0].String(); got != tr.GRPCAddr() {
		t.Errorf("resolver local %s, want %s", got, tr.GRPCAddr())
	}
	st := tr.Stats()
	if st.Accepted[SignalLogs]+st.Accepted[SignalTraces] != uint64(n) || st.Accepted[SignalMetrics] != 1 ||
		st.Transports[TransportOTLPGRPC] != uint64(n+1) || len(st.Rejected) != 0 || st.PeersResolved != 1 {
		t.Errorf("stats %+v after %d exports", st, n)
	}
}

// rawCodec sends a []byte as the message, to put arbitrary bytes on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func TestGRPCRejects(t *testing.T) {
	tr := startReceiver(t)
	cc := grpcConn(t, tr.GRPCAddr())
	invoke := func(method string, body []byte, opts ...grpc.CallOption) error {
		var out []byte
		return cc.Invoke(context.Background(), method, &body, &out, append(opts, grpc.ForceCodecV2(rawCodec{}))...)
	}
	const logsExport = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	const tracesExport = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	zeros := make([]byte, 2*MaxBodyBytes)
	cases := []struct {
		name   string
		method string
		body   []byte
		opts   []grpc.CallOption
		code   codes.Code
		reason string
	}{
		{"malformed logs", logsExport, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, nil, codes.InvalidArgument, RejectMalformed},
		{"malformed traces", tracesExport, []byte("not protobuf at all"), nil, codes.InvalidArgument, RejectMalformed},
		{"too large", logsExport, zeros[:MaxBodyBytes+1], nil, codes.ResourceExhausted, RejectTooLarge},
		// 16 MiB of zeros, gzipped to a few KiB: grpc stops inflating at MaxBodyBytes.
		{"gzip bomb", tracesExport, zeros, []grpc.CallOption{grpc.UseCompressor(grpcgzip.Name)}, codes.ResourceExhausted, RejectTooLarge},
		{"unknown method", "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", nil, nil, codes.Unimplemented, RejectNotFound},
		{"valid after all", logsExport, nil, nil, codes.OK, ""},
	}
	want := map[string]uint64{}
	for _, tc := range cases {
		err := invoke(tc.method, tc.body, tc.opts...)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
		if tc.reason != "" {
			want[tc.reason]++
		}
		// The server may count a rejection just after the client has its answer (the gRPC
		// stats handler runs at the end of the RPC): wait a little for the count.
		got := tr.Stats().Rejected
		for deadline := time.Now().Add(2 * time.Second); !reflect.DeepEqual(got, want) && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			got = tr.Stats().Rejected
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: rejected %v, want %v", tc.name, got, want)
		}
	}
	left := func() (n int) {
		tr.bad.Range(func(any, any) bool { n++; return true })
		return n
	}
	n := left()
	for deadline := time.Now().Add(2 * time.Second); n != 0 && time.Now().Before(deadline); n = left() {
		time.Sleep(5 * time.Millisecond)
	}
	if n != 0 {
		t.Errorf("%d flagged requests left", n)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:4318", "example.com:4318", "127.0.0.1", "[fe80::1%lo]:0"} {
		for _, o := range []ReceiverOptions{{HTTPAddr: addr}, {GRPCAddr: addr}} {
			r, err := NewReceiver(o)
			if err == nil {
				r.Close()
				t.Errorf("%+v: accepted", o)
			} else if addr != "127.0.0.1" && !strings.Contains(err.Error(), "loopback") {
				t.Errorf("%+v: %v", o, err)
			}
		}
	}
	if _, err := NewReceiver(ReceiverOptions{}); err == nil {
		t.Error("no address accepted")
	}
	for _, addr := range []string{"localhost:0", "127.0.0.2:0", "[::1]:0"} {
		r, err := NewReceiver(ReceiverOptions{HTTPAddr: addr})
		if err != nil {
			if addr == "[::1]:0" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Errorf("%s: %v", addr, err)
			continue
		}
		if ap := netip.MustParseAddrPort(r.HTTPAddr()); !ap.Addr().IsLoopback() || r.GRPCAddr() != "" {
			t.Errorf("%s bound %s / %q", addr, r.HTTPAddr(), r.GRPCAddr())
		}
		r.Close()
	}

	// A port in use fails at NewReceiver, and frees what it bound before.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	_, err = NewReceiver(ReceiverOptions{HTTPAddr: freeAddr, GRPCAddr: busy.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "OTLP/gRPC") {
		t.Fatalf("busy port: %v", err)
	}
	r, err := NewReceiver(ReceiverOptions{HTTPAddr: freeAddr})
	if err != nil {
		t.Fatalf("HTTP port not released: %v", err)
	}
	r.Close()
}

// TestServeStops: Serve returns soon after its context ends, even with a keep-alive HTTP
// connection and a gRPC connection open, and nothing listens afterwards.
func TestServeStops(t *testing.T) {
	r, err := NewReceiver(ReceiverOptions{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	if code, _, _, _ := do(t, newClient(), r.HTTPAddr(), post{path: "/v1/metrics", ct: ContentTypeJSON, body: strings.NewReader("{}")}); code != 200 {
		t.Fatal(code)
	}
	cc := grpcConn(t, r.GRPCAddr())
	if _, err := colmetricspb.NewMetricsServiceClient(cc).Export(ctx, &colmetricspb.ExportMetricsServiceRequest{}); err != nil {
		t.Fatal(err)
	}
	// A client that connected and sends nothing.
	idle, err := net.Dial("tcp", r.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for _, a := range []string{r.HTTPAddr(), r.GRPCAddr()} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening", a)
		}
	}
	if err := r.Serve(context.Background()); err == nil {
		t.Error("second Serve accepted")
	}
}

func TestCloseWithoutServe(t *testing.T) {
	r, err := NewReceiver(ReceiverOptions{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := r.HTTPAddr()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Serve(context.Background()); err == nil {
		t.Error("Serve after Close accepted")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	l.Close()
}

// FuzzHTTPLogs posts arbitrary bodies, in either encoding, plain or gzip, to the handler:
// it never panics and answers only 200, 400, 413 or 415; a 200 with events delivers them.
func FuzzHTTPLogs(f *testing.F) {
	for _, b := range samples(f, "logs") {
		f.Add(b, uint8(0))
		f.Add(gz(f, b), uint8(2))
		req, err := DecodeLogs(b, ContentTypeJSON)
		if err != nil {
			f.Fatal(err)
		}
		wire, _ := pb.Marshal(req)
		f.Add(wire, uint8(1))
	}
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, uint8(3))
	var delivered atomic.Int64
	r, err := NewReceiver(ReceiverOptions{
		HTTPAddr: "127.0.0.1:0",
		Deliver: func(b Batch) {
			if len(b.Events) == 0 || b.Transport != TransportOTLPHTTP {
				panic(fmt.Sprintf("bad batch %+v", b))
			}
			delivered.Add(1)
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	h := r.httpHandler()
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", []string{ContentTypeJSON, ContentTypeProtobuf}[mode&1])
		if mode&2 != 0 {
			req.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 413, 415:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

// identityResolver is a fakeResolver that also reports the sender's start time.
type identityResolver struct {
	*fakeResolver
	start uint64
}

func (r identityResolver) PeerOf(local, remote netip.AddrPort) (int, uint64, error) {
	pid, err := r.PidOf(local, remote)
	if err != nil {
		return 0, 0, err
	}
	return pid, r.start, nil
}

// TestReceiverSenderIdentity: with a PeerIdentityResolver every batch names its sender by pid
// and start time, resolved once per connection; a plain PeerResolver leaves the start 0.
func TestReceiverSenderIdentity(t *testing.T) {
	const start = 8_123_450_000_000
	res := identityResolver{&fakeResolver{}, start}
	col := &collector{}
	r, err := NewReceiver(ReceiverOptions{HTTPAddr: "127.0.0.1:0", Resolver: res, Deliver: col.deliver})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	body := readSample(t, "claude/0006_logs.json")
	c := newClient()
	for range 2 {
		if code, _, rbody, _ := do(t, c, r.HTTPAddr(), post{path: "/v1/logs", ct: ContentTypeJSON, body: bytes.NewReader(body)}); code != http.StatusOK {
			t.Fatalf("%d %s", code, rbody)
		}
	}
	bs := col.take()
	if len(bs) != 2 || res.n() != 1 {
		t.Fatalf("%d batches, %d lookups; want 2 and 1", len(bs), res.n())
	}
	for _, b := range bs {
		if b.SenderPid != fakePid || b.SenderStartBootNs != start {
			t.Errorf("sender pid %d start %d, want %d %d", b.SenderPid, b.SenderStartBootNs, fakePid, start)
		}
	}

	tr := startReceiver(t) // plain resolver
	if code, _, rbody, _ := do(t, newClient(), tr.HTTPAddr(), post{path: "/v1/logs", ct: ContentTypeJSON, body: bytes.NewReader(body)}); code != http.StatusOK {
		t.Fatalf("%d %s", code, rbody)
	}
	for _, b := range tr.col.take() {
		if b.SenderPid != fakePid || b.SenderStartBootNs != 0 {
			t.Errorf("plain resolver: pid %d start %d", b.SenderPid, b.SenderStartBootNs)
		}
	}
}
