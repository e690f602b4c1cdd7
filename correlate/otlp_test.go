package correlate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	pb "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
)

func clone(t *testing.T, req *collogspb.ExportLogsServiceRequest) *collogspb.ExportLogsServiceRequest {
	t.Helper()
	return pb.Clone(req).(*collogspb.ExportLogsServiceRequest)
}

func strValue(s string) *commonpb.AnyValue_StringValue {
	return &commonpb.AnyValue_StringValue{StringValue: s}
}

func TestDecodeErrors(t *testing.T) {
	logsJSON := readSample(t, "codex/0003_logs.json")
	req, err := DecodeLogs(logsJSON, ContentTypeJSON)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := pb.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		body        []byte
		contentType string
		want        error
	}{
		{"malformed json", logsJSON[:len(logsJSON)/2], ContentTypeJSON, ErrMalformed},
		{"json of the wrong shape", []byte(`{"resourceLogs": 5, "resourceSpans": 5}`), ContentTypeJSON, ErrMalformed},
		{"empty json", nil, ContentTypeJSON, ErrMalformed},
		{"protobuf sent as json", wire, ContentTypeJSON, ErrMalformed},
		{"truncated protobuf", wire[:len(wire)-1], ContentTypeProtobuf, ErrMalformed},
		{"json sent as protobuf", logsJSON, ContentTypeProtobuf, ErrMalformed},
		{"oversize", bytes.Repeat([]byte(" "), MaxBodyBytes+1), ContentTypeJSON, ErrBodyTooLarge},
		{"text/plain", logsJSON, "text/plain", ErrContentType},
		{"no content type", logsJSON, "", ErrContentType},
		{"grpc", wire, "application/grpc", ErrContentType},
		{"bad media type", logsJSON, "application/json; charset", ErrContentType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeLogs(tt.body, tt.contentType)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if req != nil {
				t.Errorf("request returned with error")
			}
			if !strings.HasPrefix(err.Error(), "decode otlp logs: ") {
				t.Errorf("error does not name the step: %v", err)
			}
			if tt.want == ErrBodyTooLarge && !strings.Contains(err.Error(), "MaxBodyBytes") {
				t.Errorf("oversize error does not name the limit: %v", err)
			}
			_, err = DecodeTraces(tt.body, tt.contentType)
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "decode otlp traces: ") {
				t.Errorf("traces: err = %v", err)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	body := readSample(t, "claude/0003_logs.json")
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		if _, err := DecodeLogs(body, ct); err != nil {
			t.Errorf("%q: %v", ct, err)
		}
	}
	// Exactly MaxBodyBytes is allowed: an empty protobuf padded with an unknown field.
	big := append([]byte{0x7a}, varint(MaxBodyBytes-1-len(varint(MaxBodyBytes)))...) // field 15, bytes
	big = append(big, make([]byte, MaxBodyBytes-len(big))...)
	if len(big) != MaxBodyBytes {
		t.Fatalf("test body %d bytes", len(big))
	}
	if _, err := DecodeLogs(big, ContentTypeProtobuf); err != nil {
		t.Errorf("body of exactly MaxBodyBytes: %v", err)
	}
	// An empty protobuf body is a valid empty request.
	req, err := DecodeTraces(nil, "application/protobuf")
	if err != nil || len(req.ResourceSpans) != 0 {
		t.Errorf("empty protobuf: %v %v", req, err)
	}
}

