package otlp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
)

// Attribute names the exporter adds beside the record's own (docs/otlp-export.md).
const (
	// AttrRecordID is stable per record across retries, spooling and restarts: the exporter's
	// instance id and the record's number in that instance. A consumer deduplicates on it.
	AttrRecordID = "vigil.record.id"
	// AttrAttempt is how many times the record's batch has been sent, this time included: more
	// than 1 marks a batch that may have arrived before.
	AttrAttempt = "vigil.export.attempt"
)

// scopeName names the instrumentation scope of every record.
const scopeName = "github.com/vigil-sensor/vigil/sensor/sink/otlp"

// Records are encoded by hand, once, when they are written: a batch holds their protobuf
// bytes, the spool stores those bytes, and a request is assembled around them by copying
// (requestBytes). Nothing is built as a message, marshalled, parsed back or marshalled again
// on the way to the endpoint.
//
// A record's bytes leave out the attempt attribute, the one thing that changes between two
// sends of a batch: requestBytes appends it to every record as its last attribute with the
// attempt of that send. Every send, the first and each retry, goes through the same
// assembly with the attempt as an argument, so a retry cannot go out with a stale attempt.
// (Protobuf fields may come in any order, and the elements of a repeated field keep the
// order they appear in, wherever they are: the attempt appended after the other fields is
// the record's last attribute.)

// Field numbers of the OTLP messages encoded by hand
// (opentelemetry/proto/{collector/logs,logs,common}/v1).
const (
	fRequestResourceLogs = 1 // ExportLogsServiceRequest.resource_logs
	fResourceLogsRes     = 1 // ResourceLogs.resource
	fResourceLogsScope   = 2 // ResourceLogs.scope_logs
	fScopeLogsScope      = 1 // ScopeLogs.scope
	fScopeLogsRecords    = 2 // ScopeLogs.log_records
	fLogTime             = 1 // LogRecord.time_unix_nano, fixed64
	fLogSeverityNumber   = 2 // LogRecord.severity_number
	fLogSeverityText     = 3 // LogRecord.severity_text
	fLogBody             = 5 // LogRecord.body
	fLogAttributes       = 6 // LogRecord.attributes
	fLogObserved         = 11
	fKeyValueKey         = 1 // KeyValue.key
	fKeyValueValue       = 2 // KeyValue.value
	fAnyString           = 1 // AnyValue.string_value
	fAnyInt              = 3 // AnyValue.int_value
)

// recordOverhead bounds what a record takes in a request beyond its own bytes: its attempt
// attribute and its length prefix. It counts towards MaxBatchBytes.
const recordOverhead = 48

// A protobuf string must be UTF-8: the body and string attributes are made valid (each bad
// sequence replaced by U+FFFD, as the JSON encoder does in the line), so that one odd value
// can never make its whole batch unreadable to the endpoint. A marshaller would have refused
// the batch instead.

// appendRecord appends to dst the LogRecord of e whose JSON line (newline trimmed) is the
// body, without its attempt attribute (requestBytes adds it). The body is the line exactly
// as the JSONL file holds it, so a consumer parses one format whatever the transport, and a
// line in another format (OCSF) passes through unchanged; the attributes are a few of its
// fields repeated for routing and filtering without parsing the body. observed is when the
// exporter took the record.
func appendRecord(dst []byte, e *proto.Event, line []byte, id string, observed uint64) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if !utf8.Valid(line) {
		line = bytes.ToValidUTF8(line, []byte("\uFFFD"))
	}
	if t := uint64(e.Timestamp.UnixNano()); t != 0 {
		dst = protowire.AppendTag(dst, fLogTime, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, t)
	}
	if n, text := severity(e); n != 0 {
		dst = protowire.AppendTag(dst, fLogSeverityNumber, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(n))
		if text != "" {
			dst = protowire.AppendTag(dst, fLogSeverityText, protowire.BytesType)
			dst = protowire.AppendString(dst, text)
		}
	}
	dst = protowire.AppendTag(dst, fLogBody, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(protowire.SizeTag(fAnyString)+protowire.SizeBytes(len(line))))
	dst = protowire.AppendTag(dst, fAnyString, protowire.BytesType)
	dst = protowire.AppendBytes(dst, line)
	if observed != 0 {
		dst = protowire.AppendTag(dst, fLogObserved, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, observed)
	}
	dst = appendStrAttr(dst, "event.kind", e.Event.Kind)
	dst = appendStrAttr(dst, "event.category", e.Event.Category)
	dst = appendStrAttr(dst, "event.action", e.Event.Action)
	dst = appendStrAttr(dst, "event.dataset", e.Event.Dataset)
	dst = appendIntAttr(dst, "event.sequence", int64(e.Event.Sequence))
	if g := e.GenAI; g != nil {
		if g.Agent != nil {
			dst = appendStrAttr(dst, "gen_ai.agent.name", g.Agent.Name)
		}
		if g.Conversation != nil {
			dst = appendStrAttr(dst, "gen_ai.conversation.id", g.Conversation.ID)
		}
		if g.Tool != nil && g.Tool.Call != nil {
			dst = appendStrAttr(dst, "gen_ai.tool.call.id", g.Tool.Call.ID)
		}
	}
	if e.Process != nil {
		dst = appendIntAttr(dst, "process.pid", int64(e.Process.Pid))
	}
	schema := e.Vigil.Schema
	if schema == "" {
		schema = proto.SchemaVersion // what the encoder writes into the line
	}
	dst = appendStrAttr(dst, "vigil.schema", schema)
	return appendStrAttr(dst, AttrRecordID, id)
}

