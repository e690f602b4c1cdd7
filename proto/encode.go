package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

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
// the line, after the ECS and GenAI groups a reader looks at first.
type jsonEvent struct {
	Timestamp string `json:"@timestamp"`
	eventFields
	Process *jsonProcess `json:"process,omitempty"`
	Vigil   Vigil        `json:"vigil"`
}

// jsonProcess is Process as written to JSON, with process.start in TimeLayout.
type jsonProcess struct {
	processFields
	Start string `json:"start,omitempty"`
}

// MarshalJSON encodes e as one line of compact JSON without a trailing newline: timestamps in
// UTC (TimeLayout), vigil.schema set to SchemaVersion when empty, and no HTML escaping, so
// shell commands keep their && and > readable in a SIEM. e is not modified.
func MarshalJSON(e *Event) ([]byte, error) {
	if e == nil {
		return nil, errors.New("marshal json: nil event")
	}
	ts, err := formatTime("@timestamp", e.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("marshal json: %w", err)
	}
	w := jsonEvent{Timestamp: ts, eventFields: eventFields(*e), Vigil: e.Vigil}
	if w.Vigil.Schema == "" {
		w.Vigil.Schema = SchemaVersion
	}
	if e.Process != nil {
		w.Process = &jsonProcess{processFields: processFields(*e.Process)}
		if e.Process.Start != nil {
			if w.Process.Start, err = formatTime("process.start", *e.Process.Start); err != nil {
				return nil, fmt.Errorf("marshal json: %w", err)
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, fmt.Errorf("marshal json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// formatTime writes t in TimeLayout. Years outside 0..9999 have no RFC 3339 form, so they are
// refused rather than written as a string no reader parses.
func formatTime(field string, t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("%s: year %d outside 0..9999", field, y)
	}
	return t.Format(TimeLayout), nil
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
	if _, err := formatTime("@timestamp", e.Timestamp); err != nil {
		return err
	}
	if e.Process != nil && e.Process.Start != nil {
		start := e.Process.Start.UTC()
		if _, err := formatTime("process.start", start); err != nil {
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
	line, err := MarshalJSON(e)
	if err != nil {
		return nil, fmt.Errorf("fit line: %w", err)
	}
	if len(line) < MaxLineBytes {
		return line, nil
	}
	c := cloneForFit(e)
	for len(line) >= MaxLineBytes {
		if !shrinkOnce(c, len(line)-MaxLineBytes+1) {
			return nil, fmt.Errorf("fit line: %d bytes with every variable field shortened, limit %d", len(line), MaxLineBytes)
		}
		if line, err = MarshalJSON(c); err != nil {
			return nil, fmt.Errorf("fit line: %w", err)
		}
	}
	return line, nil
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
