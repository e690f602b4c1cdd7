// Package jsonstr writes JSON strings by hand, for the encoders that write their JSON with
// ordered appends instead of encoding/json (the OCSF lines, the OTLP/JSON export): one
// escaping, exactly encoding/json's, for both.
package jsonstr

import "unicode/utf8"

// Append appends s as a JSON string as encoding/json writes it without HTML escaping:
// control characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
// s is a string or the bytes of one, so that a protobuf field is written without a copy.
func Append[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))])) // at most 4 bytes: no copy to the heap
		if r == utf8.RuneError && size == 1 {
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(dst, s[start:]...), '"')
}

// plain8 reports whether none of the 8 bytes of s needs escaping or UTF-8 decoding: no
// control character, quote, backslash or non-ASCII byte. Most strings are plain, and testing
// them a word at a time rather than a byte at a time halves the time the OCSF line spends
// writing strings. The tests for a byte below 0x20 or equal to one may report bytes that are
// not (a borrow reaches the next byte), never miss one; those take the byte-wise path.
func plain8[T string | []byte](s T) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	quote, backslash := x^(lo*'"'), x^(lo*'\\')
	special := (x-lo*0x20)&^x | (quote-lo)&^quote | (backslash-lo)&^backslash | x
	return special&hi == 0
}