// appendStrAttr appends a string attribute (field 6 of a LogRecord), none when v is empty.
func appendStrAttr(dst []byte, k, v string) []byte {
	if v == "" {
		return dst
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	val := protowire.SizeTag(fAnyString) + protowire.SizeBytes(len(v))
	return appendKey(dst, k, val, func(dst []byte) []byte {
		dst = protowire.AppendTag(dst, fAnyString, protowire.BytesType)
		return protowire.AppendString(dst, v)
	})
}

// appendIntAttr appends an int attribute (field 6 of a LogRecord).
func appendIntAttr(dst []byte, k string, v int64) []byte {
	val := protowire.SizeTag(fAnyInt) + protowire.SizeVarint(uint64(v))
	return appendKey(dst, k, val, func(dst []byte) []byte {
		dst = protowire.AppendTag(dst, fAnyInt, protowire.VarintType)
		return protowire.AppendVarint(dst, uint64(v))
	})
}

// appendKey appends a KeyValue of key k whose AnyValue, of valSize bytes, value appends.
func appendKey(dst []byte, k string, valSize int, value func([]byte) []byte) []byte {
	kv := protowire.SizeTag(fKeyValueKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(fKeyValueValue) + protowire.SizeBytes(valSize)
	dst = protowire.AppendTag(dst, fLogAttributes, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(kv))
	dst = protowire.AppendTag(dst, fKeyValueKey, protowire.BytesType)
	dst = protowire.AppendString(dst, k)
	dst = protowire.AppendTag(dst, fKeyValueValue, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(valSize))
	return value(dst)
}

// attemptAttr is the attempt attribute of a send, as the tail of every record of its request.
func attemptAttr(attempt int) []byte {
	return appendIntAttr(nil, AttrAttempt, int64(attempt))
}

// recordID is AttrRecordID's value: the instance and the record's number in it.
func recordID(instance string, n uint64) string {
	return instance + "-" + strconv.FormatUint(n, 10)
}

// severity maps an alert's ECS severity (21 low, 47 medium, 73 high, 99 critical) onto OTLP's
// scale: low INFO, medium WARN, high ERROR, critical FATAL, with the word as the text. A record
// without a severity (every record but alerts) has none: it is not a log of the sensor's
// health, and INFO would claim a judgement nobody made.
func severity(e *proto.Event) (logspb.SeverityNumber, string) {
	s := e.Event.Severity
	if s <= 0 {
		return logspb.SeverityNumber_SEVERITY_NUMBER_UNSPECIFIED, ""
	}
	text := ""
	if e.Vigil.Alert != nil {
		text = e.Vigil.Alert.Severity
	}
	switch {
	case s <= 21:
		return logspb.SeverityNumber_SEVERITY_NUMBER_INFO, text
	case s <= 47:
		return logspb.SeverityNumber_SEVERITY_NUMBER_WARN, text
	case s <= 73:
		return logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, text
	default:
		return logspb.SeverityNumber_SEVERITY_NUMBER_FATAL, text
	}
}

// resource is the Resource of every export: what produced the records, per the OpenTelemetry
// semantic conventions, and the boot (process identities in the records are unique within one).
func resource(o Options) *resourcepb.Resource {
	var attrs []*commonpb.KeyValue
	for _, kv := range [][2]string{
		{"service.name", "vigil"},
		{"service.version", o.ServiceVersion},
		{"service.instance.id", o.InstanceID},
		{"host.name", o.HostName},
		{"host.id", o.HostID},
		{"os.type", o.OSType},
		{"vigil.boot_id", o.BootID},
	} {
		if kv[1] != "" {
			attrs = append(attrs, &commonpb.KeyValue{Key: kv[0], Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: kv[1]}}})
		}
	}
	return &resourcepb.Resource{Attributes: attrs}
}

