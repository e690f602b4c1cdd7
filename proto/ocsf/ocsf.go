// Package ocsf encodes Vigil's records as OCSF events (Open Cybersecurity Schema Framework),
// for SIEMs and lakes that ingest OCSF natively (Amazon Security Lake, Splunk, ...): one JSON
// object per record, under the same line limit as the native ECS-style line.
//
// The mapped schema is OCSF 1.8.0, the newest release (ocsf/ocsf-schema tag 1.8.0, commit
// 6fa6499a0f8c9f449d342816e90e5f687c224b0a). docs/ocsf.md has the mapping; in short: process
// records are Process Activity (1007), file records File System Activity (1001), network
// records Network Activity (4001), detection alerts Detection Finding (2004), and what the
// agents and the correlator say of themselves Base Event (0). Whatever has no OCSF attribute
// is kept in unmapped under its native name, so no value of a record is lost.
//
// The package imports only proto and the standard library.
package ocsf

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vigil-sensor/vigil/proto"
)

// Version is the OCSF release the events follow, written to metadata.version.
const Version = "1.8.0"

// AppendLine appends e as one OCSF event in compact JSON, and a newline, to dst. The line is
// shorter than proto.MaxLineBytes: when the OCSF line would not be, the native record is cut
// by proto.FitLineTo (the same fields, the same way, named in unmapped.vigil.truncated) until
// it is. A record whose native line reaches proto.MaxLineBytes is cut likewise, even when its
// OCSF line alone would fit, so both formats of a record carry the same values. sensorVersion
// is Vigil's own version, metadata.product.version. On error dst is returned unchanged in
// length.
//
// The OCSF line is written first, straight into dst: the native line, whose encoding cost as
// much as a third of the OCSF line's, is needed only when either line may be too long.
func AppendLine(dst []byte, e *proto.Event, sensorVersion string) ([]byte, error) {
	if e == nil {
		return dst, errors.New("ocsf line: nil event")
	}
	out, err := encode(dst, e, sensorVersion)
	if err != nil {
		return dst, fmt.Errorf("ocsf line: %w", err)
	}
	if n := len(out) - len(dst); n < proto.MaxLineBytes && nativeFits(e, n) {
		return append(out, '\n'), nil
	}
	return appendFitted(dst, e, sensorVersion)
}

// nativeSlack bounds what a native line holds beyond twice its OCSF line and the fields the
// mapping drops: the native names and punctuation of the mapped fields (some fifty of them),
// the mapped numbers written another way (process.start, event.severity, args_count) and the
// empty objects unmapped leaves out.
const nativeSlack = 4 << 10

// nativeFits reports whether the native line of e is certainly shorter than
// proto.MaxLineBytes, given its OCSF line of ocsfLen bytes, without encoding it. Every value
// of the native line is on the OCSF line, in unmapped with the same bytes or mapped with the
// same escaping, but for the derived fields; of these only the arguments (an argument costs
// up to twice its share of cmd_line: "a", against a and a space) and the dropped strings
// event.category, event.type and event.kind (up to 6 bytes per byte escaped, and 3 for
// quotes and comma) can be long.
func nativeFits(e *proto.Event, ocsfLen int) bool {
	dropped := len(e.Event.Category) + len(e.Event.Kind) + 6
	for _, t := range e.Event.Type {
		dropped += len(t) + 1
	}
	return 2*ocsfLen+6*dropped+nativeSlack < proto.MaxLineBytes
}

// appendFitted is AppendLine for a record whose OCSF or native line may be too long: the
// native line's length sets the limit proto.FitLineTo cuts the record to.
func appendFitted(dst []byte, e *proto.Event, sensorVersion string) ([]byte, error) {
	rec, limit := e, proto.MaxLineBytes
	for {
		native, err := proto.MarshalJSON(rec)
		if err != nil {
			return dst, fmt.Errorf("ocsf line: %w", err)
		}
		if len(native) < limit {
			out, err := encode(dst, rec, sensorVersion)
			if err != nil {
				return dst, fmt.Errorf("ocsf line: %w", err)
			}
			n := len(out) - len(dst)
			if n < proto.MaxLineBytes {
				return append(out, '\n'), nil
			}
			// The OCSF line is longer than the native one (longer names, the actor's
			// process beside the process): fit the native line tighter by the excess.
			limit = len(native) - (n - proto.MaxLineBytes + 1)
			if limit <= 0 {
				return dst, fmt.Errorf("ocsf line: %d bytes with the native record at its smallest", n)
			}
		}
		// Map what FitLineTo keeps. Its line is then under the limit, and the limit only
		// decreases from there, so this ends, at the latest when FitLineTo cannot fit.
		fitted, err := proto.FitLineTo(e, limit)
		if err != nil {
			return dst, fmt.Errorf("ocsf line: %w", err)
		}
		var cut proto.Event
		if err := proto.UnmarshalJSON(fitted, &cut); err != nil {
			return dst, fmt.Errorf("ocsf line: read the fitted record: %w", err)
		}
		rec = &cut
	}
}

// encode appends e's OCSF event, without a newline, to dst. It refuses a record whose times
// have no RFC 3339 form, as the native line does.
func encode(dst []byte, e *proto.Event, sensorVersion string) ([]byte, error) {
	m, err := newMapping(e, sensorVersion)
	if err != nil {
		return dst, err
	}
	defer m.release()
	switch {
	case isProcess(e):
		m.processActivity()
	case isFile(e):
		m.fileActivity()
	case isNetwork(e):
		m.networkActivity()
	case e.Event.Action == proto.ActionAlert:
		m.detectionFinding()
	default:
		m.baseEvent()
	}
	line := m.out.appendJSON(dst)
	// unmapped goes last, before the event's closing brace.
	n := len(line) - 1
	out, ok, err := m.appendUnmapped(append(line[:n], `,"unmapped":`...))
	if err != nil {
		return dst, fmt.Errorf("marshal unmapped: %w", err)
	}
	if !ok {
		return append(line[:n], '}'), nil
	}
	return append(out, '}'), nil
}

// ocsfPrefix starts every line AppendLine writes (activity_id is the event's first field);
// a native line starts with {"@timestamp":.
var ocsfPrefix = []byte(`{"activity_id":`)

// ErrNotNative is CheckNative's error.
var ErrNotNative = errors.New("an OCSF event (output.format: ocsf), not a native record: " +
	"read the sensor's store (vigil query --db), which holds native records in either format")

// CheckNative returns ErrNotNative when line is an OCSF event AppendLine wrote rather than a
// native record: readers of Vigil's JSONL (vigil trace, vigil query --jsonl) would otherwise
// decode it into an empty record, since proto.UnmarshalJSON ignores names it does not know.
func CheckNative(line []byte) error {
	if bytes.HasPrefix(bytes.TrimLeft(line, " \t\r\n"), ocsfPrefix) {
		return ErrNotNative
	}
	return nil
}
