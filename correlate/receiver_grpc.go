package correlate

// OTLP/gRPC: the logs, traces and metrics services and the codec that counts malformed
// requests.

import (
	"context"
	"strings"
	"sync"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip decompressor for OTLP/gRPC
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	pb "google.golang.org/protobuf/proto"
)

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

type budgetTicketKey struct{}

// budgetTicket releases a call's room in the body budget once, when its End event comes.
type budgetTicket struct {
	once    sync.Once
	release func()
}

// grpcTap reserves room in the body budget for each call of a known method before grpc reads
// its message (grpc allocates the whole declared message up front). It cannot wait: it runs
// on the connection's reader. gRPC declares no size first, so a call costs the most a
// message may be. A logs or traces call from a sender no agent vouches for first draws on
// the untrusted byte rate (receiver_untrusted.go), as a body of unknown size: it needs the
// whole burst, so an outsider gets about one call per untrustedBurstSeconds.
func (r *Receiver) grpcTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	signal, ok := grpcSignals[info.FullMethodName]
	if !ok {
		return ctx, nil
	}
	if signal != SignalMetrics && !r.untrustedRoom(grpcPeer(ctx), -1) {
		r.countReject(RejectUntrustedBusy)
		return nil, status.Error(codes.Unavailable, "busy: telemetry from a sender no agent vouches for is over its rate, retry")
	}
	release := r.budget.tryAcquire(-1)
	if release == nil {
		r.countReject(RejectBusy)
		return nil, status.Error(codes.Unavailable, "busy: too many request bodies in flight, retry")
	}
	return context.WithValue(ctx, budgetTicketKey{}, &budgetTicket{release: release}), nil
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
	if !ok {
		return
	}
	if t, ok := ctx.Value(budgetTicketKey{}).(*budgetTicket); ok {
		t.once.Do(t.release)
	}
	if end.Error == nil {
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
