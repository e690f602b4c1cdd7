// Package jsonl is the JSON Lines sink: one proto.FitLine record per line, the format Wazuh
// reads with <log_format>json</log_format> and any SIEM forwarder can tail. Files are rotated
// by size with a bounded count, and created with restrictive permissions because the sensor
// runs as root next to secrets and its records name the files agents touched.
package jsonl

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/vigil-sensor/vigil/internal/owned"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// DefaultMode is the permission of every file the sink writes: root reads and writes, the
// group (e.g. the SIEM forwarder's) reads, others nothing.
const DefaultMode os.FileMode = 0o640

// DefaultMaxFiles is how many rotated files are kept when rotation is on and Options.MaxFiles
// is zero.
const DefaultMaxFiles = 5

// dirMode is used when the parent directory has to be created.
const dirMode os.FileMode = 0o750

// reserveBytes is the disk space the sink keeps in reserve next to its file (a hidden
// .<name>.reserve, which no events.jsonl* pattern of a log forwarder picks up):
// when the disk is full it gives the space back and writes into it, so the lines that say
// records were lost (and the records of that moment) still reach the file.
const reserveBytes = 256 << 10

// bufferBytes is how much is buffered before a Write goes to the file on its own; the sensor
// calls Flush after every batch, so most batches leave in one write(2).
const bufferBytes = 256 << 10

// Stdout is the Path that selects standard output instead of a file.
const Stdout = "-"

// ErrClosed is returned (wrapped) by Write after Close.
var ErrClosed = errors.New("jsonl sink closed")

// Options configure a Writer.
type Options struct {
	// Path is the file to append to, or "-" for standard output (never rotated).
	Path string
	// MaxSizeBytes rotates the file before a record would take it past this size; 0 turns
	// rotation off.
	MaxSizeBytes int64
	// MaxFiles is how many rotated files (Path.1 … Path.N, Path.1 the newest) are kept;
	// 0 means DefaultMaxFiles.
	MaxFiles int
	// Mode is the file permission, enforced even on a file that already existed; 0 means
	// DefaultMode.
	Mode os.FileMode
	// OnForeign, when set, is told of an output file another user owned, which the sink
	// removed and created anew instead of writing into it.
	OnForeign func(path string, uid int)
	// Sign, when set, makes the file tamper-evident (sensor/sink/sign): every line is chained
	// as it enters the buffer, so the chain's order is the file's, and seals are written at
	// Open (where the chain resumed), by Flush once the signer's interval has passed, before
	// every rotation (each rotated file ends sealed) and at Close. Not for standard output:
	// the chain resumes from the file's tail.
	Sign *sign.Signer
}

// Writer is a sensor.Sink writing JSON lines. Write, Flush, Close and Stats may be called from
// different goroutines (the pipeline writes, a timer flushes); a mutex serialises them.
type Writer struct {
	mu       sync.Mutex
	opts     Options
	out      io.Writer // the open file, or os.Stdout; nil after a failed reopen
	file     *os.File  // nil for standard output
	buf      []byte    // whole lines not yet written
	line     []byte    // a new line set aside while the buffer is flushed or rotated
	bufLines uint64
	size     int64  // bytes already in the current file
	opened   uint64 // files opened (the first, each rotation's, each reopen): Scope's generation
	closed   bool
	// sealErr is a seal that failed where its error could not be returned (before a
	// rotation, which must go on): the next Flush returns it.
	sealErr error

	written, bytes, errors uint64
}