func varint(n int) []byte {
	var b []byte
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// TestHexIDs: OTLP/JSON ids are hex, but base64 from a protojson-style sender is read too.
func TestHexIDs(t *testing.T) {
	const tmpl = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"claude-code"}}]},
	"scopeSpans":[{"spans":[{"traceId":%q,"spanId":%q,"parentSpanId":%q,"name":"claude_code.interaction","startTimeUnixNano":"1795346739953000000",
	"links":[{"traceId":%q,"spanId":%q}]}]}]}]}`
	hexBody := []byte(sprintf(tmpl, "ff2fedba731dd2058f15667c1c0bbb3e", "3b7a535e0b6f92ff", "", "FF2FEDBA731DD2058F15667C1C0BBB3E", "1cac4adff27c067e"))
	b64Body := []byte(sprintf(tmpl, "/y/tunMd0gWPFWZ8HAu7Pg==", "O3pTXgtvkv8=", "", "/y/tunMd0gWPFWZ8HAu7Pg==", "HKxK3/J8Bn4="))
	for name, body := range map[string][]byte{"hex": hexBody, "base64": b64Body} {
		req, err := DecodeTraces(body, ContentTypeJSON)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
		if hexString(s.TraceId) != "ff2fedba731dd2058f15667c1c0bbb3e" || hexString(s.SpanId) != "3b7a535e0b6f92ff" || len(s.ParentSpanId) != 0 {
			t.Errorf("%s: ids %x %x %x", name, s.TraceId, s.SpanId, s.ParentSpanId)
		}
		if hexString(s.Links[0].TraceId) != "ff2fedba731dd2058f15667c1c0bbb3e" || hexString(s.Links[0].SpanId) != "1cac4adff27c067e" {
			t.Errorf("%s: link ids %x %x", name, s.Links[0].TraceId, s.Links[0].SpanId)
		}
	}
	// A 24-byte value that is not base64 of hex text stays as it was.
	odd := bytes.Repeat([]byte{0xff}, 24)
	if got := hexID(odd, 16); !bytes.Equal(got, odd) {
		t.Errorf("hexID changed a non-hex id: %x", got)
	}
}

func sprintf(format string, a ...any) string {
	return strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", "")
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func kv(key string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: key, Value: v}
}

func sv(s string) *commonpb.AnyValue { return &commonpb.AnyValue{Value: strValue(s)} }
func iv(i int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
}
func dv(f float64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: f}}
}
func bv(b bool) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: b}}
}

func TestAttrReading(t *testing.T) {
	attrs := []*commonpb.KeyValue{
		kv("s", sv("x")), kv("sn", sv(" 536 ")), kv("sf", sv("12.9")), kv("sb", sv("false")),
		kv("i", iv(-7)), kv("d", dv(520.89)), kv("nan", dv(math.NaN())), kv("huge", dv(1e30)),
		kv("b", bv(true)), kv("i1", iv(1)), kv("i2", iv(2)), kv("nil", nil),
		kv("dup", iv(3)), kv("dup", sv("thread")),
		kv("arr", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{}}),
	}
	strs := map[string]string{"s": "x", "i": "-7", "d": "520.89", "b": "true", "dup": "3", "arr": "", "nil": "", "missing": ""}
	for k, want := range strs {
		if got := attrStr(attrs, k); got != want {
			t.Errorf("attrStr(%s) = %q, want %q", k, got, want)
		}
	}
	ints := map[string]int64{"sn": 536, "sf": 12, "i": -7, "d": 520}
	for k, want := range ints {
		if got, ok := attrInt(attrs, k); !ok || got != want {
			t.Errorf("attrInt(%s) = %d %v, want %d", k, got, ok, want)
		}
	}
	for _, k := range []string{"s", "nan", "huge", "b", "missing", "nil"} {
		if _, ok := attrInt(attrs, k); ok {
			t.Errorf("attrInt(%s) ok", k)
		}
	}
	bools := map[string]*bool{"sb": boolp(false), "b": boolp(true), "i1": boolp(true), "i2": nil, "s": nil, "d": nil, "missing": nil}
	for k, want := range bools {
		got := attrBool(attrs, k)
		if (got == nil) != (want == nil) || got != nil && *got != *want {
			t.Errorf("attrBool(%s) = %v, want %v", k, got, want)
		}
	}
}

// TestLogTimeFallbacks: event.timestamp, then timeUnixNano, then observedTimeUnixNano, never
// arrival time; a record with none is skipped and counted.
func TestLogTimeFallbacks(t *testing.T) {
	rec := func(ts string, tn, on uint64) *logspb.LogRecord {
		attrs := []*commonpb.KeyValue{kv("event.name", sv("codex.user_prompt"))}
		if ts != "" {
			attrs = append(attrs, kv("event.timestamp", sv(ts)))
		}
		return &logspb.LogRecord{TimeUnixNano: tn, ObservedTimeUnixNano: on, Attributes: attrs}
	}
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", sv("codex_exec"))}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			rec("2026-11-22T11:25:13.737Z", 1, 2),
			rec("not a time", 1795346713000000000, 2),
			rec("", 0, 1795346714000000000),
			rec("", 0, 0),
			rec("", math.MaxUint64, 0),
		}}},
	}}}
	evs, st := AdaptLogs(req)
	want := []string{"2026-11-22T11:25:13.737Z", "2026-11-22T11:25:13Z", "2026-11-22T11:25:14Z"}
	if len(evs) != len(want) || st.Skipped[SkipNoTime] != 2 {
		t.Fatalf("%d events, stats %+v", len(evs), st)
	}
	for i, w := range want {
		if !evs[i].Time.Equal(ts(w)) || evs[i].Time.Location() != ts(w).Location() {
			t.Errorf("event %d time %v, want %v", i, evs[i].Time, w)
		}
	}
}

func TestSpanStatusAndUnknownNames(t *testing.T) {
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", sv("claude-code"))}}
	span := func(name string, code tracepb.Status_StatusCode, attrs ...*commonpb.KeyValue) *tracepb.Span {
		return &tracepb.Span{Name: name, StartTimeUnixNano: 1795346741072000000, Status: &tracepb.Status{Code: code}, Attributes: attrs}
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		span("claude_code.tool.execution", tracepb.Status_STATUS_CODE_ERROR, kv("tool_use_id", sv("a"))),
		span("claude_code.tool.execution", tracepb.Status_STATUS_CODE_ERROR, kv("tool_use_id", sv("b")), kv("success", bv(true))),
		span("claude_code.tool", tracepb.Status_STATUS_CODE_UNSET, kv("gen_ai.tool.call.id", sv("c"))),
		span("claude_code.new_span_kind", tracepb.Status_STATUS_CODE_UNSET),
		{Name: "claude_code.tool"}, // no start time
	}}}}}}
	evs, st := AdaptTraces(req)
	if len(evs) != 3 || st.Skipped[SkipUnknownEvent] != 1 || st.Skipped[SkipNoTime] != 1 {
		t.Fatalf("%d events, %+v", len(evs), st)
	}
	if evs[0].Success == nil || *evs[0].Success || evs[1].Success == nil || !*evs[1].Success || evs[2].Success != nil {
		t.Errorf("success: %v %v %v", evs[0].Success, evs[1].Success, evs[2].Success)
	}
	if evs[2].ToolUseID != "c" || !evs[2].EndTime.IsZero() {
		t.Errorf("tool span %+v", evs[2])
	}
}

func TestUnknownEventNames(t *testing.T) {
	for _, svc := range []string{"claude-code", "codex_exec"} {
		req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", sv(svc))}},
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
				{TimeUnixNano: 1, Attributes: []*commonpb.KeyValue{kv("event.name", sv("something_new"))}},
				{TimeUnixNano: 1},
				nil,
			}}},
		}}}
		_, st := AdaptLogs(req)
		if st.Records != 3 || st.Skipped[SkipUnknownEvent] != 1 || st.Skipped[SkipNoEventName] != 2 {
			t.Errorf("%s: %+v", svc, st)
		}
	}
	// Claude's body names the event when event.name is missing.
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", sv("claude-code"))}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			{TimeUnixNano: 1795346740112000000, Body: sv("claude_code.user_prompt"), Attributes: []*commonpb.KeyValue{kv("prompt", sv("hi"))}},
		}}},
	}}}
	evs, _ := AdaptLogs(req)
	if len(evs) != 1 || evs[0].Kind != proto.KindUserPrompt || evs[0].Prompt != "hi" || evs[0].EventName != "claude_code.user_prompt" {
		t.Errorf("body-named event: %+v", evs)
	}
}

func TestPatchFiles(t *testing.T) {
	patch := "*** Begin Patch\r\n*** Add File: out.txt\r\n+x\n*** Update File: src/a b.go\n*** Move to: src/c.go\n@@\n-a\n+b\n" +
		"*** Delete File: old.txt\n*** Update File: out.txt\n+*** Add File: not-a-marker\n*** End Patch\n"
	want := []string{"out.txt", "src/a b.go", "src/c.go", "old.txt"}
	if got := patchFiles(patch); !slices.Equal(got, want) {
		t.Errorf("patchFiles = %q, want %q", got, want)
	}
	if got := patchFiles("no patch here"); got != nil {
		t.Errorf("patchFiles(plain) = %q", got)
	}
}

func TestCodexArguments(t *testing.T) {
	patch := "*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch\n"
	tests := []struct {
		args    string
		command string
		files   []string
	}{
		{`{"cmd": "ls -la", "yield_time_ms": 5000}`, "ls -la", nil},
		{`{"cmd": ["bash", "-lc", "ls"]}`, "bash -lc ls", nil},
		{`{"command": ["bash", "-lc", "ls"], "workdir": "/r"}`, "bash -lc ls", nil},
		{`{"cmd": 5}`, "", nil},
		{patch, "", []string{"a.txt"}},
		{`{"input": ` + quote(patch) + `}`, "", []string{"a.txt"}},
		{`{"cmd": ` + quote("apply_patch <<'EOF'\n"+patch+"EOF\n") + `}`, "apply_patch <<'EOF'\n" + patch + "EOF\n", []string{"a.txt"}},
		{`{"cmd": "unterminated`, "", nil},
		{"", "", nil},
	}
	for _, tt := range tests {
		var ev proto.AgentEvent
		codexArguments(&ev, tt.args)
		if ev.Command != tt.command || !slices.Equal(ev.FilePaths, tt.files) {
			t.Errorf("codexArguments(%q) = %q %q, want %q %q", tt.args, ev.Command, ev.FilePaths, tt.command, tt.files)
		}
	}
}

