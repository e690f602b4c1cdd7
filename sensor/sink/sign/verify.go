package sign

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Kind is what Verify found wrong with a line.
type Kind string

// Kinds of problem, each naming the line where the evidence is.
const (
	// Edited: a line's bytes do not hash to the prev the next line recorded; the position is
	// the edited line's (the line before the one whose prev disagrees).
	Edited Kind = "edited"
	// Deleted: a sequence number was skipped (the position is the line after the gap), or the
	// file begins later than its seal says (lines cut off its start).
	Deleted Kind = "deleted"
	// Reordered: a sequence number that goes back or repeats: lines moved or replayed.
	Reordered Kind = "reordered"
	// Inserted: a line without a chain field inside the chain, or a first line that claims to
	// start a chain in the middle of one.
	Inserted Kind = "inserted"
	// BadSeal: a seal whose bytes are not what the writer writes, or whose signature does not
	// verify with the key vouched for its epoch: edited or forged.
	BadSeal Kind = "bad-seal"
	// KeyChain: a seal of another chain, or signed by a key no earlier seal, key log or pin
	// vouches for (a replaced key, or the seals before it are in files not given).
	KeyChain Kind = "key-chain"
)

// Position is a line of a file, numbered from 1.
type Position struct {
	File string
	Line int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Problem is the first thing Verify found wrong; what follows it is not checked (every later
// line would only repeat the break).
type Problem struct {
	At     Position
	Kind   Kind
	Detail string
}

func (p *Problem) Error() string { return fmt.Sprintf("%s: %s: %s", p.At, p.Kind, p.Detail) }

// Result is what Verify found.
type Result struct {
	Chain           ChainID
	Files, Lines    int
	Seals, Restarts int
	FirstSeq, Last  uint64 // the first and last sequence number read
	LastSealed      uint64 // the sequence number of the last seal (0: none)
	LastSeal        Position
	LastSealTime    time.Time
	Unchained       int      // lines before the chain began (written before signing was on)
	Unsealed        int      // lines after the last seal: chained, but no signature covers them yet
	UnsealedFrom    Position // the first of them
	Torn            int      // bytes of a last line without its newline (a crash mid-write)
	TornAt          Position
	Cut             uint64 // torn bytes the writer cut off before a restart, as its start seals say
	MidChain        bool   // the first file does not begin the chain (earlier files rotated away)
	Problem         *Problem
	certsRefused    int
}

// Intact reports whether no problem was found and every chained line is under a seal.
func (r *Result) Intact() bool {
	return r.Problem == nil && r.Unsealed == 0 && r.Torn == 0 && r.Unchained == 0
}

// CertsRefused is how many key log lines did not verify (ignored: they vouch for nothing).
func (r *Result) CertsRefused() int { return r.certsRefused }

// Source is one file to verify, oldest first.
type Source struct {
	Name string
	R    io.Reader
}

// Trust is what Verify trusts: the public key of epoch 0 (the pin), and optionally key logs'
// certificates, which vouch for later epochs' keys where the seals that did are in files no
// longer kept.
type Trust struct {
	Root ed25519.PublicKey
	// Chain, when set, is the chain the pin is for (a key log's first line says it).
	Chain *ChainID
	Certs []Cert
}

// verifier is the state of one Verify run.
type verifier struct {
	res       Result
	trust     Trust
	keys      map[uint64][]ed25519.PublicKey
	chainSet  bool
	started   bool
	last      Head
	lastAt    Position
	fileFirst uint64
	// gap is a skipped sequence number held for one more line: if that line carries one of
	// the skipped numbers, the lines were reordered rather than deleted.
	gap *gapAt
}

// gapAt is where a skipped sequence number was seen: want was expected, got came.
type gapAt struct {
	at        Position
	want, got uint64
	after     Position
}

// Verify reads the files in order (oldest first: events.jsonl.2, events.jsonl.1,
// events.jsonl) as one chain and returns what it found; the error is for a file that could
// not be read.
func Verify(files []Source, trust Trust) (Result, error) {
	if len(trust.Root) != ed25519.PublicKeySize {
		return Result{}, errors.New("verify: the pinned public key is not an ed25519 key")
	}
	// Certificates are walked in epoch order, each checked with the keys of the epoch before.
	trust.Certs = slices.Clone(trust.Certs)
	slices.SortStableFunc(trust.Certs, func(a, b Cert) int { return cmp.Compare(a.Epoch, b.Epoch) })
	v := &verifier{trust: trust, keys: map[uint64][]ed25519.PublicKey{0: {trust.Root}}}
	if trust.Chain != nil {
		v.res.Chain, v.chainSet = *trust.Chain, true
	}
	for i, f := range files {
		v.res.Files++
		v.fileFirst = 0
		if err := v.file(f, i == len(files)-1); err != nil {
			return v.res, fmt.Errorf("verify %s: %w", f.Name, err)
		}
		if v.res.Problem != nil {
			break
		}
	}
	if v.gap != nil && v.res.Problem == nil {
		v.deleted()
	}
	return v.res, nil
}

// deleted reports the held gap as lines deleted.
func (v *verifier) deleted() {
	g := v.gap
	v.fail(g.at, Deleted, "seq %d follows seq %d (%s): %d lines deleted before this one", g.got, g.want-1, g.after, g.got-g.want)
}

func (v *verifier) fail(at Position, k Kind, format string, args ...any) {
	v.res.Problem = &Problem{At: at, Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// file checks one file's lines.
func (v *verifier) file(src Source, lastFile bool) error {
	br := bufio.NewReaderSize(src.R, 64<<10)
	for n := 1; v.res.Problem == nil; n++ {
		line, err := readLine(br)
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errLong) {
			return err
		}
		at := Position{src.Name, n}
		if v.gap != nil && err != nil { // what follows the gap is no chained line
			v.deleted()
			return nil
		}
		if errors.Is(err, io.EOF) { // a last line without its newline
			if lastFile {
				v.res.Torn, v.res.TornAt = len(line), at
				return nil
			}
			v.fail(at, Inserted, "a line without its newline ends a file that is not the last: torn or inserted")
			return nil
		}
		if errors.Is(err, errLong) {
			v.fail(at, Inserted, "a line longer than %d bytes: not written by vigil", maxLine)
			return nil
		}
		v.line(at, line)
	}
	return nil
}

// errLong is a line longer than maxLine.
var errLong = errors.New("line too long")

// readLine returns the next line without its newline; at the end of the input a last line
// without one comes with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine+1 {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return []byte{0}, errLong
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return buf, err
		}
		return buf[:len(buf)-1], nil
	}
}

