// Package correlate binds kernel events to the agent session, prompt and tool call that caused
// them, using the agents' own telemetry. This file decodes OTLP/HTTP export requests;
// claude.go and codex.go turn them into proto.AgentEvent records.
package correlate

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// MaxBodyBytes bounds one decoded (already gunzipped) OTLP export body. The real agents'
// batches were 2–36 KiB (Claude) and up to 0.9 MiB (Codex's trace flush at exit); 8 MiB leaves
// room for a long session flushed at once while bounding the memory one request can take.
const MaxBodyBytes = 8 << 20

// Content types of OTLP/HTTP bodies.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeProtobuf = "application/x-protobuf"
)

// Errors a decoder wraps, for the receiver to map to HTTP status codes.
var (
	// ErrBodyTooLarge: the body exceeds MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("otlp body exceeds MaxBodyBytes")
	// ErrContentType: neither JSON nor protobuf (415).
	ErrContentType = errors.New("unsupported otlp content type")
	// ErrMalformed: the body does not parse (400).
	ErrMalformed = errors.New("malformed otlp body")
)

var (
	jsonOpts  = protojson.UnmarshalOptions{DiscardUnknown: true}
	protoOpts = proto.UnmarshalOptions{DiscardUnknown: true}
)

// DecodeLogs decodes an OTLP/HTTP logs export body (/v1/logs) of the given Content-Type.
func DecodeLogs(body []byte, contentType string) (*collogspb.ExportLogsServiceRequest, error) {
	req := &collogspb.ExportLogsServiceRequest{}
	isJSON, err := decode("logs", body, contentType, req)
	if err != nil {
		return nil, err
	}
	if isJSON {
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				for _, r := range sl.GetLogRecords() {
					r.TraceId = hexID(r.TraceId, 16)
					r.SpanId = hexID(r.SpanId, 8)
				}
			}
		}
	}
	return req, nil
}

// DecodeTraces decodes an OTLP/HTTP traces export body (/v1/traces) of the given Content-Type.
func DecodeTraces(body []byte, contentType string) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	isJSON, err := decode("traces", body, contentType, req)
	if err != nil {
		return nil, err
	}
	if isJSON {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					s.TraceId = hexID(s.TraceId, 16)
					s.SpanId = hexID(s.SpanId, 8)
					s.ParentSpanId = hexID(s.ParentSpanId, 8)
					for _, l := range s.GetLinks() {
						l.TraceId = hexID(l.TraceId, 16)
						l.SpanId = hexID(l.SpanId, 8)
					}
				}
			}
		}
	}
	return req, nil
}

// decode checks size and content type and unmarshals body into m. It reports whether the
// body was JSON, whose ids need hexID.
func decode(signal string, body []byte, contentType string, m proto.Message) (bool, error) {
	if len(body) > MaxBodyBytes {
		return false, fmt.Errorf("decode otlp %s: %d bytes > MaxBodyBytes (%d): %w",
			signal, len(body), MaxBodyBytes, ErrBodyTooLarge)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, fmt.Errorf("decode otlp %s: content type %q: %w: %w", signal, contentType, ErrContentType, err)
	}
	switch mt {
	case ContentTypeJSON:
		if err := jsonOpts.Unmarshal(body, m); err != nil {
			return false, fmt.Errorf("decode otlp %s: protojson: %w: %w", signal, ErrMalformed, err)
		}
		return true, nil
	case ContentTypeProtobuf, "application/protobuf":
		if err := protoOpts.Unmarshal(body, m); err != nil {
			return false, fmt.Errorf("decode otlp %s: protobuf: %w: %w", signal, ErrMalformed, err)
		}
		return false, nil
	default:
		return false, fmt.Errorf("decode otlp %s: content type %q: %w (want %s or %s)",
			signal, contentType, ErrContentType, ContentTypeJSON, ContentTypeProtobuf)
	}
}

// hexID repairs a trace or span id read by protojson. OTLP/JSON writes ids as hex strings
// (both agents do: "traceId":"ff2fedba731dd2058f15667c1c0bbb3e"), but protojson reads bytes
// fields as base64, and every hex string is also valid base64: a 32-digit trace id silently
// becomes 24 wrong bytes, a 16-digit span id 12. Those lengths cannot come from a correct
// base64 id (16 and 8 bytes), so re-encoding them to base64 gives back the hex text, which is
// then decoded as hex. Ids already of the right length (base64 senders, protobuf) pass
// unchanged, as does anything that is not hex.
func hexID(b []byte, size int) []byte {
	if len(b) != size*3/2 {
		return b
	}
	s := base64.StdEncoding.EncodeToString(b)
	out, err := hex.DecodeString(s)
	if err != nil || len(out) != size {
		return b
	}
	return out
}
