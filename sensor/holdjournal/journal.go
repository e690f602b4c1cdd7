// Package holdjournal keeps on disk the kernel events the correlator holds, until they are
// written. The correlator holds each event for seconds, waiting for the agent's telemetry; a
// sensor killed in that time (SIGKILL, the OOM killer) would otherwise lose every held event
// without a trace. With the journal, its next start writes them, marked vigil.recovered.
//
// A journal is a directory of segment files, one run of the sensor after another. A segment
// is named <run>-<first>.hold: run is the sensor's start time (unix ns, 16 hex digits) and
// first the number of the segment's first event in that run (1-based, 16 hex digits), so names
// sort in the order they were written. Its lines are
//
//	{...}    one event, as proto.AppendLine writes it (the next number of the run)
//	w <n>    the first n events of the run have been written to every sink and flushed
//
// A segment whose events are all written is removed, and so is the whole run's journal when
// the sensor stops cleanly: what is left at a start is what a dead sensor never wrote.
package holdjournal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/vigil-sensor/vigil/internal/owned"
	"github.com/vigil-sensor/vigil/proto"
)

const (
	// segmentBytes is the size at which a segment is closed and the next one started: small
	// enough that written events leave the disk soon, large enough that removals are rare.
	segmentBytes = 4 << 20
	// idleResetBytes: a segment holding only written events is removed once this big, so
	// a sensor that keeps little held does not grow one segment to segmentBytes.
	idleResetBytes = 256 << 10
	// bufferBytes is what Add gathers before writing to the segment on its own (Commit writes
	// the rest).
	bufferBytes = 256 << 10
	// suffix ends every segment's name.
	suffix = ".hold"
	// lockName is the file whose flock keeps two sensors from sharing a journal.
	lockName = ".lock"
)

// Journal is one sensor run's journal, and what the dead runs before it left.
// Its methods are called from one goroutine (the pipeline's).
type Journal struct {
	dir  string
	run  string
	lock *os.File

	cur      *os.File // the open segment; nil until the next Add
	curFirst uint64   // number of cur's first event
	curSize  int64
	buf      []byte
	closed   []segment // earlier segments of this run, oldest first

	added     uint64 // events added (the last one's number)
	committed uint64 // the last watermark written

	recovered     []*proto.Event
	recoveredLost uint64
	oldFiles      []string
}

// segment is a closed segment of this run.
type segment struct {
	path string
	last uint64 // number of its last event
}

// Open takes the journal in dir (created 0700 when missing), locks it for this run and reads
// what earlier runs left (Recovered). A directory another user owns or may write into is
// refused, and so is one another sensor holds.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open hold journal: create %s: %w", dir, err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("open hold journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open hold journal: lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close() // the lock error is the one to report
		return nil, fmt.Errorf("open hold journal %s: another sensor is using it: %w", dir, err)
	}
	j := &Journal{dir: dir, run: fmt.Sprintf("%016x", time.Now().UnixNano()), lock: lock, buf: make([]byte, 0, bufferBytes+proto.MaxLineBytes+1)}
	if err := j.recover(); err != nil {
		_ = j.lock.Close() // the read error is the one to report
		return nil, fmt.Errorf("open hold journal %s: %w", dir, err)
	}
	return j, nil
}

// checkDir refuses a journal directory that is not a directory, is owned by another user, or
// that others may write into: the journal holds redacted but private records, and whoever
// could plant a segment could make the next start write lines of its choosing.
func checkDir(dir string) error {
	if err := owned.Dir(dir); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		// Ours but readable or writable by others (created by hand): narrow it.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", dir, err)
		}
	}
	return nil
}

// Recovered returns the events earlier runs added and never wrote, oldest first, and how many
// more were lost: lines cut off by the kill or unreadable, and events past the recovery bound.
// The caller writes them and then calls ForgetRecovered.
func (j *Journal) Recovered() ([]*proto.Event, uint64) {
	return j.recovered, j.recoveredLost
}

// ForgetRecovered removes the earlier runs' segments, once the caller has written what
// Recovered returned.
func (j *Journal) ForgetRecovered() error {
	var errs []error
	for _, p := range j.oldFiles {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	j.oldFiles, j.recovered = nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget recovered hold journal: %w", err)
	}
	return nil
}

