package otlp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/vmihailenco/msgpack/v5"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	gproto "google.golang.org/protobuf/proto"
)

// A spool frame is one batch: a 12-byte header (payload length, record count, CRC-32C of the
// count and the payload, little endian) and the payload, the batch in msgpack. The length
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

// spoolBatch is a frame's payload: the batch's records, each a protobuf LogRecord as the
// exporter built it (its id and attributes fixed), and how many times it was sent already.
type spoolBatch struct {
	Attempt int      `msgpack:"a"`
	Records [][]byte `msgpack:"r"`
}

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

// encodeBatch is the payload of a batch.
func encodeBatch(b *batch) ([]byte, error) {
	sb := spoolBatch{Attempt: b.attempt, Records: make([][]byte, len(b.records))}
	for i, lr := range b.records {
		var err error
		if sb.Records[i], err = gproto.Marshal(lr); err != nil {
			return nil, fmt.Errorf("marshal record: %w", err)
		}
	}
	out, err := msgpack.Marshal(&sb)
	if err != nil {
		return nil, fmt.Errorf("msgpack batch: %w", err)
	}
	return out, nil
}

// decodeBatch is the batch of a payload read back from the spool (outside input: the file may
// have been damaged, so every step is checked).
func decodeBatch(payload []byte) (*batch, error) {
	var sb spoolBatch
	if err := msgpack.Unmarshal(payload, &sb); err != nil {
		return nil, fmt.Errorf("msgpack batch: %w", err)
	}
	b := &batch{attempt: sb.Attempt, records: make([]*logspb.LogRecord, len(sb.Records))}
	for i, raw := range sb.Records {
		lr := &logspb.LogRecord{}
		if err := gproto.Unmarshal(raw, lr); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if len(lr.Attributes) == 0 || lr.Attributes[len(lr.Attributes)-1].GetKey() != AttrAttempt {
			return nil, fmt.Errorf("record %d: no %s attribute last", i, AttrAttempt)
		}
		b.records[i] = lr
		b.bytes += len(raw)
	}
	return b, nil
}
