package correlate

// The OTLP receiver of `vigil run`: OTLP/HTTP and OTLP/gRPC on loopback, decoding and adapting
// logs and traces, with each request's sender resolved to a pid (research/agents/README.md §3,
// "PID mapping"). Claude sends all its signals over one keep-alive HTTP/1.1 connection from
// its main process; Codex opens one connection per signal from the native codex process: the
// pid is looked up once per connection.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip decompressor for OTLP/gRPC
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	pb "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
)

// The OTLP default endpoints, on loopback only.
const (
	DefaultOTLPHTTPAddr = "127.0.0.1:4318"
	DefaultOTLPGRPCAddr = "127.0.0.1:4317"
)

// Transports, in Batch.Transport and proto.Telemetry.Transport.
const (
	TransportOTLPHTTP = "otlp_http"
	TransportOTLPGRPC = "otlp_grpc"
)

// Signals: the keys of ReceiverStats.Requests and Accepted.
const (
	SignalLogs    = "logs"
	SignalTraces  = "traces"
	SignalMetrics = "metrics"
)

// Reasons a request was refused: the keys of ReceiverStats.Rejected. The set is fixed, so
// outside input cannot grow the map.
const (
	// RejectTooLarge: the body, or what it inflates to, exceeds MaxBodyBytes (HTTP 413,
	// gRPC ResourceExhausted).
	RejectTooLarge = "too_large"
	// RejectContentType: neither JSON nor protobuf, or a Content-Encoding other than gzip
	// (HTTP 415).
	RejectContentType = "bad_content_type"
	// RejectMalformed: the body does not decode (HTTP 400, gRPC InvalidArgument).
	RejectMalformed = "malformed"
	// RejectGzip: Content-Encoding gzip over something that does not inflate (HTTP 400; gRPC
	// Internal, from grpc itself).
	RejectGzip = "bad_gzip"
	// RejectMethod: not a POST (HTTP 405).
	RejectMethod = "method"
	// RejectNotFound: no such path (HTTP 404) or gRPC service or method (Unimplemented).
	RejectNotFound = "not_found"
	// RejectRead: the body could not be read (the client went away; HTTP 400) or another
	// transport error ended a gRPC call.
	RejectRead = "read_error"
)

// shutdownTimeout bounds Serve's graceful shutdown; connections still open then are closed.
const shutdownTimeout = time.Second

// Batch is one export request's adapted events with who sent it.
type Batch struct {
	Events    []proto.AgentEvent
	Transport string // TransportOTLPHTTP or TransportOTLPGRPC
	SenderPid int    // 0 when the peer could not be resolved
	Peer      netip.AddrPort
}

// PeerResolver maps a loopback TCP connection to the pid owning its client socket: local is
// the receiver's end, remote the client's. The Linux implementation is linux.PeerResolver
// (correlate never imports a platform package).
type PeerResolver interface {
	PidOf(local, remote netip.AddrPort) (int, error)
}

// ReceiverOptions configure NewReceiver.
type ReceiverOptions struct {
	// HTTPAddr is the OTLP/HTTP listen address, normally DefaultOTLPHTTPAddr; "" disables
	// OTLP/HTTP. It must be a loopback IP (or localhost) with a port; port 0 picks one.
	HTTPAddr string
	// GRPCAddr is the OTLP/gRPC listen address, normally DefaultOTLPGRPCAddr; "" disables
	// OTLP/gRPC. Same rules as HTTPAddr.
	GRPCAddr string
	// Resolver finds the sender's pid, once per connection. Nil leaves SenderPid 0.
	Resolver PeerResolver
	// Deliver is called, on the request's goroutine, for every accepted logs or traces
	// request that produced at least one event. It must not block long: the agent waits for
	// the response. Concurrent calls happen (one per connection).
	Deliver func(Batch)
	// Log receives rejections and peer lookup failures at debug level and serving errors.
	Log zerolog.Logger
}