func TestClaudeToolDetails(t *testing.T) {
	tests := []struct {
		tool, params, input string
		command             string
		files               []string
	}{
		{"Bash", `{"bash_command":"echo","full_command":"echo hi","description":"d"}`, `{"command":"echo other"}`, "echo hi", nil},
		{"Bash", ``, `{"command":"echo hi"}`, "echo hi", nil},
		{"Read", ``, `{"file_path":"/r/notes.txt"}`, "", []string{"/r/notes.txt"}},
		{"NotebookEdit", ``, `{"notebook_path":"/r/n.ipynb"}`, "", []string{"/r/n.ipynb"}},
		{"mcp__x", `{"mcp_server_name":"x"}`, `{"command":"not a shell"}`, "", nil},
		{"Bash", `{"full_command":`, `[1,2]`, "", nil},
	}
	for _, tt := range tests {
		ev := proto.AgentEvent{ToolName: tt.tool}
		claudeToolDetails(&ev, tt.params, tt.input)
		if ev.Command != tt.command || !slices.Equal(ev.FilePaths, tt.files) {
			t.Errorf("%s %s %s: %q %q, want %q %q", tt.tool, tt.params, tt.input, ev.Command, ev.FilePaths, tt.command, tt.files)
		}
	}
}

func TestStatsAdd(t *testing.T) {
	var total AdaptStats
	total.Add(AdaptStats{Records: 3, Events: 1, Skipped: map[string]int{SkipIgnoredEvent: 2}})
	total.Add(AdaptStats{Records: 2, Events: 1, Skipped: map[string]int{SkipIgnoredEvent: 1}})
	if total.Records != 5 || total.Events != 2 || total.Skipped[SkipIgnoredEvent] != 3 {
		t.Errorf("%+v", total)
	}
}

