package otlp

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// TestRecord: each kind of record becomes a LogRecord whose body is the line it was handed
// (whatever its format), with the routing attributes the record has and its severity.
func TestRecord(t *testing.T) {
	ts := time.Date(2026, 12, 5, 10, 0, 0, 123, time.UTC)
	ok := true
	for _, tc := range []struct {
		name     string
		ev       *proto.Event
		line     string
		attrs    map[string]any
		severity logspb.SeverityNumber
		text     string
	}{
		{
			name: "kernel exec",
			ev: &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: "exec", Kind: "event", Category: "process", Dataset: "vigil.kernel", Sequence: 7},
				Process: &proto.Process{Pid: 99}},
			line: `{"kernel":1}` + "\n",
			attrs: map[string]any{"event.action": "exec", "event.kind": "event", "event.category": "process", "event.dataset": "vigil.kernel",
				"event.sequence": int64(7), "process.pid": int64(99), "vigil.schema": proto.SchemaVersion, AttrRecordID: "i-1", AttrAttempt: int64(0)},
		},
		{
			name: "agent tool call, an OCSF line passed through",
			ev: &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: proto.ActionAgentToolCall, Kind: "event", Dataset: proto.DatasetAgent, Sequence: 8},
				GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}, Conversation: &proto.GenAIConversation{ID: "sess-1"},
					Tool: &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: "toolu_1"}}},
				Vigil: proto.Vigil{Schema: "2", Tool: &proto.ToolCall{Success: &ok}}},
			line: `{"class_uid":6003,"metadata":{"version":"1.3.0"}}`,
			attrs: map[string]any{"event.action": proto.ActionAgentToolCall, "event.kind": "event", "event.dataset": proto.DatasetAgent,
				"event.sequence": int64(8), "gen_ai.agent.name": "claude-code", "gen_ai.conversation.id": "sess-1", "gen_ai.tool.call.id": "toolu_1",
				"vigil.schema": "2", AttrRecordID: "i-1", AttrAttempt: int64(0)},
		},
		{
			name: "high alert",
			ev: &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: proto.ActionAlert, Kind: proto.KindAlert, Dataset: proto.DatasetDetection, Sequence: 9, Severity: 73},
				Vigil: proto.Vigil{Alert: &proto.Alert{Severity: "high"}}},
			line: `{"alert":1}` + "\n",
			attrs: map[string]any{"event.action": proto.ActionAlert, "event.kind": proto.KindAlert, "event.dataset": proto.DatasetDetection,
				"event.sequence": int64(9), "vigil.schema": proto.SchemaVersion, AttrRecordID: "i-1", AttrAttempt: int64(0)},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, text: "high",
		},
	} {
		b := &batch{}
		b.add(appendRecord(nil, tc.ev, []byte(tc.line), "i-1", 42))
		lr := batchRecords(t, b, 0)[0]
		if want := recordRef(tc.ev, []byte(tc.line), "i-1", 42); !gproto.Equal(lr, want) {
			t.Errorf("%s: encoded by hand\n%v\nbuilt as a message\n%v", tc.name, lr, want)
		}
		got := otlptest.AttrMap(lr.GetAttributes())
		if len(got) != len(tc.attrs) {
			t.Errorf("%s: attributes %v, want %v", tc.name, got, tc.attrs)
		}
		for k, v := range tc.attrs {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.name, k, got[k], v)
			}
		}
		if want := strings.TrimSuffix(tc.line, "\n"); lr.GetBody().GetStringValue() != want {
			t.Errorf("%s: body %q, want the line without its newline %q", tc.name, lr.GetBody().GetStringValue(), want)
		}
		if lr.TimeUnixNano != uint64(ts.UnixNano()) || lr.ObservedTimeUnixNano != 42 {
			t.Errorf("%s: times %d, %d", tc.name, lr.TimeUnixNano, lr.ObservedTimeUnixNano)
		}
		if lr.SeverityNumber != tc.severity || lr.SeverityText != tc.text {
			t.Errorf("%s: severity %v %q, want %v %q", tc.name, lr.SeverityNumber, lr.SeverityText, tc.severity, tc.text)
		}
		for _, attempt := range []int{1, 3, 200, maxAttempt} {
			lr := batchRecords(t, b, attempt)[0]
			last := lr.Attributes[len(lr.Attributes)-1]
			if last.GetKey() != AttrAttempt || last.GetValue().GetIntValue() != int64(attempt) {
				t.Errorf("%s: sent as attempt %d, the last attribute is %v", tc.name, attempt, last)
			}
		}
	}
}