// ReceiverStats are the receiver's counters since NewReceiver. Maps are copies.
type ReceiverStats struct {
	// Requests counts requests per signal (SignalLogs, SignalTraces, SignalMetrics) to that
	// signal's endpoint, whatever their outcome.
	Requests map[string]uint64
	// Accepted counts requests answered with success, per signal. Metrics are accepted and
	// dropped.
	Accepted map[string]uint64
	// Rejected counts refused requests per Reject* reason; RejectNotFound and RejectMethod
	// are not in Requests when the path named no signal.
	Rejected map[string]uint64
	// Transports counts requests per transport (TransportOTLPHTTP, TransportOTLPGRPC).
	Transports map[string]uint64
	// Records is the number of log records and spans adapted, Events the AgentEvents they
	// gave, Skipped the records not adapted per Skip* reason (AdaptStats summed).
	Records uint64
	Events  uint64
	Skipped map[string]uint64
	// PeersResolved and PeersUnresolved count connections (HTTP) or connections with at
	// least one call (gRPC) whose sender pid was, or could not be, found.
	PeersResolved   uint64
	PeersUnresolved uint64
}

// Receiver is the OTLP receiver. Create it with NewReceiver, run it with Serve.
type Receiver struct {
	o      ReceiverOptions
	httpLn net.Listener
	grpcLn net.Listener
	httpSv *http.Server
	grpcSv *grpc.Server

	// bad holds the gRPC request messages the codec could not decode, until their handler
	// answers InvalidArgument (grpc itself would answer Internal).
	bad sync.Map

	serving atomic.Bool
	closed  atomic.Bool

	mu sync.Mutex
	st ReceiverStats
}

// NewReceiver validates o and binds its listeners now, so that a port in use or a
// non-loopback address fails at start.
func NewReceiver(o ReceiverOptions) (*Receiver, error) {
	if o.HTTPAddr == "" && o.GRPCAddr == "" {
		return nil, errors.New("otlp receiver: neither an HTTP nor a gRPC address")
	}
	r := &Receiver{o: o, st: ReceiverStats{
		Requests: map[string]uint64{}, Accepted: map[string]uint64{}, Rejected: map[string]uint64{},
		Transports: map[string]uint64{}, Skipped: map[string]uint64{},
	}}
	if o.HTTPAddr != "" {
		ln, err := listenLoopback("OTLP/HTTP", o.HTTPAddr)
		if err != nil {
			return nil, err
		}
		r.httpLn = ln
		r.httpSv = &http.Server{
			Handler:           r.httpHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ConnContext:       connContext,
			ErrorLog:          log.New(o.Log.With().Str("component", "otlp_http").Logger(), "", 0),
		}
	}
	if o.GRPCAddr != "" {
		ln, err := listenLoopback("OTLP/gRPC", o.GRPCAddr)
		if err != nil {
			if r.httpLn != nil {
				r.httpLn.Close()
			}
			return nil, err
		}
		r.grpcLn = ln
		r.grpcSv = grpc.NewServer(
			grpc.MaxRecvMsgSize(MaxBodyBytes),
			grpc.ForceServerCodecV2(otlpCodec{r: r, base: encoding.GetCodecV2("proto")}),
			grpc.StatsHandler(grpcStats{r}),
		)
		collogspb.RegisterLogsServiceServer(r.grpcSv, grpcLogs{r: r})
		coltracepb.RegisterTraceServiceServer(r.grpcSv, grpcTraces{r: r})
		colmetricspb.RegisterMetricsServiceServer(r.grpcSv, grpcMetrics{r: r})
	}
	return r, nil
}

// listenLoopback binds addr after checking it is a loopback IP: the sensor must not listen
// on the network.
func listenLoopback(what, addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("otlp receiver: %s address %q: %w", what, addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" || !ip.Unmap().IsLoopback() {
		return nil, fmt.Errorf("otlp receiver: refusing %s address %q: only a loopback IP (127.0.0.0/8, ::1, localhost) may be used, the sensor must not listen on the network", what, addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.Unmap().String(), port))
	if err != nil {
		return nil, fmt.Errorf("otlp receiver: %s listen on %s: %w", what, addr, err)
	}
	return ln, nil
}

// HTTPAddr is the bound OTLP/HTTP address, "" when disabled.
func (r *Receiver) HTTPAddr() string {
	if r.httpLn == nil {
		return ""
	}
	return r.httpLn.Addr().String()
}

// GRPCAddr is the bound OTLP/gRPC address, "" when disabled.
func (r *Receiver) GRPCAddr() string {
	if r.grpcLn == nil {
		return ""
	}
	return r.grpcLn.Addr().String()
}

