package correlate

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Reasons a log record or span was not turned into an AgentEvent: the keys of
// AdaptStats.Skipped. The set is fixed, so outside input cannot grow the map.
const (
	// SkipUnknownService: the resource's service.name is not an agent we adapt.
	SkipUnknownService = "unknown_service"
	// SkipNoEventName: a log record without event.name (Codex's "flushing OTEL metrics"
	// debug record).
	SkipNoEventName = "no_event_name"
	// SkipUnknownEvent: an event or span name the agent's adapter does not know; a new agent
	// version may have added it.
	SkipUnknownEvent = "unknown_event"
	// SkipIgnoredEvent: a known log event the correlator does not use (Claude
	// hook_registered, Codex codex.sse_event, codex.startup_phase, codex.turn_ttft).
	SkipIgnoredEvent = "ignored_event"
	// SkipIgnoredSpan: a known span the correlator does not use (claude_code.llm_request,
	// claude_code.tool.blocked_on_user, Codex's internal tracing spans).
	SkipIgnoredSpan = "ignored_span"
	// SkipNoTime: the record carries no usable timestamp of the agent's own.
	SkipNoTime = "no_time"
)

// AdaptStats counts what one AdaptLogs or AdaptTraces call did.
type AdaptStats struct {
	// Records is the number of log records or spans examined.
	Records int
	// Adapted is the number of records adapted: every record is adapted or skipped. One may
	// give several events (a Copilot tool span: its window and its result) or none (a Gemini
	// api_request recalling no call yet).
	Adapted int
	// Events is the number of AgentEvents produced.
	Events int
	// Skipped counts records not adapted, per Skip* reason.
	Skipped map[string]int
}

func (s *AdaptStats) skip(reason string) {
	if s.Skipped == nil {
		s.Skipped = make(map[string]int)
	}
	s.Skipped[reason]++
}

// Add accumulates o into s.
func (s *AdaptStats) Add(o AdaptStats) {
	s.Records += o.Records
	s.Adapted += o.Adapted
	s.Events += o.Events
	for k, v := range o.Skipped {
		if s.Skipped == nil {
			s.Skipped = make(map[string]int)
		}
		s.Skipped[k] += v
	}
}

// resource is what every record of one OTLP resource shares.
type resource struct {
	agent   string
	version string
	pid     int
}

func resourceOf(r *resourcepb.Resource) resource {
	attrs := r.GetAttributes()
	res := resource{
		agent:   agents.ForService(attrStr(attrs, "service.name")),
		version: attrStr(attrs, "service.version"),
	}
	if pid, ok := attrInt(attrs, "process.pid"); ok && pid > 0 && pid <= math.MaxInt32 {
		res.pid = int(pid)
	}
	return res
}

// otlpAdapter turns one agent's log records and spans into AgentEvents. A record may give
// several events (Gemini's api_request re-sends every earlier call) or none (reason says why).
type otlpAdapter struct {
	log  func(out []proto.AgentEvent, res resource, r *logspb.LogRecord) ([]proto.AgentEvent, string)
	span func(out []proto.AgentEvent, res resource, s *tracepb.Span) ([]proto.AgentEvent, string)
}

// otlpAdapters are the adapters by agent (sensor/agents names them and their service names).
var otlpAdapters = map[string]otlpAdapter{
	agents.ClaudeCode: {log: single(adaptClaudeLog), span: single(adaptClaudeSpan)},
	agents.Codex:      {log: single(adaptCodexLog), span: single(adaptCodexSpan)},
	agents.GeminiCLI:  {log: adaptGeminiLog, span: single(adaptGeminiSpan)},
	agents.CopilotCLI: {span: adaptCopilotSpan}, // it sends no logs
	agents.OpenCode:   {log: adaptOpenCodeLog, span: adaptOpenCodeSpan},
}

// single makes an adapter of one event per record append-style.
func single[R any](f func(resource, R) (proto.AgentEvent, string)) func([]proto.AgentEvent, resource, R) ([]proto.AgentEvent, string) {
	return func(out []proto.AgentEvent, res resource, r R) ([]proto.AgentEvent, string) {
		ev, reason := f(res, r)
		if reason != "" {
			return out, reason
		}
		return append(out, ev), ""
	}
}

