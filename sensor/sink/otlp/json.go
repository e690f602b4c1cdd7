package otlp

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/internal/jsonstr"
)

// OTLP/JSON of a request, converted from its protobuf bytes (requestBytes) by hand: the
// records walked field by field, the resource and scope (one each per request) by protojson.
// Only what the exporter encodes is known (the LogRecord fields appendRecord writes, string
// and int values); anything else makes requestJSON give up, and the caller converts the whole
// request with protojson instead. The JSON is the specification's: lowerCamelCase names,
// enums as numbers, 64-bit integers as decimal strings.

// jsonCache keeps the JSON of the last resource and scope converted: they are the same in
// every request of an exporter. Used by the sender goroutine only.
type jsonCache struct {
	res, resJSON     []byte
	scope, scopeJSON []byte
}

// requestJSON appends the OTLP/JSON of req to dst; false when req holds something it does not
// convert (or is not well formed).
func (c *jsonCache) requestJSON(dst, req []byte) ([]byte, bool) {
	dst = append(dst, `{"resourceLogs":[`...)
	first := true
	ok := eachField(req, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != fRequestResourceLogs || typ != protowire.BytesType {
			return false
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		var ok bool
		dst, ok = c.resourceLogsJSON(dst, v)
		return ok
	})
	return append(dst, "]}"...), ok
}