// Serve serves until ctx is done, then shuts down gracefully: requests in flight get up to
// shutdownTimeout (1 s) to finish, then every connection is closed. It returns nil after a
// shutdown and the error of a listener that failed otherwise. It may be called once.
func (r *Receiver) Serve(ctx context.Context) error {
	if !r.serving.CompareAndSwap(false, true) || r.closed.Load() {
		return errors.New("otlp receiver: Serve called twice or after Close")
	}
	errc := make(chan error, 2)
	n := 0
	if r.httpSv != nil {
		n++
		go func() {
			err := r.httpSv.Serve(r.httpLn)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("otlp receiver: OTLP/HTTP on %s: %w", r.httpLn.Addr(), err)
			}
			errc <- err
		}()
	}
	if r.grpcSv != nil {
		n++
		go func() {
			err := r.grpcSv.Serve(r.grpcLn)
			if err != nil {
				err = fmt.Errorf("otlp receiver: OTLP/gRPC on %s: %w", r.grpcLn.Addr(), err)
			}
			errc <- err
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
		if first != nil {
			r.o.Log.Error().Err(first).Msg("otlp receiver stopped")
		}
	}
	r.shutdown()
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// shutdown stops both servers, gracefully within shutdownTimeout.
func (r *Receiver) shutdown() {
	r.closed.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if r.httpSv != nil {
		wg.Go(func() {
			if err := r.httpSv.Shutdown(sctx); err != nil {
				r.httpSv.Close()
			}
		})
	}
	if r.grpcSv != nil {
		wg.Go(func() {
			done := make(chan struct{})
			go func() {
				r.grpcSv.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
			case <-sctx.Done():
				r.grpcSv.Stop()
				<-done
			}
		})
	}
	wg.Wait()
}

// Close releases the listeners of a receiver that will not be served. After Serve, it is
// not needed (Serve closes everything when its context ends).
func (r *Receiver) Close() error {
	if r.serving.Load() || !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	var err error
	for _, ln := range []net.Listener{r.httpLn, r.grpcLn} {
		if ln != nil {
			err = errors.Join(err, ln.Close())
		}
	}
	return err
}

// Stats returns a copy of the counters.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	s.Requests = cloneCounts(r.st.Requests)
	s.Accepted = cloneCounts(r.st.Accepted)
	s.Rejected = cloneCounts(r.st.Rejected)
	s.Transports = cloneCounts(r.st.Transports)
	s.Skipped = cloneCounts(r.st.Skipped)
	return s
}

func cloneCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (r *Receiver) countRequest(transport, signal string) {
	r.mu.Lock()
	r.st.Transports[transport]++
	if signal != "" {
		r.st.Requests[signal]++
	}
	r.mu.Unlock()
}

func (r *Receiver) countReject(reason string) {
	r.mu.Lock()
	r.st.Rejected[reason]++
	r.mu.Unlock()
}

// accept counts an accepted request and delivers its events.
func (r *Receiver) accept(signal, transport string, evs []proto.AgentEvent, st AdaptStats, cp *connPeer) {
	r.mu.Lock()
	r.st.Accepted[signal]++
	r.st.Records += uint64(st.Records)
	r.st.Events += uint64(st.Events)
	for k, v := range st.Skipped {
		r.st.Skipped[k] += uint64(v)
	}
	r.mu.Unlock()
	if len(evs) == 0 || r.o.Deliver == nil {
		return
	}
	b := Batch{Events: evs, Transport: transport}
	if cp != nil {
		b.Peer = cp.remote
		b.SenderPid = r.senderPid(cp)
	}
	r.o.Deliver(b)
}

// connPeer is one connection's addresses and, once looked up, its sender pid.
type connPeer struct {
	local, remote netip.AddrPort
	once          sync.Once
	pid           int
}

type connPeerKey struct{}

func newConnPeer(local, remote net.Addr) *connPeer {
	l, ok1 := addrPort(local)
	rm, ok2 := addrPort(remote)
	if !ok1 || !ok2 {
		return nil
	}
	return &connPeer{local: l, remote: rm}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return ap, false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}

// senderPid resolves cp's pid on first use: one /proc scan per connection, done on the
// request's goroutine (ConnContext runs in the accept loop, which must not wait on it), and
// only for connections that send something worth delivering.
func (r *Receiver) senderPid(cp *connPeer) int {
	cp.once.Do(func() {
		if r.o.Resolver == nil {
			return
		}
		pid, err := r.o.Resolver.PidOf(cp.local, cp.remote)
		r.mu.Lock()
		if err != nil || pid <= 0 {
			r.st.PeersUnresolved++
		} else {
			r.st.PeersResolved++
		}
		r.mu.Unlock()
		if err != nil || pid <= 0 {
			r.o.Log.Debug().Err(err).Stringer("peer", cp.remote).Msg("otlp sender pid not found")
			return
		}
		cp.pid = pid
	})
	return cp.pid
}

