package correlate

// OTLP/HTTP: protobuf and JSON bodies, gzip, and the OTLP status answers.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	pb "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
)

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
	// Room for the body before a byte of it is read: a gzip body may inflate to MaxBodyBytes.
	declared := req.ContentLength
	if gz {
		declared = -1
	}
	if signal != SignalMetrics && !r.untrustedRoom(requestPeer(req), declared) {
		w.Header().Set("Retry-After", "1")
		r.httpReject(w, req, ct, http.StatusServiceUnavailable, RejectUntrustedBusy, "busy: telemetry from a sender no agent vouches for is over its rate, retry")
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), budgetWait)
	release := r.budget.acquire(ctx, declared)
	cancel()
	if release == nil {
		w.Header().Set("Retry-After", "1")
		r.httpReject(w, req, ct, http.StatusServiceUnavailable, RejectBusy, "busy: too many request bodies in flight, retry")
		return
	}
	defer release()
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