// batchRecords are b's records as a request sent as attempt carries them, parsed back.
func batchRecords(t testing.TB, b *batch, attempt int) []*logspb.LogRecord {
	t.Helper()
	var req collogspb.ExportLogsServiceRequest
	if err := gproto.Unmarshal(requestBytes(envelope{}, b, attempt), &req); err != nil {
		t.Fatalf("request of attempt %d does not parse: %v", attempt, err)
	}
	recs := req.GetResourceLogs()[0].GetScopeLogs()[0].GetLogRecords()
	if len(recs) != b.count {
		t.Fatalf("request holds %d records, the batch %d", len(recs), b.count)
	}
	return recs
}

// recordRef is the LogRecord of a record built as a message, the way the exporter did before
// it encoded records by hand (appendRecord): the reference the bytes must parse back to.
func recordRef(e *proto.Event, line []byte, id string, observed uint64) *logspb.LogRecord {
	line = bytes.TrimSuffix(line, []byte("\n"))
	var attrs []*commonpb.KeyValue
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
		schema = proto.SchemaVersion
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

// withAttempt is lr with its attempt attribute (the last) set to attempt.
func withAttempt(lr *logspb.LogRecord, attempt int) *logspb.LogRecord {
	lr = gproto.Clone(lr).(*logspb.LogRecord)
	lr.Attributes[len(lr.Attributes)-1].Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(attempt)}}
	return lr
}

// TestRequestBytes: the request assembled from a batch's bytes is, parsed, the request built as
// messages (resource, scope, records) with every record's attempt the one of that send: a
// retry whose records kept the attempt of the send before fails here.
func TestRequestBytes(t *testing.T) {
	o := Options{InstanceID: "inst1", ServiceVersion: "1.2.3", HostName: "devbox", OSType: "linux", BootID: "boot-1"}
	env, err := newEnvelope(o)
	if err != nil {
		t.Fatal(err)
	}
	b := &batch{}
	var refs []*logspb.LogRecord
	for i := range 5 {
		ev := testEvent(i)
		b.add(appendRecord(nil, ev, lineOf(t, ev), recordID("inst1", uint64(i+1)), 7))
		refs = append(refs, recordRef(ev, lineOf(t, ev), recordID("inst1", uint64(i+1)), 7))
	}
	for _, attempt := range []int{1, 2, 3, 127, 128, 1 << 20} {
		var got collogspb.ExportLogsServiceRequest
		if err := gproto.Unmarshal(requestBytes(env, b, attempt), &got); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		var recs []*logspb.LogRecord
		for _, r := range refs {
			recs = append(recs, withAttempt(r, attempt))
		}
		want := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
			Resource: resource(o),
			ScopeLogs: []*logspb.ScopeLogs{{
				Scope:      &commonpb.InstrumentationScope{Name: scopeName, Version: o.ServiceVersion},
				LogRecords: recs,
			}},
		}}}
		if !gproto.Equal(&got, want) {
			t.Fatalf("attempt %d: request\n%v\nwant\n%v", attempt, &got, want)
		}
	}
	if got := (&resourcepb.Resource{}); gproto.Unmarshal(env.res, got) != nil || len(got.Attributes) != 6 {
		t.Errorf("resource %v", got)
	}
}

// TestLegacySpoolPayload: a batch spooled by the version before (msgpack, each record a whole
// LogRecord with its attempt attribute last) is read back as the same records with the same
// attempt, and sent like a batch of this version's.
func TestLegacySpoolPayload(t *testing.T) {
	sb := spoolBatch{Attempt: 2}
	var refs []*logspb.LogRecord
	for i := range 3 {
		ev := testEvent(i)
		lr := withAttempt(recordRef(ev, lineOf(t, ev), recordID("old", uint64(i+1)), 9), 2)
		refs = append(refs, lr)
		raw, err := gproto.Marshal(lr)
		if err != nil {
			t.Fatal(err)
		}
		sb.Records = append(sb.Records, raw)
	}
	payload, err := msgpack.Marshal(&sb)
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] == spoolRecords {
		t.Fatalf("a msgpack payload starts with the current format's byte %#x", payload[0])
	}
	b, err := decodeBatch(payload)
	if err != nil {
		t.Fatal(err)
	}
	if b.attempt != 2 || b.count != 3 {
		t.Fatalf("attempt %d, %d records; want 2, 3", b.attempt, b.count)
	}
	for i, lr := range batchRecords(t, b, 3) {
		if want := withAttempt(refs[i], 3); !gproto.Equal(lr, want) {
			t.Errorf("record %d: %v, want %v", i, lr, want)
		}
	}
	// Read back from the current format, the batch is the same.
	again, err := decodeBatch(encodeBatch(b))
	if err != nil || again.attempt != 2 || !bytes.Equal(again.data, b.data) {
		t.Errorf("current format round trip: %v, %v", again, err)
	}
	sb.Records[1] = []byte{0xff}
	if payload, _ := msgpack.Marshal(&sb); payload != nil {
		if _, err := decodeBatch(payload); err == nil {
			t.Error("a legacy record that does not parse was accepted")
		}
	}
}

