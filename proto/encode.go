package proto

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"
	"github.com/vmihailenco/msgpack/v5"
)

// TimeLayout is how every timestamp is written to JSON: RFC 3339 in UTC with a fixed nine
// digits of fraction. A fixed width keeps lines sortable as text and lets SIEMs that parse
// by pattern read every record the same way (time.RFC3339Nano drops trailing zeros).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// MaxLineBytes bounds one JSON line. Wazuh drops log lines of 64 KiB and more; 60 KiB leaves
// room for the newline and for forwarders that prepend a header.
const MaxLineBytes = 60 << 10

// ellipsis marks a string FitLine shortened, so a reader sees the cut in the value itself.
const ellipsis = "…"

// fitKeepBytes is the prefix FitLine always keeps of a field it shortens: enough to recognise
// a command or a path, small enough that many long fields still fit one line.
const fitKeepBytes = 256

// fitSlack is cut beyond the measured excess so that the ellipsis and the new vigil.truncated
// entry fit in the same pass, which avoids a second marshal in the common case.
const fitSlack = 64

// eventFields and processFields have the fields of Event and Process but none of their
// methods; jsonEvent and jsonProcess embed them and shadow only the time fields, so a field
// added to Event is encoded without touching this file.
type (
	eventFields   Event
	processFields Process
)

// jsonEvent is Event as written to JSON: the shallower Timestamp, Process and Vigil fields win
// over the embedded ones with the same JSON names. Vigil is shadowed only to keep it last on
// the line, after the ECS and GenAI groups a reader looks at first. The time fields hold the
// quoted TimeLayout text, written verbatim.
type jsonEvent struct {
	Timestamp json.RawMessage `json:"@timestamp"`
	eventFields
	Process *jsonProcess `json:"process,omitempty"`
	Vigil   Vigil        `json:"vigil"`
}

// jsonProcess is Process as written to JSON, with process.start in TimeLayout.
type jsonProcess struct {
	processFields
	Start json.RawMessage `json:"start,omitempty"`
}

// jsonFlags make segmentio/encoding write exactly what encoding/json's Encoder writes with
// SetEscapeHTML(false): map keys sorted (vigil.lost), no HTML escaping. The only raw messages
// are the timestamps appendTime writes, so they need no validation.
const jsonFlags = segjson.SortMapKeys | segjson.TrustRawMessage

// encodeState is the reusable scratch of one encoding: the wrapper the encoder walks and the
// bytes of its two timestamps. Pooled, so encoding an event allocates nothing.
type encodeState struct {
	ev   jsonEvent
	proc jsonProcess
	ts   [2][len(TimeLayout) + 2]byte
}

var encodePool = sync.Pool{New: func() any { return new(encodeState) }}

