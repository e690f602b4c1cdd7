package otlp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/vmihailenco/msgpack/v5"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"
)

// A spool frame is one batch: a 12-byte header (payload length, record count, CRC-32C of the
// count and the payload, little endian) and the payload, the batch (encodeBatch). The length
// lets a reader skip to the next frame; the count lets a frame that is cut or corrupt still
// be counted as the records it lost; the CRC tells a torn write (the sensor killed mid-write,
// a crash before the page cache reached the disk) from a whole frame.
const frameHeader = 12

// maxFramePayload refuses a length no batch reaches (a batch closes at MaxBatchBytes, and
// one record's line is at most proto.MaxLineBytes): past it the header itself is corrupt,
// and reading it would allocate whatever the file claims.
const maxFramePayload = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Frame decoding errors: errTorn for a frame cut short (the end of the file comes first),
// errCorrupt for one whose header or CRC is wrong.
var (
	errTorn    = errors.New("torn frame")
	errCorrupt = errors.New("corrupt frame")
)

// appendFrame appends the frame of payload, holding count records, to dst.
func appendFrame(dst []byte, payload []byte, count uint32) []byte {
	var h [frameHeader]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], count)
	crc := crc32.Update(crc32.Checksum(h[4:8], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h[8:], crc)
	return append(append(dst, h[:]...), payload...)
}

// decodeFrame reads the frame at the start of b: its payload (a sub-slice of b), record count
// and length. When the frame is torn or corrupt, count is what its header says when the header
// is whole (the records lost with it), else 0.
func decodeFrame(b []byte) (payload []byte, count uint32, n int, err error) {
	if len(b) < frameHeader {
		return nil, 0, 0, fmt.Errorf("%w: %d header bytes of %d", errTorn, len(b), frameHeader)
	}
	size := binary.LittleEndian.Uint32(b[0:])
	count = binary.LittleEndian.Uint32(b[4:])
	if size > maxFramePayload {
		return nil, 0, 0, fmt.Errorf("%w: payload length %d", errCorrupt, size)
	}
	n = frameHeader + int(size)
	if len(b) < n {
		return nil, count, 0, fmt.Errorf("%w: %d of %d bytes", errTorn, len(b), n)
	}
	payload = b[frameHeader:n]
	crc := crc32.Update(crc32.Checksum(b[4:8], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(b[8:]) {
		return nil, count, 0, fmt.Errorf("%w: CRC mismatch", errCorrupt)
	}
	return payload, count, n, nil
}

// spoolRecords starts a frame's payload in the current format: this byte, the attempt (a
// varint), then the batch's records as it holds them (each its length and its bytes, without
// the attempt attribute). A msgpack payload (the format before, still read back: a spool left
// by an earlier version) never starts with it: 0xc1 is the one byte msgpack never uses.
const spoolRecords = 0xc1

// maxAttempt bounds the attempt read back from a payload: past it the payload is damaged.
const maxAttempt = 1 << 30

// encodeBatch is the payload of a batch.
func encodeBatch(b *batch) []byte {
	out := make([]byte, 0, 1+protowire.SizeVarint(uint64(b.attempt))+len(b.data))
	out = append(out, spoolRecords)
	out = protowire.AppendVarint(out, uint64(b.attempt))
	return append(out, b.data...)
}

// decodeBatch is the batch of a payload read back from the spool (outside input: the file may
// have been damaged, so every step is checked). Its records are a sub-slice of payload.
func decodeBatch(payload []byte) (*batch, error) {
	if len(payload) == 0 || payload[0] != spoolRecords {
		return decodeLegacyBatch(payload)
	}
	attempt, n := protowire.ConsumeVarint(payload[1:])
	if n < 0 {
		return nil, fmt.Errorf("attempt: %w", protowire.ParseError(n))
	}
	if attempt > maxAttempt {
		return nil, fmt.Errorf("attempt %d", attempt)
	}
	data := payload[1+n:]
	count, err := checkRecords(data)
	if err != nil {
		return nil, err
	}
	return &batch{data: data, count: count, attempt: int(attempt), bytes: len(data) + count*recordOverhead}, nil
}

// spoolBatch is a payload in the format before spoolRecords: the batch's records, each a
// protobuf LogRecord with the attempt attribute last, and how many times it was sent already.
type spoolBatch struct {
	Attempt int      `msgpack:"a"`
	Records [][]byte `msgpack:"r"`
}

// decodeLegacyBatch reads a spoolBatch payload: each record is parsed, and written back
// without its attempt attribute.
func decodeLegacyBatch(payload []byte) (*batch, error) {
	var sb spoolBatch
	if err := msgpack.Unmarshal(payload, &sb); err != nil {
		return nil, fmt.Errorf("msgpack batch: %w", err)
	}
	if sb.Attempt < 0 || sb.Attempt > maxAttempt {
		return nil, fmt.Errorf("attempt %d", sb.Attempt)
	}
	b := &batch{attempt: sb.Attempt}
	for i, raw := range sb.Records {
		lr := &logspb.LogRecord{}
		if err := gproto.Unmarshal(raw, lr); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if len(lr.Attributes) == 0 || lr.Attributes[len(lr.Attributes)-1].GetKey() != AttrAttempt {
			return nil, fmt.Errorf("record %d: no %s attribute last", i, AttrAttempt)
		}
		lr.Attributes = lr.Attributes[:len(lr.Attributes)-1]
		rec, err := gproto.Marshal(lr)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		b.add(rec)
	}
	return b, nil
}