// Open validates o, creates the parent directory if needed and opens the file for appending.
func Open(o Options) (*Writer, error) {
	if o.Path == "" {
		return nil, errors.New("open jsonl sink: empty path")
	}
	if o.MaxSizeBytes < 0 || o.MaxFiles < 0 {
		return nil, fmt.Errorf("open jsonl sink %s: negative MaxSizeBytes or MaxFiles", o.Path)
	}
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	o.Mode = o.Mode.Perm()
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	// Room for one maximal line (and its chain field) past bufferBytes: Write encodes into
	// the buffer before it decides to flush, and must not make append reallocate it.
	w := &Writer{opts: o, buf: make([]byte, 0, bufferBytes+proto.MaxLineBytes+sign.Overhead+1)}
	if o.Path == Stdout {
		if o.Sign != nil {
			return nil, errors.New("open jsonl sink: standard output cannot be signed: the chain resumes from a file's tail")
		}
		w.out = os.Stdout
		return w, nil
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), dirMode); err != nil {
		return nil, fmt.Errorf("open jsonl sink: create directory: %w", err)
	}
	if err := checkOutputDir(filepath.Dir(o.Path)); err != nil {
		return nil, fmt.Errorf("open jsonl sink: %w", err)
	}
	if err := w.openFile(); err != nil {
		return nil, fmt.Errorf("open jsonl sink: %w", err)
	}
	if o.Sign != nil {
		if err := w.resume(); err != nil {
			return nil, errors.Join(fmt.Errorf("open jsonl sink: %w", err), w.file.Close())
		}
	}
	return w, nil
}

// resume continues the chain where the file (or the newest rotated one) ends, cutting off a
// torn last line (the signer's start seal records the cut), and buffers the start seal, which
// the first Flush writes. A start seal that fails does not keep the sink from opening, as a
// full disk does not: the first Flush returns its error and the lines are chained meanwhile.
func (w *Writer) resume() error {
	torn, err := w.opts.Sign.Resume(w.opts.Path, w.opts.Path+".1")
	if err != nil {
		return err
	}
	if torn > 0 {
		if err := w.file.Truncate(w.size - torn); err != nil {
			return fmt.Errorf("cut the torn last line of %s: %w", w.opts.Path, err)
		}
		w.size -= torn
	}
	w.sealErr = w.sealLocked(sign.ReasonStart)
	return nil
}

// sealLocked appends a seal line to the buffer. A seal is not a record: it is in neither of
// Stats' counts.
func (w *Writer) sealLocked(reason string) error {
	buf, err := w.opts.Sign.Seal(w.buf, reason)
	if err != nil {
		return fmt.Errorf("seal %s: %w", w.opts.Path, err)
	}
	w.buf = buf
	return nil
}