// MarshalJSON encodes e as one line of compact JSON without a trailing newline: timestamps in
// UTC (TimeLayout), vigil.schema set to SchemaVersion when empty, and no HTML escaping, so
// shell commands keep their && and > readable in a SIEM. e is not modified.
func MarshalJSON(e *Event) ([]byte, error) {
	// Most lines are well under 1 KiB: one allocation instead of a series of regrowths.
	b, err := AppendJSON(make([]byte, 0, 1024), e)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendJSON appends MarshalJSON's encoding of e to dst. On error dst is returned unchanged
// in length.
//
// The encoder is appendEventFast, written out by hand, unless fastJSON found at start-up that
// it disagrees with appendEventReflect (a field added to Event and not to it): then every
// event goes through the reflection encoder, slower but complete.
func AppendJSON(dst []byte, e *Event) ([]byte, error) {
	if e == nil {
		return dst, errors.New("marshal json: nil event")
	}
	var out []byte
	var err error
	if fastJSON {
		out, err = appendEventFast(dst, e)
	} else {
		out, err = appendEventReflect(dst, e)
	}
	if err != nil {
		return dst, fmt.Errorf("marshal json: %w", err)
	}
	return out, nil
}

// appendEventReflect is AppendJSON's encoding by reflection: github.com/segmentio/encoding/json,
// a drop-in for encoding/json that caches a compiled codec per type and appends into the
// caller's buffer. The golden files in testdata/golden hold encoding/json's bytes, and the two
// agree on them, on the escaping of control characters, invalid UTF-8 and U+2028/U+2029, and
// on sorted map keys. It is the reference appendEventFast is checked against.
func appendEventReflect(dst []byte, e *Event) ([]byte, error) {
	s := encodePool.Get().(*encodeState)
	defer func() {
		// Drop the references to e before the state goes back to the pool.
		s.ev, s.proc = jsonEvent{}, jsonProcess{}
		encodePool.Put(s)
	}()
	ts, err := appendTime(s.ts[0][:0], "@timestamp", e.Timestamp)
	if err != nil {
		return dst, err
	}
	s.ev = jsonEvent{Timestamp: ts, eventFields: eventFields(*e), Vigil: e.Vigil}
	if s.ev.Vigil.Schema == "" {
		s.ev.Vigil.Schema = SchemaVersion
	}
	if e.Process != nil {
		s.proc = jsonProcess{processFields: processFields(*e.Process)}
		if e.Process.Start != nil {
			if s.proc.Start, err = appendTime(s.ts[1][:0], "process.start", *e.Process.Start); err != nil {
				return dst, err
			}
		}
		s.ev.Process = &s.proc
	}
	return segjson.Append(dst, &s.ev, jsonFlags)
}

// AppendTime appends t as MarshalJSON writes a record's times: a JSON string in UTC and
// TimeLayout. It refuses a year outside 0..9999, naming field in the error, as MarshalJSON
// does. Another encoding of a record (OCSF, proto/ocsf) writes its times with it, and checks
// them the same way, without encoding the native line.
func AppendTime(b []byte, field string, t time.Time) ([]byte, error) {
	return appendTime(b, field, t)
}

// appendTime appends t in UTC and TimeLayout, quoted, as a JSON string, refusing a year
// outside 0..9999 (checkYear).
func appendTime(b []byte, field string, t time.Time) ([]byte, error) {
	if err := checkYear(field, t); err != nil {
		return b, err
	}
	return append(AppendTimeText(append(b, '"'), t), '"'), nil
}

// AppendTimeText appends t in UTC and TimeLayout, unquoted: what t.UTC().Format(TimeLayout)
// writes, for any t (the store keeps its times as this text).
//
// AppendFormat with TimeLayout itself parses the layout on every call (a tenth of the
// sensor's CPU in a profile); time.RFC3339Nano takes the standard library's fast path and
// differs from TimeLayout only in dropping the fraction's trailing zeros (and its dot when
// the fraction is zero), which are put back here. That needs four-digit years, for fixed
// widths: any other year takes the general path.
func AppendTimeText(b []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	start := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = b[:len(b)-1] // the Z
	if len(b)-start == len("2006-01-02T15:04:05") {
		b = append(b, '.')
	}
	for len(b)-start < len(TimeLayout)-1 {
		b = append(b, '0')
	}
	return append(b, 'Z')
}

// checkYear refuses years outside 0..9999, which have no RFC 3339 form: better an error than
// a string no reader parses.
func checkYear(field string, t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%s: year %d outside 0..9999", field, y)
	}
	return nil
}

// UnmarshalJSON decodes one JSON record into e, replacing its contents only on success.
// Input that is not a JSON object is refused with an error naming what it found. Unknown
// fields are ignored, so a reader keeps working on records from a newer schema that added
// fields. Timestamps come back in UTC.
func UnmarshalJSON(b []byte, e *Event) error {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("unmarshal json: empty input, want a JSON object")
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("unmarshal json: want a JSON object, input starts with %q", trimmed[0])
	}
	var out Event
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("unmarshal json: %w", err)
	}
	if err := normalizeTimes(&out); err != nil {
		return fmt.Errorf("unmarshal json: %w", err)
	}
	*e = out
	return nil
}

// normalizeTimes puts decoded timestamps in UTC and refuses those MarshalJSON could not write
// back, so anything a reader accepts can be re-encoded.
func normalizeTimes(e *Event) error {
	e.Timestamp = e.Timestamp.UTC()
	if err := checkYear("@timestamp", e.Timestamp); err != nil {
		return err
	}
	if e.Process != nil && e.Process.Start != nil {
		start := e.Process.Start.UTC()
		if err := checkYear("process.start", start); err != nil {
			return err
		}
		e.Process.Start = &start
	}
	return nil
}