// AdaptLogs turns the log records of an OTLP logs export into AgentEvents, dispatching each
// resource to its agent's adapter by service.name. Records that cannot be adapted are counted
// in the stats and skipped; the rest of the batch is always adapted.
func AdaptLogs(req *collogspb.ExportLogsServiceRequest) ([]proto.AgentEvent, AdaptStats) {
	var st AdaptStats
	var out []proto.AgentEvent
	for _, rl := range req.GetResourceLogs() {
		res := resourceOf(rl.GetResource())
		adapt := otlpAdapters[res.agent].log
		for _, sl := range rl.GetScopeLogs() {
			for _, r := range sl.GetLogRecords() {
				out = adaptOne(out, &st, res, r, adapt)
			}
		}
	}
	return out, st
}

// adaptOne adapts one log record or span with its resource's agent adapter (nil: an agent
// without one), counting it.
func adaptOne[R any](out []proto.AgentEvent, st *AdaptStats, res resource, r R,
	adapt func([]proto.AgentEvent, resource, R) ([]proto.AgentEvent, string)) []proto.AgentEvent {
	st.Records++
	if adapt == nil {
		st.skip(SkipUnknownService)
		return out
	}
	n := len(out)
	out, reason := adapt(out, res, r)
	if reason != "" {
		st.skip(reason)
	} else {
		st.Adapted++
	}
	st.Events += len(out) - n
	return out
}

// AdaptTraces turns the spans of an OTLP traces export into AgentEvents, like AdaptLogs.
func AdaptTraces(req *coltracepb.ExportTraceServiceRequest) ([]proto.AgentEvent, AdaptStats) {
	var st AdaptStats
	var out []proto.AgentEvent
	for _, rs := range req.GetResourceSpans() {
		res := resourceOf(rs.GetResource())
		adapt := otlpAdapters[res.agent].span
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				out = adaptOne(out, &st, res, sp, adapt)
			}
		}
	}
	return out, st
}

// baseLog starts the AgentEvent of a log record: its kind is kinds[key] (an agent's table of
// the events the correlator uses), and the fields every adapted record has are filled in.
// Otherwise reason says why the record is skipped: an event in ignored (known, of no use), an
// unknown one, or no timestamp of the agent's own.
func baseLog(res resource, r *logspb.LogRecord, eventName, key string, kinds map[string]string, ignored map[string]bool) (ev proto.AgentEvent, reason string) {
	kind, ok := kinds[key]
	if !ok {
		if ignored[key] {
			return proto.AgentEvent{}, SkipIgnoredEvent
		}
		return proto.AgentEvent{}, SkipUnknownEvent
	}
	ev = proto.AgentEvent{
		Agent:        res.agent,
		AgentVersion: res.version,
		Kind:         kind,
		EventName:    eventName,
		TraceID:      hexString(r.GetTraceId()),
		SpanID:       hexString(r.GetSpanId()),
		ResourcePID:  res.pid,
	}
	t, ok := logTime(r)
	if !ok {
		return proto.AgentEvent{}, SkipNoTime
	}
	ev.Time = t
	return ev, ""
}

// logTime is event.timestamp (both agents, ms), else timeUnixNano, else
// observedTimeUnixNano (Codex sends timeUnixNano = 0 on every record).
func logTime(r *logspb.LogRecord) (time.Time, bool) {
	if s := attrStr(r.GetAttributes(), "event.timestamp"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), true
		}
	}
	if t, ok := unixNano(r.GetTimeUnixNano()); ok {
		return t, true
	}
	return unixNano(r.GetObservedTimeUnixNano())
}

// baseSpan fills the fields every adapted span has.
func baseSpan(res resource, s *tracepb.Span, kind string) (proto.AgentEvent, bool) {
	ev := proto.AgentEvent{
		Agent:        res.agent,
		AgentVersion: res.version,
		Kind:         kind,
		SpanName:     s.GetName(),
		TraceID:      hexString(s.GetTraceId()),
		SpanID:       hexString(s.GetSpanId()),
		ParentSpanID: hexString(s.GetParentSpanId()),
		ResourcePID:  res.pid,
	}
	if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		ev.Success = new(false)
	}
	start, ok := unixNano(s.GetStartTimeUnixNano())
	ev.Time = start
	if end, ok := unixNano(s.GetEndTimeUnixNano()); ok {
		ev.EndTime = end
	}
	return ev, ok
}

