package otlp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vigil-sensor/vigil/internal/owned"
)

// The spool keeps, in order, the batches the endpoint has not taken yet: segment files of
// frames (frame.go) in a directory of the sensor's own, read from the oldest, and a cursor
// file saying how far the oldest was sent, so that a restart neither resends what went nor
// skips what did not.
//
// Past its bound the spool refuses new batches (they are counted dropped) rather than
// deleting its oldest: during an outage the oldest batches are the start of whatever
// happened, and an attacker who can make the sensor write (a flood of file opens) must not
// be able to push that start out of the spool. What is kept is a continuous record from the
// outage's start; the gap is at its end, counted, and visible as missing vigil.record.id
// numbers. The JSONL file on the host keeps everything either way.
const (
	spoolDirMode  os.FileMode = 0o700
	spoolFileMode os.FileMode = 0o600
	segSuffix                 = ".seg"
	cursorName                = "sent.pos" // the cursor: how far the spool was sent
	// segmentBytes is the size past which a new segment is started: a sent segment is
	// deleted whole, so smaller segments give the disk back sooner during a replay, and
	// larger ones cost fewer files. 4 MiB is a few seconds of records at full rate.
	segmentBytes = 4 << 20
	// firstSegment numbers the first segment of an empty spool, leaving room below it for
	// the segments prepend puts before it.
	firstSegment = 1 << 40
)

// errSpoolFull is returned by append when the batch would take the spool past its bound.
var errSpoolFull = errors.New("spool full")

// segment is one spool file. off is how far it has been sent (only the oldest has one), and
// records how many records it holds past off.
type segment struct {
	num     uint64
	size    int64
	off     int64
	records uint64
}

// spool is safe for use by the writer (append) and the sender (peek, commit) at once.
type spool struct {
	dir string
	max int64

	mu      sync.Mutex
	segs    []*segment // oldest first
	tail    *os.File   // the last segment, open for appending; nil until a batch is appended
	bytes   int64      // of every segment file
	records uint64     // not yet sent
	peeked  int64      // length of the frame peek returned and commit has not passed yet
	// cut is how many bytes openSpool cut off torn or corrupt segments.
	cut int64
	// next numbers the next segment appended: above every segment and cursor seen, so that a
	// cursor left pointing at a deleted segment never makes a newer one look sent.
	next uint64
}

// openSpool opens (creating it 0700) the spool directory, checks each segment's frames and
// cuts a torn or corrupt tail off, so that the next append follows the last whole frame. It
// returns the records lost in what it cut: their count when a frame's header survived, which
// is almost always (a torn write loses the payload's end).
func openSpool(dir string, bound int64) (*spool, uint64, error) {
	if err := os.MkdirAll(dir, spoolDirMode); err != nil {
		return nil, 0, fmt.Errorf("create spool directory: %w", err)
	}
	if err := owned.Dir(dir); err != nil {
		return nil, 0, fmt.Errorf("spool directory: %w: its owner could read or plant batches", err)
	}
	if fi, err := os.Lstat(dir); err != nil {
		return nil, 0, fmt.Errorf("spool directory: %w", err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, spoolDirMode); err != nil {
			return nil, 0, fmt.Errorf("spool directory: chmod %s: %w", dir, err)
		}
	}
	s := &spool{dir: dir, max: bound, next: firstSegment}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("read spool directory: %w", err)
	}
	for _, de := range names {
		n, ok := strings.CutSuffix(de.Name(), segSuffix)
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(n, 16, 64)
		if err != nil {
			continue
		}
		s.segs = append(s.segs, &segment{num: num})
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return cmpUint(a.num, b.num) })
	curNum, curOff := s.readCursor()
	s.next = max(s.next, curNum+1)
	if len(s.segs) > 0 {
		s.next = max(s.next, s.segs[len(s.segs)-1].num+1)
	}
	var lost uint64
	kept := s.segs[:0]
	for _, sg := range s.segs {
		if len(kept) == 0 && sg.num < curNum {
			_ = os.Remove(s.path(sg.num)) // sent before the cursor moved past it
			continue
		}
		if len(kept) == 0 && sg.num == curNum {
			sg.off = curOff
		}
		n, err := s.scan(sg)
		lost += n
		if err != nil {
			return nil, lost, err
		}
		if sg.off >= sg.size {
			_ = os.Remove(s.path(sg.num)) // entirely sent
			continue
		}
		kept = append(kept, sg)
		s.bytes += sg.size
		s.records += sg.records
	}
	s.segs = kept
	return s, lost, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *spool) path(num uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", num, segSuffix))
}

