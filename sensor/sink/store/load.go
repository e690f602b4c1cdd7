package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
	"github.com/vigil-sensor/vigil/proto/ocsf"
)

// maxLoadLine bounds a line Load reads. Vigil writes lines under proto.MaxLineBytes (60 KiB);
// a longer one was not written by it and is skipped without being held in memory whole.
const maxLoadLine = 1 << 20

// LoadResult says what Load read.
type LoadResult struct {
	// Lines counts the lines that were not blank; Loaded those written to the store;
	// Malformed those skipped because they did not decode. The seal lines of a signed file
	// (dataset vigil.integrity) are neither: they describe the file, not an event.
	Lines, Loaded, Malformed int
	// FirstMalformed is the line number of the first skipped line, and FirstErr why.
	FirstMalformed int
	FirstErr       error
}

// Load writes the JSONL records read from r (a file `vigil run` wrote, on this machine or
// another) into the store, as the sink writes them when the sensor runs: the same rows, the
// same late bindings. Files are loaded one after the other into one store; rotated files of a
// run (events.jsonl.2, .1, then events.jsonl) must come oldest first for a binding record to
// find the line it binds. Lines that do not decode are skipped and counted; an error is
// returned only when reading or writing fails, or at the first OCSF line (ocsf.ErrNotNative):
// a file written with output.format ocsf is refused rather than read as empty records.
func (s *Store) Load(r io.Reader) (LoadResult, error) {
	var res LoadResult
	restorer := compact.NewRestorer(0)
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		line, long, err := readLine(br, buf[:0])
		buf = line
		if err != nil && !errors.Is(err, io.EOF) {
			return res, fmt.Errorf("load: read line %d: %w", n, err)
		}
		if long || len(bytes.TrimSpace(line)) > 0 {
			if err := ocsf.CheckNative(line); err != nil {
				return res, fmt.Errorf("load: line %d: %w", n, err)
			}
			res.Lines++
			var e proto.Event
			derr := errLineTooLong
			if !long {
				// A compact line gets its process's context back from the line that stated it.
				if derr = proto.UnmarshalJSON(line, &e); derr == nil {
					derr = restorer.Restore(&e)
				}
			}
			if derr != nil {
				if res.Malformed == 0 {
					res.FirstMalformed, res.FirstErr = n, derr
				}
				res.Malformed++
			} else if e.Event.Dataset == proto.DatasetIntegrity {
				// a seal line: nothing to load
			} else if werr := s.Write(&e); werr != nil {
				return res, fmt.Errorf("load: line %d: %w", n, werr)
			} else {
				res.Loaded++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if err := s.Flush(); err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	return res, nil
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLoadLine)

// readLine appends the next line of br to buf, without its newline. A line longer than
// maxLoadLine is read to its end but not kept: long says so.
func readLine(br *bufio.Reader, buf []byte) (line []byte, long bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(buf)+len(chunk) > maxLoadLine+1 {
				long, buf = true, buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(buf, []byte("\n")), long, err
	}
}