// connContext attaches a connPeer to every accepted HTTP connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if cp := newConnPeer(c.LocalAddr(), c.RemoteAddr()); cp != nil {
		return context.WithValue(ctx, connPeerKey{}, cp)
	}
	return ctx
}

// requestPeer is the request's connPeer: the connection's, or (a handler run without
// ConnContext) one built from the request alone.
func requestPeer(req *http.Request) *connPeer {
	if cp, ok := req.Context().Value(connPeerKey{}).(*connPeer); ok {
		return cp
	}
	local, _ := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	remote, err := netip.ParseAddrPort(req.RemoteAddr)
	if local == nil || err != nil {
		return nil
	}
	return newConnPeer(local, net.TCPAddrFromAddrPort(remote))
}

// ---- OTLP/HTTP ----

var httpSignals = map[string]string{
	"/v1/logs":    SignalLogs,
	"/v1/traces":  SignalTraces,
	"/v1/metrics": SignalMetrics,
}

func (r *Receiver) httpHandler() http.Handler {
	return http.HandlerFunc(r.serveHTTP)
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	signal, ok := httpSignals[req.URL.Path]
	ct, ctOK := otlpContentType(req.Header.Get("Content-Type"))
	if !ok {
		r.countRequest(TransportOTLPHTTP, "")
		r.httpReject(w, req, ct, http.StatusNotFound, RejectNotFound, "unknown path "+strconv.Quote(truncate(req.URL.Path)))
		return
	}
	r.countRequest(TransportOTLPHTTP, signal)
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.httpReject(w, req, ct, http.StatusMethodNotAllowed, RejectMethod, "method "+truncate(req.Method)+" not allowed, use POST")
		return
	}
	if !ctOK {
		r.httpReject(w, req, "", http.StatusUnsupportedMediaType, RejectContentType,
			fmt.Sprintf("content type %q: want %s or %s", truncate(req.Header.Get("Content-Type")), ContentTypeJSON, ContentTypeProtobuf))
		return
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		r.httpReject(w, req, ct, http.StatusUnsupportedMediaType, RejectContentType,
			fmt.Sprintf("content encoding %q: want gzip or none", truncate(enc)))
		return
	}
	if req.ContentLength > MaxBodyBytes {
		r.httpReject(w, req, ct, http.StatusRequestEntityTooLarge, RejectTooLarge,
			fmt.Sprintf("body of %d bytes > %d", req.ContentLength, MaxBodyBytes))
		return
	}
	if signal == SignalMetrics {
		// Accepted and dropped, without inflating or decoding: only the size is checked.
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, req.Body, MaxBodyBytes)); err != nil {
			r.httpBodyError(w, req, ct, err, false)
			return
		}
		r.mu.Lock()
		r.st.Accepted[signal]++
		r.mu.Unlock()
		writeEmpty(w, ct)
		return
	}
	body, err := readBody(w, req, gz)
	if err != nil {
		r.httpBodyError(w, req, ct, err, gz)
		return
	}
	var evs []proto.AgentEvent
	var st AdaptStats
	if signal == SignalLogs {
		var m *collogspb.ExportLogsServiceRequest
		if m, err = DecodeLogs(body, ct); err == nil {
			evs, st = AdaptLogs(m)
		}
	} else {
		var m *coltracepb.ExportTraceServiceRequest
		if m, err = DecodeTraces(body, ct); err == nil {
			evs, st = AdaptTraces(m)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrBodyTooLarge):
		r.httpReject(w, req, ct, http.StatusRequestEntityTooLarge, RejectTooLarge, err.Error())
		return
	case errors.Is(err, ErrContentType):
		r.httpReject(w, req, "", http.StatusUnsupportedMediaType, RejectContentType, err.Error())
		return
	default:
		r.httpReject(w, req, ct, http.StatusBadRequest, RejectMalformed, err.Error())
		return
	}
	r.accept(signal, TransportOTLPHTTP, evs, st, requestPeer(req))
	writeEmpty(w, ct)
}

// errInflatedTooLarge: a gzip body inflates beyond MaxBodyBytes.
var errInflatedTooLarge = errors.New("gzip body inflates beyond MaxBodyBytes")