// line checks one whole line.
func (v *verifier) line(at Position, line []byte) {
	link, ok := ParseLink(line)
	if g := v.gap; g != nil {
		switch {
		case ok && link.Seq >= g.want && link.Seq < g.got:
			v.fail(g.at, Reordered, "seq %d comes before seq %d (%s): lines moved", g.got, link.Seq, at)
		case ok && link.Seq == g.got:
			v.fail(g.at, Edited, "seq %d after seq %d, and again on the next line: this line's chain field was edited (or the line inserted)", g.got, g.want-1)
		default:
			v.deleted()
		}
		return
	}
	if len(bytes.TrimSpace(line)) == 0 {
		v.fail(at, Inserted, "a blank line: the writer never writes one")
		return
	}
	v.res.Lines++
	if !ok {
		if !v.started {
			v.res.Unchained++
			return
		}
		v.fail(at, Inserted, "no chain field: a line inserted, or one whose chain field was edited")
		return
	}
	if !v.started {
		v.started = true
		v.res.FirstSeq = link.Seq
		switch {
		case v.res.Unchained > 0 && link.Seq > 1:
			v.fail(Position{at.File, at.Line - v.res.Unchained}, Inserted,
				"%d lines without a chain field before seq %d: a chain only follows unchained lines where it begins (seq 1)", v.res.Unchained, link.Seq)
			return
		case link.Seq == 1 && link.Prev != (Hash{}):
			v.fail(at, Inserted, "seq 1 with a prev that is not zero: a chain begins with prev 0")
			return
		case link.Seq > 1:
			v.res.MidChain = true
		}
	} else {
		want := v.last.Seq + 1
		switch {
		case link.Seq > want:
			// Deleted, unless the next line carries a skipped number (reordered).
			v.gap = &gapAt{at: at, want: want, got: link.Seq, after: v.lastAt}
			return
		case link.Seq < want:
			v.fail(at, Reordered, "seq %d follows seq %d (%s): lines moved, repeated or inserted", link.Seq, v.last.Seq, v.lastAt)
			return
		case link.Prev != v.last.Hash:
			v.fail(v.lastAt, Edited, "its hash is %s but the next line (%s) recorded %s: this line was edited (or the next line's prev)",
				v.last.Hash, at, link.Prev)
			return
		}
	}
	if v.fileFirst == 0 {
		v.fileFirst = link.Seq
	}
	if seal, ok := parseSeal(line[:link.Body]); ok {
		v.seal(at, line, link, seal)
		if v.res.Problem != nil {
			return
		}
	} else {
		if v.res.Unsealed == 0 {
			v.res.UnsealedFrom = at
		}
		v.res.Unsealed++
	}
	v.res.Last = link.Seq
	v.last, v.lastAt = Head{Seq: link.Seq, Hash: hashLine(line)}, at
}

// sealJSON is a seal line as JSON.
type sealJSON struct {
	Timestamp string `json:"@timestamp"`
	Event     struct {
		Action  string `json:"action"`
		Kind    string `json:"kind"`
		Dataset string `json:"dataset"`
		Reason  string `json:"reason"`
	} `json:"event"`
	Vigil struct {
		Seal *struct {
			Chain string `json:"chain_id"`
			Epoch uint64 `json:"epoch"`
			First uint64 `json:"first_seq"`
			Cut   uint64 `json:"cut_bytes"`
			Next  string `json:"next_key"`
			Sig   string `json:"sig"`
		} `json:"seal"`
	} `json:"vigil"`
}

// sealMarker is how every seal line begins: lines that do not are not read as JSON at all.
var sealMarker = []byte(`{"@timestamp":"`)