func (c *jsonCache) resourceLogsJSON(dst, rl []byte) ([]byte, bool) {
	var res []byte
	var scopes [][]byte
	if !eachField(rl, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch {
		case typ != protowire.BytesType:
			return false
		case num == fResourceLogsRes:
			res = v
		case num == fResourceLogsScope:
			scopes = append(scopes, v)
		default:
			return false
		}
		return true
	}) {
		return dst, false
	}
	dst = append(dst, '{')
	if res != nil {
		if !bytes.Equal(res, c.res) || c.resJSON == nil {
			j, ok := protoJSON(res, &resourcepb.Resource{})
			if !ok {
				return dst, false
			}
			c.res, c.resJSON = bytes.Clone(res), j
		}
		dst = append(append(dst, `"resource":`...), c.resJSON...)
		if len(scopes) > 0 {
			dst = append(dst, ',')
		}
	}
	if len(scopes) > 0 {
		dst = append(dst, `"scopeLogs":[`...)
		for i, sl := range scopes {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = c.scopeLogsJSON(dst, sl); !ok {
				return dst, false
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), true
}

func (c *jsonCache) scopeLogsJSON(dst, sl []byte) ([]byte, bool) {
	var scope []byte
	nrec := 0
	if !eachField(sl, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch {
		case typ != protowire.BytesType:
			return false
		case num == fScopeLogsScope:
			scope = v
		case num == fScopeLogsRecords:
			nrec++
		default:
			return false
		}
		return true
	}) {
		return dst, false
	}
	dst = append(dst, '{')
	if scope != nil {
		if !bytes.Equal(scope, c.scope) || c.scopeJSON == nil {
			j, ok := protoJSON(scope, &commonpb.InstrumentationScope{})
			if !ok {
				return dst, false
			}
			c.scope, c.scopeJSON = bytes.Clone(scope), j
		}
		dst = append(append(dst, `"scope":`...), c.scopeJSON...)
		if nrec > 0 {
			dst = append(dst, ',')
		}
	}
	if nrec > 0 {
		dst = append(dst, `"logRecords":[`...)
		first := true
		ok := eachField(sl, func(num protowire.Number, _ protowire.Type, v []byte) bool {
			if num != fScopeLogsRecords {
				return true
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var ok bool
			dst, ok = logRecordJSON(dst, v)
			return ok
		})
		if !ok {
			return dst, false
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), true
}

// logRecordJSON converts a LogRecord: its scalar fields and body in one pass, its attributes
// (which need not be adjacent: the attempt is appended last) in a second.
func logRecordJSON(dst, lr []byte) ([]byte, bool) {
	dst = append(dst, '{')
	sep := func() {
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
	}
	attrs := 0
	var seen uint32 // a field twice is valid protobuf (the last wins) but not JSON: give up
	ok := eachField(lr, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != fLogAttributes && num < 32 {
			if seen&(1<<num) != 0 {
				return false
			}
			seen |= 1 << num
		}
		switch {
		case (num == fLogTime || num == fLogObserved) && typ == protowire.Fixed64Type:
			sep()
			if num == fLogTime {
				dst = append(dst, `"timeUnixNano":"`...)
			} else {
				dst = append(dst, `"observedTimeUnixNano":"`...)
			}
			dst = strconv.AppendUint(dst, binary.LittleEndian.Uint64(v), 10) // v: its 8 bytes (eachField)
			dst = append(dst, '"')
		case num == fLogSeverityNumber && typ == protowire.VarintType:
			n, _ := protowire.ConsumeVarint(v)
			sep()
			dst = strconv.AppendInt(append(dst, `"severityNumber":`...), int64(int32(n)), 10)
		case num == fLogSeverityText && typ == protowire.BytesType:
			sep()
			var ok bool
			if dst, ok = appendJSONString(append(dst, `"severityText":`...), v); !ok {
				return false
			}
		case num == fLogBody && typ == protowire.BytesType:
			sep()
			var ok bool
			if dst, ok = anyValueJSON(append(dst, `"body":`...), v); !ok {
				return false
			}
		case num == fLogAttributes && typ == protowire.BytesType:
			attrs++
		default:
			return false
		}
		return true
	})
	if !ok {
		return dst, false
	}
	if attrs > 0 {
		sep()
		dst = append(dst, `"attributes":[`...)
		first := true
		ok = eachField(lr, func(num protowire.Number, _ protowire.Type, v []byte) bool {
			if num != fLogAttributes {
				return true
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var ok bool
			dst, ok = keyValueJSON(dst, v)
			return ok
		})
		if !ok {
			return dst, false
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), true
}

func keyValueJSON(dst, kv []byte) ([]byte, bool) {
	dst = append(dst, '{')
	var seen uint32
	ok := eachField(kv, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if typ != protowire.BytesType || num >= 32 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		var ok bool
		switch num {
		case fKeyValueKey:
			dst, ok = appendJSONString(append(dst, `"key":`...), v)
		case fKeyValueValue:
			dst, ok = anyValueJSON(append(dst, `"value":`...), v)
		}
		return ok
	})
	return append(dst, '}'), ok
}

// anyValueJSON converts an AnyValue holding a string or an int (the only kinds the exporter
// writes).
func anyValueJSON(dst, av []byte) ([]byte, bool) {
	dst = append(dst, '{')
	n := 0
	ok := eachField(av, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		n++
		var ok bool
		switch {
		case n > 1: // a oneof: one value
		case num == fAnyString && typ == protowire.BytesType:
			dst, ok = appendJSONString(append(dst, `"stringValue":`...), v)
		case num == fAnyInt && typ == protowire.VarintType:
			i, _ := protowire.ConsumeVarint(v)
			dst = append(strconv.AppendInt(append(dst, `"intValue":"`...), int64(i), 10), '"')
			ok = true
		}
		return ok
	})
	return append(dst, '}'), ok
}

// eachField calls f with each field of msg: its number, wire type and value (a varint's bytes,
// a fixed64's 8 bytes, a length-delimited field's content); false when msg is not well formed,
// holds a group or a fixed32, or f returns false.
func eachField(msg []byte, f func(protowire.Number, protowire.Type, []byte) bool) bool {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return false
		}
		msg = msg[n:]
		var v []byte
		switch typ {
		case protowire.VarintType:
			_, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return false
			}
			v, msg = msg[:m], msg[m:]
		case protowire.Fixed64Type:
			if len(msg) < 8 {
				return false
			}
			v, msg = msg[:8], msg[8:]
		case protowire.BytesType:
			b, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return false
			}
			v, msg = b, msg[m:]
		default:
			return false
		}
		if !f(num, typ, v) {
			return false
		}
	}
	return true
}

// appendJSONString appends s quoted as a JSON string; false when s is not UTF-8 (a protobuf
// string always is, and the exporter makes sure of it when it encodes).
func appendJSONString(dst, s []byte) ([]byte, bool) {
	if !utf8.Valid(s) {
		return dst, false
	}
	return jsonstr.Append(dst, s), true
}

// protoJSON is the OTLP/JSON of a small message given in protobuf.
func protoJSON(b []byte, m gproto.Message) ([]byte, bool) {
	if err := gproto.Unmarshal(b, m); err != nil {
		return nil, false
	}
	j, err := jsonOptions.Marshal(m)
	return j, err == nil
}
