package otlp

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the server side of the exporter's compression
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// got is one record as a test server received it.
type got struct {
	id       string // vigil.record.id
	attempt  int64
	body     string
	attrs    map[string]any
	resource map[string]any
	at       time.Time // when its request arrived
}

// seq is the record's number within its exporter instance (vigil.record.id's tail).
func (g got) seq(t testing.TB) uint64 {
	i := strings.LastIndexByte(g.id, '-')
	n, err := strconv.ParseUint(g.id[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("record id %q: %v", g.id, err)
	}
	return n
}

// reply is what a test server answers one request with: zero is success.
type reply struct {
	httpStatus int           // an HTTP failure status
	code       codes.Code    // a gRPC failure code
	retryAfter time.Duration // Retry-After, or gRPC RetryInfo when code is set
	rejected   int64         // partial success: records refused
}

// server is a real OTLP endpoint on loopback (gRPC or HTTP, as the protocol says) that
// decodes what arrives. Each request is answered with the next scripted reply, success when
// the script is done. It can be stopped and started again on the same port.
type server struct {
	t        *testing.T
	protocol Protocol
	tlsCfg   *tls.Config
	addr     string

	mu      sync.Mutex
	script  []reply
	records []got
	headers []string // the x-api-key of each request
	ctypes  []string
	gzipped []bool // whether each request came gzip-encoded
	reqs    int
	// discard counts records in n instead of keeping them (benchmarks).
	discard bool
	n       int
	// gate, when set, holds each request until a value is received from it; arrivals counts
	// the requests that came, held or not.
	gate     chan struct{}
	arrivals atomic.Int32

	stopFn func()
}

func newServer(t *testing.T, p Protocol, tlsCfg *tls.Config) *server {
	s := &server{t: t, protocol: p, tlsCfg: tlsCfg, addr: otlptest.FreeAddr(t)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// endpoint is what Options.Endpoint names for this server.
func (s *server) endpoint() string {
	scheme := "http://"
	if s.tlsCfg != nil {
		scheme = "https://"
	}
	return scheme + s.addr
}

func (s *server) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	if s.protocol == ProtocolGRPC {
		opts := []grpc.ServerOption{grpc.StatsHandler(compressionSeen{s})}
		if s.tlsCfg != nil {
			opts = append(opts, grpc.Creds(credentials.NewTLS(s.tlsCfg)))
		}
		gs := grpc.NewServer(opts...)
		collogspb.RegisterLogsServiceServer(gs, grpcHandler{s: s})
		go func() { _ = gs.Serve(ln) }()
		// Stop before Serve has begun would leave the listener open (and the port taken
		// when the test starts the server again): close it too.
		s.stopFn = func() { gs.Stop(); _ = ln.Close() }
		return
	}
	hs := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), TLSConfig: s.tlsCfg, ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		if s.tlsCfg != nil {
			_ = hs.ServeTLS(ln, "", "")
		} else {
			_ = hs.Serve(ln)
		}
	}()
	s.stopFn = func() { _ = hs.Close(); _ = ln.Close() }
}

func (s *server) stop() {
	if s.stopFn != nil {
		s.stopFn()
		s.stopFn = nil
	}
}

// take records the request's records and returns the reply for it.
func (s *server) take(req *collogspb.ExportLogsServiceRequest, apiKey, ctype string) reply {
	s.arrivals.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.reqs++
	s.headers = append(s.headers, apiKey)
	s.ctypes = append(s.ctypes, ctype)
	var r reply
	if len(s.script) > 0 {
		r, s.script = s.script[0], s.script[1:]
	}
	if r.httpStatus != 0 || r.code != codes.OK {
		return r
	}
	if s.discard {
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				s.n += len(sl.GetLogRecords())
			}
		}
		return r
	}
	for _, rl := range req.GetResourceLogs() {
		res := otlptest.AttrMap(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				a := otlptest.AttrMap(lr.GetAttributes())
				id, _ := a[AttrRecordID].(string)
				att, _ := a[AttrAttempt].(int64)
				s.records = append(s.records, got{id: id, attempt: att, body: lr.GetBody().GetStringValue(), attrs: a, resource: res, at: now})
			}
		}
	}
	return r
}

