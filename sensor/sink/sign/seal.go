package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Reasons a seal is written for.
const (
	ReasonStart    = "start"    // the writer opened: seals where the chain resumed
	ReasonInterval = "interval" // Options.Interval passed with lines written since the last seal
	ReasonRotation = "rotation" // the last line of a file before it is rotated
	ReasonStop     = "stop"     // the writer closed
)

var reasons = map[string]bool{ReasonStart: true, ReasonInterval: true, ReasonRotation: true, ReasonStop: true}

// sealDomain separates a seal's signed bytes from a key certificate's.
const sealDomain = "vigil-seal-v1\x00"

// Seal is what a seal line says besides its chain field.
type Seal struct {
	Time   time.Time
	Reason string
	Chain  ChainID
	// Epoch is the signing key's epoch; Next the public key of the next epoch, vouched for by
	// this seal's signature.
	Epoch uint64
	Next  ed25519.PublicKey
	// First is the sequence number of the first line of the file the seal is in: lines cut
	// off the start of a file show as a file that begins later than its seal says.
	First uint64
	// Cut is how many bytes of a torn last line (a crash mid-write) the writer cut off the
	// file before this start seal.
	Cut uint64
	Sig []byte
}

// message is the byte string a seal's signature covers: the domain, the chain, the seal line's
// own sequence number and prev (the hash of the line before it, which covers the whole chain
// up to it), and every field of the seal.
func (s *Seal) message(seq uint64, prev Hash) []byte {
	m := make([]byte, 0, 160)
	m = append(m, sealDomain...)
	m = append(m, s.Chain[:]...)
	m = binary.BigEndian.AppendUint64(m, seq)
	m = append(m, prev[:]...)
	m = binary.BigEndian.AppendUint64(m, s.First)
	m = binary.BigEndian.AppendUint64(m, uint64(s.Time.UnixNano()))
	m = binary.BigEndian.AppendUint64(m, s.Epoch)
	m = binary.BigEndian.AppendUint64(m, s.Cut)
	m = append(m, byte(len(s.Reason)))
	m = append(m, s.Reason...)
	return append(m, s.Next...)
}

// appendBody appends the seal line without its chain field: an ECS line (event.kind state,
// dataset vigil.integrity, action seal) that Wazuh decodes like any other and that Vigil's own
// readers skip. Its encoding is fixed, so a verifier re-encodes a seal and compares bytes.
func (s *Seal) appendBody(b []byte) []byte {
	b = append(b, `{"@timestamp":"`...)
	b = s.Time.UTC().AppendFormat(b, proto.TimeLayout)
	b = append(b, `","event":{"action":"`+proto.ActionSeal+`","kind":"`+proto.KindState+`","dataset":"`+proto.DatasetIntegrity+`","reason":"`...)
	b = append(b, s.Reason...)
	b = append(b, `"},"vigil":{"seal":{"chain_id":"`...)
	b = hex.AppendEncode(b, s.Chain[:])
	b = append(b, `","epoch":`...)
	b = strconv.AppendUint(b, s.Epoch, 10)
	b = append(b, `,"first_seq":`...)
	b = strconv.AppendUint(b, s.First, 10)
	b = append(b, `,"cut_bytes":`...)
	b = strconv.AppendUint(b, s.Cut, 10)
	b = append(b, `,"next_key":"`...)
	b = base64.StdEncoding.AppendEncode(b, s.Next)
	b = append(b, `","sig":"`...)
	b = base64.StdEncoding.AppendEncode(b, s.Sig)
	return append(b, "\"}}}\n"...)
}