// toolArgs reads a call's command and file from its arguments, a JSON object: the shell
// tools' "command", and the file tools' file argument, named fileKey by the agent (Gemini
// file_path, opencode filePath, Copilot path).
func toolArgs(ev *proto.AgentEvent, args, fileKey string) {
	obj := jsonObject(args)
	if cmd, ok := rawString(obj["command"]); ok {
		ev.Command = cmd
	}
	if f, ok := rawString(obj[fileKey]); ok && f != "" {
		ev.FilePaths = []string{f}
	}
}

// spanResult is the result of the call a tool span covers, for agents that send no result
// log (Copilot, opencode): it happened when the span ended, and succeeded unless the span's
// status is ERROR (a command exiting non-zero is still a successful call).
func spanResult(span proto.AgentEvent) proto.AgentEvent {
	r := span
	r.Kind = proto.KindToolResult
	r.Time = span.EndTime
	r.DurationMs = span.EndTime.Sub(span.Time).Milliseconds()
	if r.Success == nil {
		r.Success = new(true)
	}
	return r
}

func unixNano(n uint64) (time.Time, bool) {
	if n == 0 || n > math.MaxInt64 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(n)).UTC(), true
}

// hexString is an OTLP id as lowercase hex; "" for an absent or all-zero (invalid) id.
func hexString(b []byte) string {
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

// attrValue is the value of the first attribute named key. Keys can repeat: Codex's tool
// spans carry thread.id twice, as an int and as a string.
func attrValue(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.GetKey() == key && kv.GetValue() != nil {
			return kv.GetValue()
		}
	}
	return nil
}

// attrStr reads any scalar attribute as a string; "" when absent or not a scalar.
func attrStr(kvs []*commonpb.KeyValue, key string) string {
	return valueString(attrValue(kvs, key))
}

// firstStr is the first of keys present with a non-empty value.
func firstStr(kvs []*commonpb.KeyValue, keys ...string) string {
	for _, k := range keys {
		if s := attrStr(kvs, k); s != "" {
			return s
		}
	}
	return ""
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	}
	return ""
}

// attrInt reads an int, a whole-range double or a numeric string (both agents send numbers
// as strings: Claude tool_result duration_ms "536", Codex duration_ms "159").
func attrInt(kvs []*commonpb.KeyValue, key string) (int64, bool) {
	switch x := attrValue(kvs, key).GetValue().(type) {
	case *commonpb.AnyValue_IntValue:
		return x.IntValue, true
	case *commonpb.AnyValue_DoubleValue:
		return floatInt(x.DoubleValue)
	case *commonpb.AnyValue_StringValue:
		s := strings.TrimSpace(x.StringValue)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return floatInt(f)
		}
	}
	return 0, false
}

func floatInt(f float64) (int64, bool) {
	if math.IsNaN(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// attrBool reads a bool, a "true"/"false" string (both agents' tool_result success) or a 0/1
// int; nil when absent or unreadable.
func attrBool(kvs []*commonpb.KeyValue, key string) *bool {
	switch x := attrValue(kvs, key).GetValue().(type) {
	case *commonpb.AnyValue_BoolValue:
		return new(x.BoolValue)
	case *commonpb.AnyValue_StringValue:
		if b, err := strconv.ParseBool(strings.TrimSpace(x.StringValue)); err == nil {
			return new(b)
		}
	case *commonpb.AnyValue_IntValue:
		if x.IntValue == 0 || x.IntValue == 1 {
			return new(x.IntValue == 1)
		}
	}
	return nil
}

// jsonObject parses a JSON object kept in a string attribute (Claude tool_parameters and
// tool_input, Codex tool_result arguments); nil when it is not one.
func jsonObject(s string) map[string]json.RawMessage {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// jsonString reads a JSON string, or an array of strings joined with spaces (an argv).
func jsonString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var argv []string
	if json.Unmarshal(raw, &argv) == nil {
		return strings.Join(argv, " ")
	}
	return ""
}

// patchMarkers name the files of an apply_patch envelope; "*** Move to:" is the new name of
// an updated file.
var patchMarkers = []string{"*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "}

// patchFiles lists the files an apply_patch text names, in order, without duplicates.
func patchFiles(patch string) []string {
	if !strings.Contains(patch, "*** ") {
		return nil
	}
	var files []string
	for line := range strings.Lines(patch) {
		line = strings.TrimRight(line, "\r\n")
		for _, m := range patchMarkers {
			if p, ok := strings.CutPrefix(line, m); ok {
				if p = strings.TrimSpace(p); p != "" && !slices.Contains(files, p) {
					files = append(files, p)
				}
				break
			}
		}
	}
	return files
}
