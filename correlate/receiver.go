package correlate

// The OTLP receiver of `vigil run`: OTLP/HTTP and OTLP/gRPC on loopback, decoding and adapting
// logs and traces, with each request's sender resolved to a pid (research/agents/README.md §3,
// "PID mapping"). Claude sends all its signals over one keep-alive HTTP/1.1 connection from
// its main process; Codex opens one connection per signal from the native codex process: the
// pid is looked up once per connection.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
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
	// RejectBusy: no room in the in-flight body budget (HTTP 503 with Retry-After, gRPC
	// Unavailable); exporters retry.
	RejectBusy = "busy"
	// RejectUntrustedBusy: a sender no agent vouches for is over the untrusted byte rate
	// (HTTP 503 with Retry-After).
	RejectUntrustedBusy = "untrusted_busy"
)

// shutdownTimeout bounds Serve's graceful shutdown; connections still open then are closed.
const shutdownTimeout = time.Second

// Batch is one export request's adapted events with who sent it.
type Batch struct {
	Events    []proto.AgentEvent
	Transport string // TransportOTLPHTTP or TransportOTLPGRPC
	SenderPid int    // 0 when the peer could not be resolved
	// SenderStartBootNs is the sender's start time (ns since boot, clock-tick resolution)
	// when the resolver reports it (PeerIdentityResolver), else 0. With SenderPid it names
	// one process: a later process with the same pid is not the sender.
	SenderStartBootNs uint64
	Peer              netip.AddrPort
}

// ProcessStartResolver reads a live process's start time (ns since boot): the hook server
// names its senders by pid and start time with it.
type ProcessStartResolver interface {
	StartOf(pid int) (uint64, error)
}

// PeerIdentityResolver is a PeerResolver that also reports the owner's start time (ns since
// boot), read while the owner was seen holding the socket, so the sender is identified by
// (pid, start) and not by a pid that another process may take after it exits. The receiver
// uses PeerOf instead of PidOf when the resolver has it.
type PeerIdentityResolver interface {
	sensor.PeerResolver
	PeerOf(local, remote netip.AddrPort) (pid int, startBootNs uint64, err error)
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
	Resolver sensor.PeerResolver
	// Vouch reports whether a sender (pid, start time in ns since boot, 0 when unknown) is a
	// process whose telemetry counts, an agent's. Requests from any other sender draw on the
	// untrusted byte rate before they are read (receiver_untrusted.go). Nil vouches for all.
	Vouch func(pid int, startBootNs uint64) bool
	// UntrustedBytesPerSecond is that rate (its burst: 8 seconds of it); 0 means
	// DefaultUntrustedBytesPerSecond.
	UntrustedBytesPerSecond int
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
	// budget bounds the memory requests in flight may hold.
	budget *bodyBudget
	// untrustedRate is the byte rate of bodies no agent vouches for (receiver_untrusted.go).
	untrustedRate *byteRate

	mu sync.Mutex
	st ReceiverStats
}

// NewReceiver validates o and binds its listeners now, so that a port in use or a
// non-loopback address fails at start.
func NewReceiver(o ReceiverOptions) (*Receiver, error) {
	if o.HTTPAddr == "" && o.GRPCAddr == "" {
		return nil, errors.New("otlp receiver: neither an HTTP nor a gRPC address")
	}
	if o.UntrustedBytesPerSecond <= 0 {
		o.UntrustedBytesPerSecond = DefaultUntrustedBytesPerSecond
	}
	rate := o.UntrustedBytesPerSecond
	r := &Receiver{o: o, budget: newBodyBudget(), untrustedRate: newByteRate(rate, untrustedBurstSeconds*rate), st: ReceiverStats{
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
			grpc.InTapHandle(r.grpcTap),
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
	s.Requests = maps.Clone(r.st.Requests)
	s.Accepted = maps.Clone(r.st.Accepted)
	s.Rejected = maps.Clone(r.st.Rejected)
	s.Transports = maps.Clone(r.st.Transports)
	s.Skipped = maps.Clone(r.st.Skipped)
	return s
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
		b.SenderPid, b.SenderStartBootNs = r.sender(cp)
	}
	r.o.Deliver(b)
}
