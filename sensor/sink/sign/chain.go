// Package sign makes a JSONL file tamper-evident: every line carries a hash chain field (its
// sequence number and the SHA-256 of the line before it), and seal lines sign the chain with
// an ed25519 key that evolves at every seal, so that a key stolen today cannot re-sign what was
// sealed before (forward security). Verify checks files and names the first line that was
// edited, deleted, reordered or inserted. docs/integrity.md describes the format and the
// threat model.
//
// The chain field is added to a line's bytes, whatever JSON object the line holds (Vigil's
// ECS lines or OCSF ones), so signing never re-encodes an event.
package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// HashSize is the size of a line hash.
const HashSize = sha256.Size

// Hash is the SHA-256 of a line's bytes without its newline.
type Hash [HashSize]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Head is the end of a chain: the sequence number of its last line and that line's hash. The
// zero Head is an empty chain; its first line gets Seq 1 and a prev of zeros.
type Head struct {
	Seq  uint64
	Hash Hash
}

// chainKey opens the chain field; it is the last member of every signed line.
const chainKey = `"chain":{"seq":`

// prevKey separates the sequence number from the previous line's hash.
const prevKey = `,"prev":"`

// Overhead is the most bytes Append adds to a line: the chain field with a 20-digit
// sequence number. The JSONL writer reserves it when it decides whether a line still fits.
const Overhead = len(`,`) + len(chainKey) + 20 + len(prevKey) + 2*HashSize + len(`"}`)

// appendChained rewrites the line at buf[start:] (one JSON object and its newline) as the next
// line of the chain after h: the chain field goes before the object's closing brace. It returns
// the new buffer and the new head. A line that is not a JSON object ending in "}\n" is left
// as it is and ok is false: the writer never produces one (proto.AppendLine and the OCSF
// encoder both end each line with "}\n").
func appendChained(buf []byte, start int, h Head) (out []byte, next Head, ok bool) {
	line := buf[start:]
	n := len(line)
	if n < 3 || line[0] != '{' || line[n-2] != '}' || line[n-1] != '\n' {
		return buf, h, false
	}
	buf = buf[:len(buf)-2] // drop "}\n"
	if n > 3 {             // not "{}": the field follows others
		buf = append(buf, ',')
	}
	seq := h.Seq + 1
	buf = append(buf, chainKey...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, prevKey...)
	buf = hex.AppendEncode(buf, h.Hash[:])
	buf = append(buf, `"}}`...)
	next = Head{Seq: seq, Hash: sha256.Sum256(buf[start:])}
	return append(buf, '\n'), next, true
}

// Link is what a line's chain field says: its sequence number and the hash of the line before.
type Link struct {
	Seq  uint64
	Prev Hash
	// Body is the length of the line before its chain field: line[:Body] followed by "}" is
	// the object as it was before Append.
	Body int
}

// ParseLink reads the chain field at the end of line (without its newline). It is strict: the
// field must be the object's last member, written exactly as Append writes it, so that one
// line has one reading. ok is false for a line without one.
func ParseLink(line []byte) (l Link, ok bool) {
	const tail = len(`"}}`)
	n := len(line)
	if n < len(chainKey)+len(prevKey)+2*HashSize+tail+2 || line[0] != '{' || string(line[n-tail:]) != `"}}` {
		return Link{}, false
	}
	hexStart := n - tail - 2*HashSize
	if _, err := hex.Decode(l.Prev[:], line[hexStart:n-tail]); err != nil {
		return Link{}, false
	}
	// Lowercase only: a hash has one spelling, so an edit to its case is an edit.
	if !bytes.Equal(line[hexStart:n-tail], []byte(l.Prev.String())) {
		return Link{}, false
	}
	p := hexStart - len(prevKey)
	if p < 0 || string(line[p:hexStart]) != prevKey {
		return Link{}, false
	}
	d := p
	for d > 0 && line[d-1] >= '0' && line[d-1] <= '9' {
		d--
	}
	digits := line[d:p]
	if len(digits) == 0 || len(digits) > 20 || (len(digits) > 1 && digits[0] == '0') {
		return Link{}, false
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil || seq == 0 {
		return Link{}, false
	}
	k := d - len(chainKey)
	if k < 1 || string(line[k:d]) != chainKey {
		return Link{}, false
	}
	switch {
	case k == 1: // "{" then the chain field alone
		l.Body = 1
	case line[k-1] == ',' && k > 2: // a member before it, not "{,"
		l.Body = k - 1
	default:
		return Link{}, false
	}
	l.Seq = seq
	return l, true
}

// hashLine is a line's hash: SHA-256 of its bytes without the newline.
func hashLine(line []byte) Hash {
	return sha256.Sum256(bytes.TrimSuffix(line, []byte("\n")))
}