// sealDataset is in every seal line.
var sealDataset = []byte(`"dataset":"` + proto.DatasetIntegrity + `"`)

// parseSeal reads a seal from a line's body (the line up to its chain field). ok is false for
// a line that does not claim to be a seal; one that claims to be and does not re-encode to
// the same bytes comes back with a zero Time, which verify reports as an edited seal.
func parseSeal(body []byte) (Seal, bool) {
	if !bytes.HasPrefix(body, sealMarker) || !bytes.Contains(body, sealDataset) {
		return Seal{}, false
	}
	var j sealJSON
	if err := json.Unmarshal(append(slices.Clip(body), '}'), &j); err != nil {
		return Seal{}, false
	}
	if j.Event.Dataset != proto.DatasetIntegrity || j.Event.Action != proto.ActionSeal || j.Vigil.Seal == nil {
		return Seal{}, false
	}
	s := Seal{Reason: j.Event.Reason, Epoch: j.Vigil.Seal.Epoch, First: j.Vigil.Seal.First, Cut: j.Vigil.Seal.Cut}
	t, terr := time.Parse(proto.TimeLayout, j.Timestamp)
	next, nerr := base64.StdEncoding.DecodeString(j.Vigil.Seal.Next)
	sig, serr := base64.StdEncoding.DecodeString(j.Vigil.Seal.Sig)
	cerr := decodeHex(s.Chain[:], j.Vigil.Seal.Chain)
	if terr != nil || nerr != nil || serr != nil || cerr != nil || len(next) != ed25519.PublicKeySize ||
		len(sig) != ed25519.SignatureSize || !reasons[s.Reason] {
		return Seal{}, true
	}
	s.Time, s.Next, s.Sig = t, next, sig
	// One encoding: anything else in the line (a field added, a space) is an edit.
	if !bytes.Equal(s.appendBody(nil), append(slices.Clip(body), "}\n"...)) {
		return Seal{}, true
	}
	return s, true
}

// seal checks a seal line: its bytes, its chain, the file's first line, its key and signature;
// then vouches for the key of the next epoch.
func (v *verifier) seal(at Position, line []byte, link Link, s Seal) {
	if s.Time.IsZero() {
		v.fail(at, BadSeal, "a seal line that is not as the writer writes it: edited")
		return
	}
	if !v.chainSet {
		v.res.Chain, v.chainSet = s.Chain, true
	}
	if s.Chain != v.res.Chain {
		v.fail(at, KeyChain, "seal of chain %s, but the chain is %s: another output's seal, or a new key", s.Chain, v.res.Chain)
		return
	}
	if s.First != v.fileFirst {
		kind, what := Deleted, "lines were cut off its start"
		if v.fileFirst < s.First {
			kind, what = Inserted, "lines were added at its start"
		}
		v.fail(at, kind, "the seal says %s begins at seq %d, it begins at seq %d: %s", at.File, s.First, v.fileFirst, what)
		return
	}
	v.certify(s.Epoch)
	msg := s.message(link.Seq, link.Prev)
	keys := v.keys[s.Epoch]
	if len(keys) == 0 {
		v.fail(at, KeyChain, "no key is vouched for epoch %d (the pin is epoch 0): the key was replaced, or the seals and key log entries before it are missing (give the earlier files, or the key log with --keylog)", s.Epoch)
		return
	}
	if !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return ed25519.Verify(k, msg, s.Sig) }) {
		v.fail(at, BadSeal, "the signature does not verify with the key of epoch %d: the seal, or the chain up to it, was edited or forged", s.Epoch)
		return
	}
	v.vouch(s.Epoch+1, s.Next)
	v.res.Seals++
	v.res.LastSealed, v.res.LastSeal, v.res.LastSealTime = link.Seq, at, s.Time
	v.res.Unsealed, v.res.UnsealedFrom = 0, Position{}
	v.res.Cut += s.Cut
	if s.Reason == ReasonStart {
		v.res.Restarts++
	}
}

// vouch adds key as a key of epoch.
func (v *verifier) vouch(epoch uint64, key ed25519.PublicKey) {
	if !slices.ContainsFunc(v.keys[epoch], func(k ed25519.PublicKey) bool { return k.Equal(key) }) {
		v.keys[epoch] = append(v.keys[epoch], key)
	}
}

// certify walks the key log's certificates up to epoch, each vouched for by a key of the
// epoch before it; a certificate that does not verify is refused and counted.
func (v *verifier) certify(epoch uint64) {
	for len(v.trust.Certs) > 0 && v.trust.Certs[0].Epoch <= epoch {
		c := v.trust.Certs[0]
		v.trust.Certs = v.trust.Certs[1:]
		if c.Epoch == 0 || c.Chain != v.res.Chain {
			continue
		}
		msg := certMessage(c.Chain, c.Epoch, c.Key)
		if slices.ContainsFunc(v.keys[c.Epoch-1], func(k ed25519.PublicKey) bool { return ed25519.Verify(k, msg, c.Sig) }) {
			v.vouch(c.Epoch, c.Key)
		} else {
			v.res.certsRefused++
		}
	}
}
