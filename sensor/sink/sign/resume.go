package sign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/vigil-sensor/vigil/proto"
)

// maxLine is the longest line a signed file holds: proto.MaxLineBytes, the chain field and the
// newline.
const maxLine = proto.MaxLineBytes + Overhead + 1

// Resume finds where the chain stopped, so that it survives restarts and rotation: the last
// line of path, or of rotated (the newest rotated file) when path is empty or absent. A last
// line without its newline (the sensor died mid-write) is torn: Resume returns its length for
// the caller to cut off path, and the next seal (the start seal) records the cut, so that
// `vigil verify` explains the missing bytes instead of meeting half a line. A last line
// without a chain field (the file was written before signing was turned on) starts a new
// chain.
func (s *Signer) Resume(path, rotated string) (torn int64, err error) {
	tail, size, err := readTail(path)
	if err != nil {
		return 0, fmt.Errorf("resume chain: %w", err)
	}
	if i := bytes.LastIndexByte(tail, '\n'); i < len(tail)-1 {
		torn = int64(len(tail) - 1 - i)
		tail = tail[:i+1]
	}
	if size-torn > 0 {
		first, err := readHead(path)
		if err != nil {
			return 0, fmt.Errorf("resume chain: %w", err)
		}
		if l, ok := ParseLink(first); ok {
			s.first = l.Seq
		}
	}
	if size-torn == 0 && rotated != "" {
		// Nothing whole in the current file: the chain ended in the newest rotated one.
		if tail, _, err = readTail(rotated); err != nil {
			return 0, fmt.Errorf("resume chain: %w", err)
		}
		tail = tail[:bytes.LastIndexByte(tail, '\n')+1]
	}
	if len(tail) > 0 {
		last := tail[:len(tail)-1]
		last = last[bytes.LastIndexByte(last, '\n')+1:]
		if l, ok := ParseLink(last); ok {
			s.head = Head{Seq: l.Seq, Hash: hashLine(last)}
		}
	}
	s.cut = uint64(torn)
	s.Commit()
	return torn, nil
}

// openRegular opens path for reading, refusing a symlink or anything but a regular file; an
// absent file is (nil, nil).
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	return f, fi, nil
}

// readTail returns the last two lines' worth of path (at most 2*maxLine bytes) and its size.
func readTail(path string) ([]byte, int64, error) {
	f, fi, err := openRegular(path)
	if f == nil {
		return nil, 0, err
	}
	defer f.Close()
	n := min(fi.Size(), int64(2*maxLine))
	b := make([]byte, n)
	if _, err := f.ReadAt(b, fi.Size()-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return b, fi.Size(), nil
}

// readHead returns the first line of path, without its newline.
func readHead(path string) ([]byte, error) {
	f, _, err := openRegular(path)
	if f == nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, maxLine)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b = b[:n]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return b, nil
}