// readBody reads the request body, at most MaxBodyBytes on the wire and, when gz, at most
// MaxBodyBytes inflated: a gzip bomb stops at MaxBodyBytes+1 bytes of output.
func readBody(w http.ResponseWriter, req *http.Request, gz bool) ([]byte, error) {
	var src io.Reader = http.MaxBytesReader(w, req.Body, MaxBodyBytes)
	if !gz {
		var b bytes.Buffer
		if req.ContentLength > 0 {
			b.Grow(int(req.ContentLength))
		}
		if _, err := b.ReadFrom(src); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	zr, err := gzip.NewReader(src)
	if err != nil {
		return nil, gzipError(err)
	}
	body, err := io.ReadAll(io.LimitReader(zr, MaxBodyBytes+1))
	if err != nil {
		return nil, gzipError(err)
	}
	if len(body) > MaxBodyBytes {
		return nil, errInflatedTooLarge
	}
	return body, nil
}

type gzipErr struct{ err error }

func (e gzipErr) Error() string { return "gzip: " + e.err.Error() }
func (e gzipErr) Unwrap() error { return e.err }

func gzipError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return gzipErr{err}
}

// httpBodyError answers a body that could not be read.
func (r *Receiver) httpBodyError(w http.ResponseWriter, req *http.Request, ct string, err error, gz bool) {
	var mb *http.MaxBytesError
	var ge gzipErr
	switch {
	case errors.As(err, &mb):
		r.httpReject(w, req, ct, http.StatusRequestEntityTooLarge, RejectTooLarge, fmt.Sprintf("body exceeds %d bytes", MaxBodyBytes))
	case errors.Is(err, errInflatedTooLarge):
		r.httpReject(w, req, ct, http.StatusRequestEntityTooLarge, RejectTooLarge, fmt.Sprintf("gzip body inflates beyond %d bytes", MaxBodyBytes))
	case errors.As(err, &ge):
		r.httpReject(w, req, ct, http.StatusBadRequest, RejectGzip, err.Error())
	default:
		r.httpReject(w, req, ct, http.StatusBadRequest, RejectRead, "read body: "+err.Error())
	}
}