// openFile opens Path for appending with the configured mode. O_NOFOLLOW and the
// regular-file check keep a root process from appending to, and chmod-ing, whatever a
// planted symlink or device node points at; O_NONBLOCK (no effect on regular files) keeps
// a planted FIFO from blocking the sensor in open.
//
// A file another user owns is never written into: that user could read it, or keep it open
// and read what follows. It is removed and created anew (the directory is the sensor's, or
// sticky and root's: checkOutputDir).
func (w *Writer) openFile() error {
	flags := os.O_APPEND | os.O_CREATE | os.O_WRONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	uid, err := owned.RemoveForeign(w.opts.Path)
	if err != nil {
		return err
	}
	if uid >= 0 {
		if w.opts.OnForeign != nil {
			w.opts.OnForeign(w.opts.Path, uid)
		}
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(w.opts.Path, flags, w.opts.Mode)
	if err != nil {
		return fmt.Errorf("open %s: %w", w.opts.Path, err)
	}
	fi, err := owned.RegularFile(f, w.opts.Path, w.opts.Mode)
	if err != nil {
		_ = f.Close() // nothing was written; refusing the file is the error to report
		return err
	}
	w.file, w.out, w.size = f, f, fi.Size()
	w.opened++
	w.keepReserve()
	return nil
}

// reservePath is where the reserve is kept.
func (w *Writer) reservePath() string {
	return filepath.Join(filepath.Dir(w.opts.Path), "."+filepath.Base(w.opts.Path)+".reserve")
}

// keepReserve makes sure the reserve file holds reserveBytes of the disk (allocated, not
// sparse). Without room for it the sink still works, with no reserve.
func (w *Writer) keepReserve() {
	f, err := os.OpenFile(w.reservePath(), os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return
	}
	if err := allocate(f, reserveBytes); err != nil {
		_ = os.Remove(w.reservePath()) // a partial reserve is no reserve
	}
}

// useReserve gives the reserve's space back to the file system; it reports whether there
// was one.
func (w *Writer) useReserve() bool {
	return os.Remove(w.reservePath()) == nil
}

// checkOutputDir refuses a directory another user could replace the output file in: one
// that is not the sensor's (its euid's), or that others may write into without the sticky
// bit (a sticky directory such as /tmp only lets a file's owner remove or rename it).
func checkOutputDir(dir string) error {
	if err := owned.Dir(dir); err != nil {
		return fmt.Errorf("output directory: %w: its owner could replace the file", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("output directory %s is writable by others (%v) and not sticky: another user could replace the file", dir, fi.Mode().Perm())
	}
	return nil
}

// Write encodes e with proto.AppendLine (proto.FitLine's line) straight into the buffer. The
// line reaches the file on Flush, when the buffer is full, or before a rotation. A record that
// cannot be encoded or written is counted in Stats' errors and the error is returned; that
// includes a record whose rotation failed, and the next Write tries the rotation again.
func (w *Writer) Write(e *proto.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := len(w.buf)
	buf, err := proto.AppendLine(w.buf, e)
	w.buf = buf[:start] // the line is taken back below once it may stay
	if err != nil {
		w.errors++
		return fmt.Errorf("jsonl write: %w", err)
	}
	return w.appendLocked(buf[start:], true)
}

// WriteLine is Write for a line the pipeline already encoded (sensor.LineSink).
func (w *Writer) WriteLine(_ *proto.Event, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.appendLocked(line, false)
}

// appendLocked adds one line (with its newline) to the buffer, flushing or rotating first when
// it would not fit. inPlace says the line already sits right after the buffered lines, in
// the buffer's spare capacity.
func (w *Writer) appendLocked(line []byte, inPlace bool) error {
	if w.closed {
		w.errors++
		return fmt.Errorf("jsonl write %s: %w", w.opts.Path, ErrClosed)
	}
	start := len(w.buf)
	n := int64(len(line))
	if w.opts.Sign != nil {
		n += int64(sign.Overhead)
	}
	pending := w.size + int64(start)
	rotate := w.file != nil && w.opts.MaxSizeBytes > 0 && pending > 0 && pending+n > w.opts.MaxSizeBytes
	moved := rotate || start+len(line) > bufferBytes
	if moved {
		if inPlace {
			// Rotating or flushing writes out the buffer, which must not include this
			// line yet: keep it aside meanwhile.
			w.line = append(w.line[:0], line...)
			line = w.line
		}
		var err error
		if rotate {
			err = w.rotateLocked()
		} else {
			err = w.flushLocked()
		}
		if err != nil {
			w.errors++
			return fmt.Errorf("jsonl write: %w", err)
		}
	}
	if w.out == nil {
		// A previous rotation could not reopen the file; try again rather than stay down.
		if err := w.openFile(); err != nil {
			w.errors++
			return fmt.Errorf("jsonl write: reopen: %w", err)
		}
	}
	start = len(w.buf) // after a flush or a rotation, 0
	if moved || !inPlace {
		w.buf = append(w.buf, line...)
	} else {
		w.buf = w.buf[:start+len(line)] // still in place right after the buffered lines
	}
	if w.opts.Sign != nil {
		var err error
		if w.buf, err = w.opts.Sign.Chain(w.buf, start); err != nil {
			w.buf = w.buf[:start]
			w.errors++
			return fmt.Errorf("jsonl write: %w", err)
		}
	}
	w.bufLines++
	return nil
}

// Flush writes the buffered lines to the file, where a reader (the SIEM agent tailing it)
// sees them. It does not fsync: visibility to readers is what the timer needs, and Close
// syncs once. Flush after Close is a no-op.
//
// With Options.Sign, Flush also writes the interval seal when it is due: the pipeline flushes
// on a timer, so the seal needs no goroutine of its own racing the writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	err := w.sealErr
	w.sealErr = nil
	if w.opts.Sign != nil && w.opts.Sign.Due() {
		err = errors.Join(err, w.sealLocked(sign.ReasonInterval))
	}
	if ferr := w.flushLocked(); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if err != nil {
		return fmt.Errorf("jsonl flush: %w", err)
	}
	return nil
}

// flushLocked writes the buffer in one call. On failure every buffered record is counted as
// an error and dropped, and a partly written line is cut off the file again, so the file never
// holds a split record and later lines are not glued to a fragment; the chain goes back to
// the file's last line, so the next line follows what the file holds.
func (w *Writer) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	lines := w.bufLines
	w.bufLines = 0
	n, err := w.out.Write(w.buf)
	if errors.Is(err, syscall.ENOSPC) && w.file != nil && w.useReserve() {
		// The disk is full: write into the reserve's space, once.
		var m int
		m, err = w.out.Write(w.buf[n:])
		n += m
	}
	w.buf = w.buf[:0]
	if err != nil {
		if w.opts.Sign != nil {
			w.opts.Sign.Rollback()
		}
		w.errors += lines
		err = fmt.Errorf("write %d records to %s: %w", lines, w.opts.Path, err)
		if n > 0 && w.file != nil {
			if terr := w.file.Truncate(w.size); terr != nil {
				err = fmt.Errorf("%w; cut partial line: %w", err, terr)
			}
		}
		return err
	}
	if w.opts.Sign != nil {
		w.opts.Sign.Commit()
	}
	w.size += int64(n)
	w.written += lines
	w.bytes += uint64(n)
	return nil
}