// MarshalMsgpack encodes e with msgpack, the compact internal encoding (spool files, the hook
// socket). vigil.schema is set to SchemaVersion when empty; e is not modified.
func MarshalMsgpack(e *Event) ([]byte, error) {
	if e == nil {
		return nil, errors.New("marshal msgpack: nil event")
	}
	c := *e
	if c.Vigil.Schema == "" {
		c.Vigil.Schema = SchemaVersion
	}
	b, err := msgpack.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("marshal msgpack: %w", err)
	}
	return b, nil
}

// UnmarshalMsgpack decodes a msgpack record into e, replacing its contents only on success.
// The msgpack time extension carries an instant without a zone and the library decodes it in
// the local zone; timestamps are put back in UTC so both encodings agree.
func UnmarshalMsgpack(b []byte, e *Event) error {
	var out Event
	if err := msgpack.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("unmarshal msgpack: %w", err)
	}
	if err := normalizeTimes(&out); err != nil {
		return fmt.Errorf("unmarshal msgpack: %w", err)
	}
	*e = out
	return nil
}

// FitLine marshals e like MarshalJSON and, when the line would reach MaxLineBytes, shortens
// the fields that can grow without bound until it fits: process.args elements from the
// longest down, then file.path, process.executable and process.working_directory, each cut to
// a prefix ending in "…" (never below 256 bytes); if that is still too long, trailing
// process.args elements are dropped, with process.args_count keeping the original count.
// Every shortened field is named in vigil.truncated. e is not modified. Each step strictly
// shrinks the event, so FitLine always terminates; it returns an error only when the fields
// it may not shorten are by themselves too long.
func FitLine(e *Event) ([]byte, error) {
	return FitLineTo(e, MaxLineBytes)
}

// FitLineTo is FitLine with limit in place of MaxLineBytes: the line is shorter than limit.
// Another encoding of the same record (OCSF, proto/ocsf) fits its own, longer line under
// MaxLineBytes by fitting this one to a smaller limit, so both cut the same fields the same way.
func FitLineTo(e *Event, limit int) ([]byte, error) {
	line, err := MarshalJSON(e)
	if err != nil {
		return nil, fmt.Errorf("fit line: %w", err)
	}
	if len(line) < limit {
		return line, nil
	}
	c := cloneForFit(e)
	deep := false
	for len(line) >= limit {
		if !shrinkOnce(c, len(line)-limit+1) {
			// Any other field too long (an agent line's prompt, a tool's command or paths,
			// what an outsider's telemetry claims): cut the longest one, in a deep copy.
			if !deep {
				if c, err = deepCopy(c); err != nil {
					return nil, fmt.Errorf("fit line: %w", err)
				}
				deep = true
			}
			if !shrinkLongest(c, len(line)-limit+1) {
				return nil, fmt.Errorf("fit line: %d bytes with every variable field shortened, limit %d", len(line), limit)
			}
		}
		if line, err = MarshalJSON(c); err != nil {
			return nil, fmt.Errorf("fit line: %w", err)
		}
	}
	return line, nil
}

// AppendLine appends the line FitLine returns for e, and a newline, to dst: the sink's
// per-event path, which encodes straight into its buffer. Only a line that reaches
// MaxLineBytes takes FitLine's shortening path. On error dst is returned unchanged in length.
func AppendLine(dst []byte, e *Event) ([]byte, error) {
	n := len(dst)
	out, err := AppendJSON(dst, e)
	if err != nil {
		return out[:n], fmt.Errorf("fit line: %w", err)
	}
	if len(out)-n >= MaxLineBytes {
		line, err := FitLine(e)
		if err != nil {
			return out[:n], err
		}
		out = append(out[:n], line...)
	}
	return append(out, '\n'), nil
}

// cloneForFit copies the parts of e that shrinkOnce modifies, so the caller's event is kept.
func cloneForFit(e *Event) *Event {
	c := *e
	if e.Process != nil {
		p := *e.Process
		p.Args = slices.Clone(p.Args)
		c.Process = &p
	}
	if e.File != nil {
		f := *e.File
		c.File = &f
	}
	c.Vigil.Truncated = slices.Clone(e.Vigil.Truncated)
	return &c
}