// openSegment opens a segment file refusing a symlink or anything but a regular file of the
// sensor's own: a root process must not follow what another user planted in its directory.
func (s *spool) openSegment(num uint64, flags int) (*os.File, error) {
	p := s.path(num)
	if uid, err := owned.RemoveForeign(p); err != nil {
		return nil, err
	} else if uid >= 0 {
		return nil, fmt.Errorf("%s was owned by uid %d: removed", p, uid)
	}
	f, err := os.OpenFile(p, flags|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, spoolFileMode)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if _, err := owned.RegularFile(f, p, spoolFileMode); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// scan reads sg from its offset, counts its records, and cuts the file at the first frame
// that is torn or corrupt, with what follows it (nothing after a bad frame can be trusted to
// start a frame); it returns the records lost in the bad frame, as far as its header says.
func (s *spool) scan(sg *segment) (uint64, error) {
	f, err := s.openSegment(sg.num, os.O_RDWR)
	if err != nil {
		return 0, fmt.Errorf("spool segment: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, fmt.Errorf("read spool segment %s: %w", f.Name(), err)
	}
	if sg.off > int64(len(data)) {
		sg.off = 0 // a cursor past the end is not this segment's: send it all again
	}
	off := sg.off
	var lost uint64
	for off < int64(len(data)) {
		_, count, n, err := decodeFrame(data[off:])
		if err != nil {
			lost = uint64(count)
			s.cut += int64(len(data)) - off
			if err := f.Truncate(off); err != nil {
				return lost, fmt.Errorf("cut torn spool segment %s at %d: %w", f.Name(), off, err)
			}
			break
		}
		sg.records += uint64(count)
		off += int64(n)
	}
	sg.size = off
	return lost, nil
}

// append writes one frame after the last, starting a segment when the last is full. A batch
// that would take the spool past its bound is refused with errSpoolFull.
func (s *spool) append(payload []byte, count int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	frame := appendFrame(nil, payload, uint32(count))
	if s.bytes+int64(len(frame)) > s.max {
		return errSpoolFull
	}
	last := s.last()
	if s.tail == nil || last == nil || last.size >= segmentBytes {
		if err := s.openTail(s.next); err != nil {
			return err
		}
		s.next++
		last = s.last()
	}
	if _, err := s.tail.Write(frame); err != nil {
		// Cut what part of the frame reached the file, so the next frame follows a whole one.
		err = fmt.Errorf("write spool segment %s: %w", s.tail.Name(), err)
		if terr := s.tail.Truncate(last.size); terr != nil {
			err = fmt.Errorf("%w; cut partial frame: %w", err, terr)
		}
		return err
	}
	last.size += int64(len(frame))
	last.records += uint64(count)
	s.bytes += int64(len(frame))
	s.records += uint64(count)
	return nil
}

func (s *spool) last() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// openTail starts segment num as the one appended to.
func (s *spool) openTail(num uint64) error {
	if s.tail != nil {
		if err := s.tail.Close(); err != nil {
			return fmt.Errorf("close spool segment: %w", err)
		}
		s.tail = nil
	}
	f, err := s.openSegment(num, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return fmt.Errorf("spool segment: %w", err)
	}
	s.tail = f
	s.segs = append(s.segs, &segment{num: num})
	return nil
}

// prepend writes frames as a new segment before every other, for batches that are older than
// the spool's: those the sender held in memory when Close ran out of time (at most
// readyBatches+1). They are kept even past the bound, which they exceed by that much at most:
// dropping them, or the oldest spooled batches to make room, would cut the record at its
// start, which is what the bound's policy protects. It returns the records it could not keep.
func (s *spool) prepend(frames [][]byte, counts []int) (lost uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	num := s.next
	if len(s.segs) > 0 {
		num = s.segs[0].num - 1
	} else {
		s.next++
	}
	var data []byte
	var records uint64
	for i, payload := range frames {
		data = appendFrame(data, payload, uint32(counts[i]))
		records += uint64(counts[i])
	}
	if len(data) == 0 {
		return 0, nil
	}
	// The cursor names the new segment before it exists: a crash in between makes the next
	// run resend the old oldest segment from its start (duplicates), where the other order
	// would make it delete the new segment as sent (loss).
	if err := s.writeCursor(num, 0); err != nil {
		return records, err
	}
	f, err := s.openSegment(num, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return records, fmt.Errorf("spool segment: %w", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return records, fmt.Errorf("write spool segment %s: %w", f.Name(), werr)
	}
	s.segs = append([]*segment{{num: num, size: int64(len(data)), records: records}}, s.segs...)
	s.bytes += int64(len(data))
	s.records += records
	return 0, nil
}

// peek returns the oldest batch's payload (valid until the next call) and record count, nil
// when the spool is empty. A frame that cannot be read back (the file damaged since it was
// opened) is cut with the rest of its segment, whose records are returned as lost.
func (s *spool) peek() (payload []byte, count int, lost uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.segs) > 0 {
		sg := s.segs[0]
		if sg.off >= sg.size {
			s.dropHead() // cut after a read error
			continue
		}
		payload, cnt, n, err := s.readFrame(sg)
		if err != nil {
			lost += sg.records
			s.records -= sg.records
			sg.records = 0
			sg.off = sg.size
			return nil, 0, lost, fmt.Errorf("read spool: %w", err)
		}
		s.peeked = int64(n)
		return payload, int(cnt), lost, nil
	}
	return nil, 0, lost, nil
}

// readFrame reads the frame at sg's offset.
func (s *spool) readFrame(sg *segment) ([]byte, uint32, int, error) {
	f, err := s.openSegment(sg.num, os.O_RDONLY)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	var h [frameHeader]byte
	if _, err := f.ReadAt(h[:], sg.off); err != nil {
		return nil, 0, 0, fmt.Errorf("%s at %d: %w", f.Name(), sg.off, err)
	}
	size := int64(binary.LittleEndian.Uint32(h[:]))
	if size > maxFramePayload || sg.off+frameHeader+size > sg.size {
		return nil, 0, 0, fmt.Errorf("%s at %d: %w: payload length %d", f.Name(), sg.off, errCorrupt, size)
	}
	buf := make([]byte, frameHeader+size)
	if _, err := f.ReadAt(buf, sg.off); err != nil {
		return nil, 0, 0, fmt.Errorf("%s at %d: %w", f.Name(), sg.off, err)
	}
	payload, count, n, err := decodeFrame(buf)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s at %d: %w", f.Name(), sg.off, err)
	}
	return payload, count, n, nil
}

// commit marks the batch peek returned as sent: the cursor moves past it, and a segment sent
// entirely is deleted, also the one being appended to (the next append starts another):
// its sent bytes would otherwise count against the bound.
func (s *spool) commit(count int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.peeked == 0 {
		return nil
	}
	sg := s.segs[0]
	sg.off += s.peeked
	sg.records -= uint64(count)
	s.records -= uint64(count)
	s.peeked = 0
	if sg.off >= sg.size {
		s.dropHead()
	}
	if len(s.segs) == 0 {
		return s.writeCursor(0, 0)
	}
	return s.writeCursor(s.segs[0].num, s.segs[0].off)
}

// dropHead deletes the oldest segment, sent or cut.
func (s *spool) dropHead() {
	sg := s.segs[0]
	if len(s.segs) == 1 && s.tail != nil {
		_ = s.tail.Close()
		s.tail = nil
	}
	_ = os.Remove(s.path(sg.num)) // gone already is as good
	s.bytes -= sg.size
	s.records -= sg.records
	s.segs = s.segs[1:]
}

// The cursor file is the oldest segment's number and how far it was sent, with a CRC: a
// cursor that does not check is ignored, and the oldest segment is sent again from its start
// (duplicates, which vigil.record.id tells apart, rather than loss).
func (s *spool) writeCursor(num uint64, off int64) error {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:], num)
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	tmp := filepath.Join(s.dir, cursorName+".tmp")
	_ = os.Remove(tmp) // a leftover (or a planted symlink) is replaced, never followed
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, spoolFileMode)
	if err != nil {
		return fmt.Errorf("write spool cursor: %w", err)
	}
	_, werr := f.Write(b[:])
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(s.dir, cursorName))
	}
	if werr != nil {
		return fmt.Errorf("write spool cursor: %w", werr)
	}
	return nil
}

func (s *spool) readCursor() (num uint64, off int64) {
	f, err := os.OpenFile(filepath.Join(s.dir, cursorName), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var b [20]byte
	if _, err := io.ReadFull(f, b[:]); err != nil || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		return 0, 0
	}
	return binary.LittleEndian.Uint64(b[0:]), int64(binary.LittleEndian.Uint64(b[8:]))
}

// size is what the spool holds: records not sent yet, and the bytes of its files.
func (s *spool) size() (records uint64, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.bytes
}

// empty reports whether every spooled batch was sent (a batch peeked and not committed is
// still in the spool).
func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records == 0
}

// close closes the segment being appended to; the files stay for the next run.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tail == nil {
		return nil
	}
	err := s.tail.Close()
	s.tail = nil
	if err != nil {
		return fmt.Errorf("close spool segment: %w", err)
	}
	return nil
}