// envelope is what every request of an exporter has around its records, encoded once at
// Open: the resource and the exporter's instrumentation scope.
type envelope struct {
	res, scope []byte
}

func newEnvelope(o Options) (envelope, error) {
	res, err := gproto.MarshalOptions{Deterministic: true}.Marshal(resource(o))
	if err != nil {
		return envelope{}, fmt.Errorf("encode resource: %w", err)
	}
	scope, err := gproto.MarshalOptions{Deterministic: true}.Marshal(&commonpb.InstrumentationScope{Name: scopeName, Version: o.ServiceVersion})
	if err != nil {
		return envelope{}, fmt.Errorf("encode scope: %w", err)
	}
	return envelope{res: res, scope: scope}, nil
}

// requestBytes is the ExportLogsServiceRequest, encoded, of b's records under env's resource
// and scope, each record ending with the attempt attribute of this send.
func requestBytes(env envelope, b *batch, attempt int) []byte {
	att := attemptAttr(attempt)
	recs := 0
	for r := range b.each() {
		n := len(r) + len(att)
		recs += protowire.SizeTag(fScopeLogsRecords) + protowire.SizeBytes(n)
	}
	scopeLogs := protowire.SizeTag(fScopeLogsScope) + protowire.SizeBytes(len(env.scope)) + recs
	resLogs := protowire.SizeTag(fResourceLogsRes) + protowire.SizeBytes(len(env.res)) +
		protowire.SizeTag(fResourceLogsScope) + protowire.SizeBytes(scopeLogs)
	out := make([]byte, 0, protowire.SizeTag(fRequestResourceLogs)+protowire.SizeBytes(resLogs))
	out = protowire.AppendTag(out, fRequestResourceLogs, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(resLogs))
	out = protowire.AppendTag(out, fResourceLogsRes, protowire.BytesType)
	out = protowire.AppendBytes(out, env.res)
	out = protowire.AppendTag(out, fResourceLogsScope, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(scopeLogs))
	out = protowire.AppendTag(out, fScopeLogsScope, protowire.BytesType)
	out = protowire.AppendBytes(out, env.scope)
	for r := range b.each() {
		out = protowire.AppendTag(out, fScopeLogsRecords, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(len(r)+len(att)))
		out = append(append(out, r...), att...)
	}
	return out
}

// errBadRecords: a batch's records are not length-prefixed protobuf records.
var errBadRecords = errors.New("malformed records")

// checkRecords checks that data is count records, each a length and that many bytes of
// well-formed protobuf fields (outside input: a spool file), and returns count.
func checkRecords(data []byte) (int, error) {
	count := 0
	for len(data) > 0 {
		rec, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return 0, fmt.Errorf("%w: record %d: %w", errBadRecords, count, protowire.ParseError(n))
		}
		for len(rec) > 0 {
			num, typ, m := protowire.ConsumeTag(rec)
			if m < 0 {
				return 0, fmt.Errorf("%w: record %d: %w", errBadRecords, count, protowire.ParseError(m))
			}
			k := protowire.ConsumeFieldValue(num, typ, rec[m:])
			if k < 0 {
				return 0, fmt.Errorf("%w: record %d: %w", errBadRecords, count, protowire.ParseError(k))
			}
			rec = rec[m+k:]
		}
		data = data[n:]
		count++
	}
	return count, nil
}