// httpReject counts and answers a refused request. With a known OTLP content type the body
// is a google.rpc.Status in that encoding (OTLP/HTTP spec); otherwise plain text.
func (r *Receiver) httpReject(w http.ResponseWriter, req *http.Request, ct string, code int, reason, msg string) {
	r.countReject(reason)
	r.o.Log.Debug().Str("reason", reason).Int("status", code).Str("path", truncate(req.URL.Path)).
		Str("peer", req.RemoteAddr).Str("error", msg).Msg("otlp request rejected")
	msg = truncate(msg)
	var body []byte
	st := &statuspb.Status{Code: int32(httpToGRPC(code)), Message: msg}
	switch ct {
	case ContentTypeProtobuf:
		body, _ = pb.Marshal(st)
	case ContentTypeJSON:
		body, _ = protojson.Marshal(st)
	default:
		ct = "text/plain; charset=utf-8"
		body = []byte(msg + "\n")
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func httpToGRPC(code int) codes.Code {
	switch code {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return codes.Unimplemented
	}
	return codes.Unknown
}

// writeEmpty answers success: an empty Export*ServiceResponse in the request's encoding
// (zero bytes of protobuf, {} in JSON).
func writeEmpty(w http.ResponseWriter, ct string) {
	body := []byte{}
	if ct == ContentTypeJSON {
		body = []byte("{}")
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// otlpContentType normalises a Content-Type header to ContentTypeJSON or ContentTypeProtobuf.
func otlpContentType(h string) (string, bool) {
	mt, _, err := mime.ParseMediaType(h)
	if err != nil {
		return "", false
	}
	switch mt {
	case ContentTypeJSON:
		return ContentTypeJSON, true
	case ContentTypeProtobuf, "application/protobuf":
		return ContentTypeProtobuf, true
	}
	return "", false
}

// truncate bounds a string taken from a request before it is logged or echoed.
func truncate(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// ---- OTLP/gRPC ----

var grpcSignals = map[string]string{
	"/opentelemetry.proto.collector.logs.v1.LogsService/Export":       SignalLogs,
	"/opentelemetry.proto.collector.trace.v1.TraceService/Export":     SignalTraces,
	"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export": SignalMetrics,
}

// otlpCodec is grpc's proto codec, except for the OTLP export requests: those are decoded
// with DiscardUnknown like OTLP/HTTP bodies, and one that does not decode is flagged in
// Receiver.bad for its handler to answer InvalidArgument (the OTLP spec's code; grpc wraps
// any codec error in Internal). Metrics requests are not decoded at all: they are dropped.
type otlpCodec struct {
	r    *Receiver
	base encoding.CodecV2
}

func (c otlpCodec) Name() string { return c.base.Name() }

func (c otlpCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c otlpCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var m pb.Message
	switch v := v.(type) {
	case *colmetricspb.ExportMetricsServiceRequest:
		return nil
	case *collogspb.ExportLogsServiceRequest:
		m = v
	case *coltracepb.ExportTraceServiceRequest:
		m = v
	default:
		return c.base.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := protoOpts.Unmarshal(buf.ReadOnlyData(), m); err != nil {
		pb.Reset(m)
		c.r.bad.Store(v, err)
	}
	return nil
}

// badRequest reports (and forgets) whether the codec could not decode m.
func (r *Receiver) badRequest(signal string, m any) error {
	err, ok := r.bad.LoadAndDelete(m)
	if !ok {
		return nil
	}
	r.countReject(RejectMalformed)
	r.o.Log.Debug().Str("reason", RejectMalformed).Str("signal", signal).Err(err.(error)).Msg("otlp grpc request rejected")
	return status.Errorf(codes.InvalidArgument, "decode otlp %s: %v: %v", signal, ErrMalformed, err)
}

// grpcPeer is the call's connPeer: the connection's (grpcStats.TagConn), else one from the
// call's peer.
func grpcPeer(ctx context.Context) *connPeer {
	if cp, ok := ctx.Value(connPeerKey{}).(*connPeer); ok {
		return cp
	}
	if p, ok := peer.FromContext(ctx); ok {
		return newConnPeer(p.LocalAddr, p.Addr)
	}
	return nil
}

type grpcLogs struct {
	collogspb.UnimplementedLogsServiceServer
	r *Receiver
}

func (s grpcLogs) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	if err := s.r.badRequest(SignalLogs, req); err != nil {
		return nil, err
	}
	evs, st := AdaptLogs(req)
	s.r.accept(SignalLogs, TransportOTLPGRPC, evs, st, grpcPeer(ctx))
	return &collogspb.ExportLogsServiceResponse{}, nil
}

type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s grpcTraces) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := s.r.badRequest(SignalTraces, req); err != nil {
		return nil, err
	}
	evs, st := AdaptTraces(req)
	s.r.accept(SignalTraces, TransportOTLPGRPC, evs, st, grpcPeer(ctx))
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (s grpcMetrics) Export(context.Context, *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	s.r.mu.Lock()
	s.r.st.Accepted[SignalMetrics]++
	s.r.mu.Unlock()
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

// grpcStats attaches a connPeer to each gRPC connection, counts calls per signal, and counts
// the failures grpc answers before a handler runs (too large, bad compression).
type grpcStats struct{ r *Receiver }

func (h grpcStats) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if cp := newConnPeer(info.LocalAddr, info.RemoteAddr); cp != nil {
		return context.WithValue(ctx, connPeerKey{}, cp)
	}
	return ctx
}

func (grpcStats) HandleConn(context.Context, stats.ConnStats) {}

type rpcSignalKey struct{}

func (h grpcStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	signal, ok := grpcSignals[info.FullMethodName]
	h.r.countRequest(TransportOTLPGRPC, signal)
	if !ok {
		// grpc answers Unimplemented without an End event.
		h.r.countReject(RejectNotFound)
		return ctx
	}
	return context.WithValue(ctx, rpcSignalKey{}, signal)
}

func (h grpcStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	end, ok := s.(*stats.End)
	if !ok || end.Error == nil {
		return
	}
	if _, known := ctx.Value(rpcSignalKey{}).(string); !known {
		return
	}
	st, _ := status.FromError(end.Error)
	switch st.Code() {
	case codes.InvalidArgument:
		return // counted by the handler
	case codes.ResourceExhausted:
		h.r.countReject(RejectTooLarge)
	case codes.Internal:
		if strings.Contains(st.Message(), "decompress") {
			h.r.countReject(RejectGzip)
		} else {
			h.r.countReject(RejectRead)
		}
	default:
		h.r.countReject(RejectRead)
	}
	h.r.o.Log.Debug().Err(end.Error).Msg("otlp grpc call failed")
}