// rotateLocked flushes and closes the current file, shifts Path.i to Path.i+1 (the rename onto
// Path.MaxFiles replaces the oldest), moves Path to Path.1 and opens a new Path. It reopens
// Path even when a step fails, so writing goes on in the old file rather than stopping.
// A signed file is sealed first; a seal that fails does not stop the rotation (the file then
// ends unsealed, which vigil verify reports) and the next Flush returns its error.
func (w *Writer) rotateLocked() error {
	if w.opts.Sign != nil {
		if serr := w.sealLocked(sign.ReasonRotation); serr != nil {
			w.sealErr = errors.Join(w.sealErr, serr)
		}
	}
	err := w.flushLocked()
	if cerr := w.file.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", w.opts.Path, cerr)
	}
	w.file, w.out = nil, nil
	if err == nil {
		err = w.shiftFiles()
		if err == nil && w.opts.Sign != nil {
			w.opts.Sign.NewFile()
		}
	}
	if oerr := w.openFile(); oerr != nil {
		if err == nil {
			err = oerr
		} else {
			err = fmt.Errorf("%w; reopen: %w", err, oerr)
		}
	}
	if err != nil {
		return fmt.Errorf("rotate %s: %w", w.opts.Path, err)
	}
	return nil
}

// shiftFiles renames the rotated files one step older and Path to Path.1.
func (w *Writer) shiftFiles() error {
	name := func(i int) string {
		if i == 0 {
			return w.opts.Path
		}
		return w.opts.Path + "." + strconv.Itoa(i)
	}
	for i := w.opts.MaxFiles - 1; i >= 0; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rename %s: %w", name(i), err)
		}
	}
	return nil
}

// Close flushes, syncs and closes the file (standard output is flushed but left open).
// Writes after Close fail with ErrClosed and are counted.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.sealErr
	if w.opts.Sign != nil && w.out != nil {
		err = errors.Join(err, w.sealLocked(sign.ReasonStop))
	}
	err = errors.Join(err, w.flushLocked())
	if w.file != nil {
		if serr := w.file.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("sync %s: %w", w.opts.Path, serr)
		}
		if cerr := w.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", w.opts.Path, cerr)
		}
		w.file, w.out = nil, nil
	}
	if err != nil {
		return fmt.Errorf("jsonl close: %w", err)
	}
	return nil
}

// Scope tells a writer of compact lines (proto/compact) which file the next line goes to:
// generation changes whenever another file is opened (a rotation), and room is the bytes
// the current file takes before it is rotated (math.MaxInt64 when it never is). A line
// that does not fit in room begins the next file.
func (w *Writer) Scope() (generation uint64, room int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil || w.opts.MaxSizeBytes <= 0 {
		return w.opened, math.MaxInt64
	}
	return w.opened, w.opts.MaxSizeBytes - w.size - int64(len(w.buf))
}

// Stats returns how many records and bytes reached the output, and how many records did not
// (refused by the encoder, written after Close, or lost when a write to the file failed).
// Records still buffered are in neither count until the next Flush.
func (w *Writer) Stats() (written, bytes, errors uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written, w.bytes, w.errors
}
