package otlp

import (
	"bytes"
	"strconv"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

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

// record builds the LogRecord of e whose JSON line (newline trimmed) is the body. The body is
// the line exactly as the JSONL file holds it, so a consumer parses one format whatever the
// transport, and a line in another format (OCSF) passes through unchanged; the attributes
// are a few of its fields repeated for routing and filtering without parsing the body.
// observed is when the exporter took the record. The attempt attribute comes last, so that
// setAttempt finds it without a search.
func record(e *proto.Event, line []byte, id string, observed uint64) *logspb.LogRecord {
	line = bytes.TrimSuffix(line, []byte("\n"))
	attrs := make([]*commonpb.KeyValue, 0, 14)
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}})
		}
	}
	num := func(k string, v int64) {
		attrs = append(attrs, &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}})
	}
	str("event.kind", e.Event.Kind)
	str("event.category", e.Event.Category)
	str("event.action", e.Event.Action)
	str("event.dataset", e.Event.Dataset)
	num("event.sequence", int64(e.Event.Sequence))
	if g := e.GenAI; g != nil {
		if g.Agent != nil {
			str("gen_ai.agent.name", g.Agent.Name)
		}
		if g.Conversation != nil {
			str("gen_ai.conversation.id", g.Conversation.ID)
		}
		if g.Tool != nil && g.Tool.Call != nil {
			str("gen_ai.tool.call.id", g.Tool.Call.ID)
		}
	}
	if e.Process != nil {
		num("process.pid", int64(e.Process.Pid))
	}
	schema := e.Vigil.Schema
	if schema == "" {
		schema = proto.SchemaVersion // what the encoder writes into the line
	}
	str("vigil.schema", schema)
	str(AttrRecordID, id)
	num(AttrAttempt, 0)
	lr := &logspb.LogRecord{
		TimeUnixNano:         uint64(e.Timestamp.UnixNano()),
		ObservedTimeUnixNano: observed,
		Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: string(line)}},
		Attributes:           attrs,
	}
	lr.SeverityNumber, lr.SeverityText = severity(e)
	return lr
}

// setAttempt sets the attempt attribute record put last.
func setAttempt(lr *logspb.LogRecord, attempt int) {
	lr.Attributes[len(lr.Attributes)-1].Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(attempt)}}
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

// request wraps records into one export request under the resource and the exporter's scope.
func request(res *resourcepb.Resource, version string, records []*logspb.LogRecord) *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: res,
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope:      &commonpb.InstrumentationScope{Name: scopeName, Version: version},
			LogRecords: records,
		}},
	}}}
}