// Add journals e, the next event handed to the correlator. It reaches the segment file when
// the buffer fills or at the next Commit.
func (j *Journal) Add(e *proto.Event) error {
	if j.cur == nil {
		if err := j.startSegment(); err != nil {
			return err
		}
	}
	j.added++
	before := len(j.buf)
	var err error
	if j.buf, err = proto.AppendLine(j.buf, e); err != nil {
		// Keep the numbering: an event journalled as nothing would shift every later
		// number by one. A line that cannot be encoded cannot be written either.
		j.buf = append(j.buf[:before], "{}\n"...)
		return fmt.Errorf("hold journal: encode event %d: %w", j.added, err)
	}
	if len(j.buf) < bufferBytes {
		return nil
	}
	if err := j.writeBuffer(); err != nil {
		return err
	}
	if j.curSize >= segmentBytes {
		return j.closeCurrent()
	}
	return nil
}

// Commit records that the first written events added have been written and flushed by every
// sink, writes everything added so far to the segment (a process killed after Commit returns
// keeps it: it is in the kernel's page cache), and removes the segments nothing unwritten is
// left in.
func (j *Journal) Commit(written uint64) error {
	if written > j.added {
		return fmt.Errorf("hold journal: commit of %d events, only %d added", written, j.added)
	}
	if written > j.committed {
		// The watermark goes in the open segment, or a new one when the last was just
		// closed: a closed segment's events may be the ones it covers.
		if j.cur == nil {
			if err := j.startSegment(); err != nil {
				return err
			}
		}
		j.buf = append(j.buf, "w "...)
		j.buf = strconv.AppendUint(j.buf, written, 10)
		j.buf = append(j.buf, '\n')
	}
	j.committed = max(j.committed, written)
	if err := j.writeBuffer(); err != nil {
		return err
	}
	var errs []error
	keep := j.closed[:0]
	for _, s := range j.closed {
		if s.last > j.committed {
			keep = append(keep, s)
			continue
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("hold journal: remove written segment: %w", err))
		}
	}
	clear(j.closed[len(keep):])
	j.closed = keep
	switch {
	case j.cur == nil:
	case j.committed == j.added && len(j.closed) == 0 && j.curSize >= idleResetBytes:
		errs = append(errs, j.removeCurrent())
	case j.curSize >= segmentBytes:
		errs = append(errs, j.closeCurrent())
	}
	return errors.Join(errs...)
}

// Close ends this run's journal: when everything added was committed nothing is left on
// disk; otherwise the unwritten events stay for the next start. The lock is released.
func (j *Journal) Close() error {
	errs := []error{j.writeBuffer()}
	if j.committed == j.added {
		if j.cur != nil {
			errs = append(errs, j.removeCurrent())
		}
		for _, s := range j.closed {
			errs = append(errs, os.Remove(s.path))
		}
		j.closed = nil
	} else if j.cur != nil {
		errs = append(errs, j.cur.Close())
		j.cur = nil
	}
	errs = append(errs, j.lock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close hold journal: %w", err)
	}
	return nil
}

// startSegment opens the segment the next event starts.
func (j *Journal) startSegment() error {
	path := filepath.Join(j.dir, fmt.Sprintf("%s-%016x%s", j.run, j.added+1, suffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("hold journal: create segment: %w", err)
	}
	j.cur, j.curFirst, j.curSize = f, j.added+1, 0
	return nil
}

// writeBuffer hands the buffered lines to the segment file.
func (j *Journal) writeBuffer() error {
	if len(j.buf) == 0 || j.cur == nil {
		return nil
	}
	n, err := j.cur.Write(j.buf)
	j.curSize += int64(n)
	if err != nil {
		// What did not reach the file stays buffered for the next try; a partial line
		// already written is read back as cut off (counted) if the sensor dies now.
		j.buf = j.buf[:copy(j.buf, j.buf[n:])]
		return fmt.Errorf("hold journal: write segment: %w", err)
	}
	j.buf = j.buf[:0]
	return nil
}

// closeCurrent closes the open segment and keeps it until its events are written.
func (j *Journal) closeCurrent() error {
	err := j.cur.Close()
	j.closed = append(j.closed, segment{path: j.cur.Name(), last: j.added})
	j.cur = nil
	if err != nil {
		return fmt.Errorf("hold journal: close segment: %w", err)
	}
	return nil
}

// removeCurrent removes the open segment, every event in it being written.
func (j *Journal) removeCurrent() error {
	path := j.cur.Name()
	err := errors.Join(j.cur.Close(), os.Remove(path))
	j.cur = nil
	if err != nil {
		return fmt.Errorf("hold journal: remove written segment: %w", err)
	}
	return nil
}

// isWatermark reports whether line is a watermark and its count.
func isWatermark(line []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("w "))
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest), 10, 64)
	return n, err == nil
}