// Options configure a Signer.
type Options struct {
	// KeyDir holds the keys (KeyPath, KeyLogPath); created 0700 when absent.
	KeyDir string
	// Name is the output's file name (events.jsonl): its key and key log are named after it,
	// so that every output has its own chain and its own key evolution.
	Name string
	// Interval is how often a seal is written while lines are being written; 0: only at
	// start, rotation and stop.
	Interval time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Signer chains and seals the lines of one JSONL output. It is not safe for concurrent use:
// the JSONL writer calls it under its own mutex, so the chain's order is the file's order.
type Signer struct {
	opts    Options
	keys    *keys
	created bool

	head, committed Head
	// first is the sequence number of the current file's first line (0: none yet);
	// firstCommitted is its value at the last Commit.
	first, firstCommitted uint64
	cut                   uint64 // torn bytes Resume found, told by the next seal
	sinceSeal             int
	lastSeal              time.Time
}

// ErrNotObject is returned by Chain for a line that is not one JSON object and its newline.
var ErrNotObject = errors.New("sign: line is not a JSON object ending in }\\n")

// Open loads the output's key, or creates it (and a new chain) when there is none.
func Open(o Options) (*Signer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("open signer: negative interval %v", o.Interval)
	}
	if o.Name == "" || o.Name != filepath.Base(o.Name) || o.Name == "." || o.Name == ".." {
		return nil, fmt.Errorf("open signer: the output name %q is not a file name", o.Name)
	}
	k, created, err := loadOrCreateKeys(o.KeyDir, o.Name)
	if err != nil {
		return nil, fmt.Errorf("open signer for %s: %w", o.Name, err)
	}
	return &Signer{opts: o, keys: k, created: created, lastSeal: o.Now()}, nil
}

// Created reports whether Open made a new key: the caller logs its public key, the one to pin.
func (s *Signer) Created() bool { return s.created }

// Pin is the output's pin (see Pin).
func (s *Signer) Pin() (Cert, error) { return Pin(s.opts.KeyDir, s.opts.Name) }

// Chain rewrites the line at buf[start:] as the next line of the chain (see appendChained).
func (s *Signer) Chain(buf []byte, start int) ([]byte, error) {
	out, next, ok := appendChained(buf, start, s.head)
	if !ok {
		return buf, ErrNotObject
	}
	s.advance(next)
	return out, nil
}

func (s *Signer) advance(next Head) {
	if s.first == 0 {
		s.first = next.Seq
	}
	s.head = next
	s.sinceSeal++
}

// Due reports whether an interval seal is due: lines were chained since the last seal and
// Options.Interval has passed.
func (s *Signer) Due() bool {
	return s.opts.Interval > 0 && s.sinceSeal > 0 && s.opts.Now().Sub(s.lastSeal) >= s.opts.Interval
}

// Seal appends a seal line to buf, chained like any line: signed with the current epoch's key,
// it vouches for the next epoch's key, which replaces the current one on disk (key log first,
// then the key file) before the seal line is appended. On error buf is unchanged, the key is
// the current one, and an interval seal is next due an interval later: a key directory that
// cannot be written is reported once per interval, not at every flush.
func (s *Signer) Seal(buf []byte, reason string) ([]byte, error) {
	if !reasons[reason] {
		return buf, fmt.Errorf("seal: unknown reason %q", reason)
	}
	now := s.opts.Now().UTC()
	nextPub, nextPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.lastSeal = now
		return buf, fmt.Errorf("seal: new key: %w", err)
	}
	seq := s.head.Seq + 1
	seal := Seal{Time: now, Reason: reason, Chain: s.keys.chain, Epoch: s.keys.epoch,
		Next: nextPub, First: s.first, Cut: s.cut}
	if seal.First == 0 {
		seal.First = seq // the seal is the file's first line
	}
	seal.Sig = ed25519.Sign(s.keys.priv, seal.message(seq, s.head.Hash))
	if err := s.keys.evolve(nextPub, nextPriv); err != nil {
		s.lastSeal = now
		return buf, fmt.Errorf("seal: evolve the key: %w", err)
	}
	start := len(buf)
	out, next, _ := appendChained(seal.appendBody(buf), start, s.head)
	s.advance(next)
	s.cut, s.sinceSeal, s.lastSeal = 0, 0, seal.Time
	return out, nil
}

// Commit records that every line chained so far reached the file.
func (s *Signer) Commit() { s.committed, s.firstCommitted = s.head, s.first }

// Rollback forgets the lines chained since the last Commit: the writer could not write them
// and dropped them (counted as errors), so the next line follows the last line in the file.
func (s *Signer) Rollback() { s.head, s.first = s.committed, s.firstCommitted }

// NewFile tells the signer the file was rotated: the next line is the new file's first.
func (s *Signer) NewFile() { s.first, s.firstCommitted = 0, 0 }