// TestRecordInvalidUTF8: a record with bytes that are not UTF-8 in its line or an attribute is
// still a LogRecord an endpoint can read (protobuf strings are UTF-8; the parse checks), the
// bad bytes replaced, and its batch's other records untouched.
func TestRecordInvalidUTF8(t *testing.T) {
	ev := testEvent(1)
	ev.GenAI = &proto.GenAI{Conversation: &proto.GenAIConversation{ID: "sess-\xff\xfe"}}
	b := &batch{}
	b.add(appendRecord(nil, ev, []byte("{\"x\":\"\xc3\"}\n"), "i-1", 1))
	b.add(appendRecord(nil, testEvent(2), lineOf(t, testEvent(2)), "i-2", 1))
	recs := batchRecords(t, b, 1)
	if got := recs[0].GetBody().GetStringValue(); got != "{\"x\":\"\uFFFD\"}" {
		t.Errorf("body %q", got)
	}
	if got := otlptest.AttrMap(recs[0].GetAttributes())["gen_ai.conversation.id"]; got != "sess-\uFFFD" {
		t.Errorf("conversation id %q", got)
	}
	if got := otlptest.AttrMap(recs[1].GetAttributes())[AttrRecordID]; got != "i-2" {
		t.Errorf("second record id %v", got)
	}
}

// TestRequestJSON: the OTLP/JSON converted by hand from a request's bytes is, parsed strictly
// (decodeOTLPJSON), the request the bytes are: for every kind of record, lines with quotes,
// control characters and non-ASCII text, and a record read back from a legacy spool (its
// attributes not adjacent). What the conversion does not know is left to protojson.
func TestRequestJSON(t *testing.T) {
	env, err := newEnvelope(Options{InstanceID: "inst1", ServiceVersion: "1.2.3", HostName: "devbox"})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 5, 10, 0, 0, 123, time.UTC)
	b := &batch{}
	for i := range 3 {
		ev := testEvent(i)
		b.add(appendRecord(nil, ev, lineOf(t, ev), recordID("inst1", uint64(i+1)), 7))
	}
	alert := &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: proto.ActionAlert, Kind: proto.KindAlert, Severity: 99},
		Vigil: proto.Vigil{Alert: &proto.Alert{Severity: "crit\"ical"}}}
	b.add(appendRecord(nil, alert, []byte("{\"a\":\"tab\\there\",\"ctl\":\"\x01\x1f\",\"é\":\"日本\u2028\"}\n"), "inst1-4", 0))
	b.add(appendRecord(nil, &proto.Event{}, []byte("raw \"quoted\" \\ line\r\n"), "inst1-5", 1))
	sb := spoolBatch{Attempt: 1}
	raw, err := gproto.Marshal(withAttempt(recordRef(testEvent(9), lineOf(t, testEvent(9)), "old-1", 3), 1))
	if err != nil {
		t.Fatal(err)
	}
	sb.Records = append(sb.Records, raw)
	payload, err := msgpack.Marshal(&sb)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := decodeBatch(payload)
	if err != nil {
		t.Fatal(err)
	}
	for r := range legacy.each() {
		b.add(r)
	}
	var jc jsonCache
	for _, attempt := range []int{1, 2} { // the second time from the cache
		req := requestBytes(env, b, attempt)
		j, ok := jc.requestJSON(nil, req)
		if !ok || !json.Valid(j) {
			t.Fatalf("attempt %d: converted %v, valid JSON %v: %s", attempt, ok, json.Valid(j), j)
		}
		var got, want collogspb.ExportLogsServiceRequest
		if err := decodeOTLPJSON(j, &got); err != nil {
			t.Fatalf("attempt %d: %v in %s", attempt, err, j)
		}
		if err := gproto.Unmarshal(req, &want); err != nil {
			t.Fatal(err)
		}
		if !gproto.Equal(&got, &want) {
			t.Fatalf("attempt %d: JSON\n%v\nwant\n%v", attempt, &got, &want)
		}
		if n := len(got.ResourceLogs[0].ScopeLogs[0].LogRecords); n != 6 {
			t.Fatalf("%d records", n)
		}
	}
	// A field the exporter never writes (a trace id): protojson's to convert.
	odd := &batch{}
	odd.add(protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), []byte{1, 2}))
	if _, ok := jc.requestJSON(nil, requestBytes(env, odd, 1)); ok {
		t.Error("a record with a trace id was converted by hand")
	}
}