// samples are the fuzz seeds: every payload of the given signal.
func samples(f *testing.F, signal string) [][]byte {
	files, _ := filepath.Glob("testdata/*/*_" + signal + ".json")
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no samples")
	}
	return out
}

// fuzzDecodeAdapt seeds f with the real samples of a signal, as they are for JSON or
// re-encoded for protobuf, and checks that any body that decodes also adapts, with stats
// that add up.
func fuzzDecodeAdapt[M pb.Message](f *testing.F, signal, contentType string,
	decode func([]byte, string) (M, error), adapt func(M) ([]proto.AgentEvent, AdaptStats)) {
	for _, b := range samples(f, signal) {
		if contentType == ContentTypeProtobuf {
			req, err := decode(b, ContentTypeJSON)
			if err != nil {
				f.Fatal(err)
			}
			if b, err = pb.Marshal(req); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decode(body, contentType)
		if err != nil {
			return
		}
		evs, st := adapt(req)
		skipped := 0
		for _, n := range st.Skipped {
			skipped += n
		}
		if st.Events != len(evs) || st.Adapted+skipped != st.Records {
			t.Fatalf("stats %+v for %d events", st, len(evs))
		}
	})
}

func FuzzDecodeLogsJSON(f *testing.F) {
	f.Add([]byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"intValue":"5"}}]}}]}`))
	fuzzDecodeAdapt(f, "logs", ContentTypeJSON, DecodeLogs, AdaptLogs)
}

func FuzzDecodeLogsProto(f *testing.F) {
	fuzzDecodeAdapt(f, "logs", ContentTypeProtobuf, DecodeLogs, AdaptLogs)
}

func FuzzDecodeTracesJSON(f *testing.F) {
	fuzzDecodeAdapt(f, "traces", ContentTypeJSON, DecodeTraces, AdaptTraces)
}

func FuzzDecodeTracesProto(f *testing.F) {
	fuzzDecodeAdapt(f, "traces", ContentTypeProtobuf, DecodeTraces, AdaptTraces)
}