// got returns a copy of the records received so far.
func (s *server) got() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]got(nil), s.records...)
}

func (s *server) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

func (s *server) setScript(r ...reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = r
}

// compressionSeen records each gRPC request's compression, which the call's metadata does not
// show (grpc-encoding is a reserved header).
type compressionSeen struct{ s *server }

func (c compressionSeen) HandleRPC(_ context.Context, st stats.RPCStats) {
	if h, ok := st.(*stats.InHeader); ok {
		c.s.mu.Lock()
		c.s.gzipped = append(c.s.gzipped, h.Compression == "gzip")
		c.s.mu.Unlock()
	}
}
func (compressionSeen) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (compressionSeen) HandleConn(context.Context, stats.ConnStats)                       {}
func (compressionSeen) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

type grpcHandler struct {
	collogspb.UnimplementedLogsServiceServer
	s *server
}

func (h grpcHandler) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	key := strings.Join(md.Get("x-api-key"), ",")
	r := h.s.take(req, key, "grpc")
	if r.code != codes.OK {
		st := status.New(r.code, "scripted failure")
		if r.retryAfter > 0 {
			st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.retryAfter)})
		}
		return nil, st.Err()
	}
	resp := &collogspb.ExportLogsServiceResponse{}
	if r.rejected > 0 {
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: r.rejected, ErrorMessage: "scripted partial"}
	}
	return resp, nil
}

func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/logs" {
		http.Error(w, "want POST /v1/logs, got "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	gz := r.Header.Get("Content-Encoding") == "gzip"
	s.mu.Lock()
	s.gzipped = append(s.gzipped, gz)
	s.mu.Unlock()
	if gz {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctype := r.Header.Get("Content-Type")
	req := &collogspb.ExportLogsServiceRequest{}
	switch ctype {
	case "application/json":
		err = decodeOTLPJSON(data, req)
	case "application/x-protobuf":
		err = gproto.Unmarshal(data, req)
	default:
		err = errors.New("content type " + ctype)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rep := s.take(req, r.Header.Get("X-Api-Key"), ctype)
	if rep.httpStatus != 0 {
		if rep.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(rep.retryAfter/time.Second)))
		}
		http.Error(w, "scripted failure", rep.httpStatus)
		return
	}
	resp := &collogspb.ExportLogsServiceResponse{}
	if rep.rejected > 0 {
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: rep.rejected, ErrorMessage: "scripted partial"}
	}
	out, _ := gproto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// decodeOTLPJSON decodes OTLP/JSON strictly as the specification has it: it refuses enum
// names (the spec wants numbers), which protojson would otherwise accept.
func decodeOTLPJSON(data []byte, req *collogspb.ExportLogsServiceRequest) error {
	if strings.Contains(string(data), `"SEVERITY_NUMBER_`) {
		return errors.New("enum encoded by name, OTLP/JSON wants its number")
	}
	return protojson.Unmarshal(data, req)
}

// lineOf is the JSON line the pipeline hands with e (proto.AppendLine's).
func lineOf(t testing.TB, e *proto.Event) []byte {
	t.Helper()
	line, err := proto.AppendLine(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// testEvent is record i of a test: its event.sequence is the marker the test checks.
func testEvent(i int) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2026, 12, 5, 10, 0, 0, i, time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionOpen, Kind: "event", Category: "file", Dataset: "vigil.kernel", Sequence: uint64(i)},
		Process:   &proto.Process{Pid: 4242, Name: "cat"},
		File:      &proto.File{Path: "/home/dev/.env"},
		Vigil:     proto.Vigil{Schema: proto.SchemaVersion},
	}
}