// shrinkOnce shortens the first field in FitLine's order that can still shrink, by about
// over bytes, and reports whether it found one.
func shrinkOnce(e *Event, over int) bool {
	p := e.Process
	if p != nil {
		if i := longestArg(p.Args); i >= 0 && shrinkable(p.Args[i]) {
			p.Args[i] = cutString(p.Args[i], over)
			markTruncated(e, "process.args")
			return true
		}
	}
	if e.File != nil && shrinkable(e.File.Path) {
		e.File.Path = cutString(e.File.Path, over)
		markTruncated(e, "file.path")
		return true
	}
	if p != nil && shrinkable(p.Executable) {
		p.Executable = cutString(p.Executable, over)
		markTruncated(e, "process.executable")
		return true
	}
	if p != nil && shrinkable(p.WorkingDirectory) {
		p.WorkingDirectory = cutString(p.WorkingDirectory, over)
		markTruncated(e, "process.working_directory")
		return true
	}
	if p != nil && len(p.Args) > 0 {
		if p.ArgsCount == 0 {
			p.ArgsCount = len(p.Args)
		}
		p.Args = p.Args[:len(p.Args)/2]
		markTruncated(e, "process.args")
		return true
	}
	return false
}

// deepCopy copies e through its msgpack encoding, so that shrinkLongest may cut any field
// without touching the caller's event.
func deepCopy(e *Event) (*Event, error) {
	b, err := MarshalMsgpack(e)
	if err != nil {
		return nil, err
	}
	var c Event
	if err := UnmarshalMsgpack(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// shrinkLongest shortens the field of e that holds the most bytes, naming it by its JSON
// path in vigil.truncated: a string is cut by about over bytes, a list of strings halved (a
// list of thousands of short paths shrinks in a few steps, not one path at a time). It
// reports whether it found a field it could shorten.
func shrinkLongest(e *Event, over int) bool {
	var best reflect.Value
	var bestName string
	bestBytes := 0
	consider := func(v reflect.Value, name string, n int) {
		if n > bestBytes {
			best, bestName, bestBytes = v, name, n
		}
	}
	var walk func(v reflect.Value, name string)
	walk = func(v reflect.Value, name string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), name)
			}
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				switch {
				case tag == "-":
					continue
				case f.Anonymous && tag == "":
					walk(v.Field(i), name) // embedded: its fields are the parent's
				default:
					walk(v.Field(i), strings.TrimPrefix(name+"."+cmp.Or(tag, f.Name), "."))
				}
			}
		case reflect.String:
			if v.CanSet() && shrinkable(v.String()) {
				consider(v, name, v.Len())
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() != reflect.String {
				return
			}
			if v.Len() == 1 {
				walk(v.Index(0), name)
				return
			}
			total := 0
			for i := range v.Len() {
				total += v.Index(i).Len() + 3 // quotes and comma
			}
			consider(v, name, total)
		}
	}
	walk(reflect.ValueOf(e), "")
	switch {
	case bestBytes == 0:
		return false
	case best.Kind() == reflect.String:
		best.SetString(cutString(best.String(), over))
	default:
		best.Set(best.Slice(0, best.Len()/2))
	}
	markTruncated(e, bestName)
	return true
}

// longestArg returns the index of the longest element (the first one on ties), or -1.
func longestArg(args []string) int {
	best := -1
	for i, a := range args {
		if best < 0 || len(a) > len(args[best]) {
			best = i
		}
	}
	return best
}

// shrinkable reports whether cutString would make s strictly shorter.
func shrinkable(s string) bool {
	return len(s) > fitKeepBytes+len(ellipsis)
}

// cutString keeps a prefix of s about over+fitSlack bytes shorter (at least fitKeepBytes),
// cut on a rune boundary, and appends the ellipsis. For a shrinkable s the result is
// strictly shorter, and removing n bytes of a string shortens its JSON by at least n.
func cutString(s string, over int) string {
	n := max(len(s)-over-fitSlack, fitKeepBytes)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}

// markTruncated adds name to vigil.truncated once.
func markTruncated(e *Event, name string) {
	if !slices.Contains(e.Vigil.Truncated, name) {
		e.Vigil.Truncated = append(e.Vigil.Truncated, name)
	}
}
