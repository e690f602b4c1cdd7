package holdjournal

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vigil-sensor/vigil/proto"
)

const (
	// maxRecovered bounds the events one start recovers; the rest are counted as lost. A
	// sensor holds at most correlate.max_held events at once (8192 by default).
	maxRecovered = 1 << 16
	// maxSegmentRead bounds what is read of one segment: Add closes segments at
	// segmentBytes, so more is not a segment this package wrote.
	maxSegmentRead = 4 * segmentBytes
)

// oldSegment is a segment a dead run left.
type oldSegment struct {
	path  string
	first uint64
	data  []byte
}

// recover reads the segments earlier runs left, run by run, and keeps the events each run
// added after its last watermark.
func (j *Journal) recover() error {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("list segments: %w", err)
	}
	runs := map[string][]oldSegment{}
	for _, d := range entries {
		run, first, ok := parseName(d.Name())
		if !ok || !d.Type().IsRegular() {
			continue
		}
		path := filepath.Join(j.dir, d.Name())
		data, err := readSegment(path)
		if err != nil {
			return err
		}
		runs[run] = append(runs[run], oldSegment{path: path, first: first, data: data})
		j.oldFiles = append(j.oldFiles, path)
	}
	names := make([]string, 0, len(runs))
	for run := range runs {
		names = append(names, run)
	}
	slices.Sort(names)
	for _, run := range names {
		segs := runs[run]
		slices.SortFunc(segs, func(a, b oldSegment) int { return cmp.Compare(a.first, b.first) })
		var watermark uint64
		for _, s := range segs {
			watermark = max(watermark, lastWatermark(s.data))
		}
		for _, s := range segs {
			events, lost := unwritten(s.data, s.first, watermark)
			j.recoveredLost += lost
			for _, e := range events {
				if len(j.recovered) >= maxRecovered {
					j.recoveredLost++
					continue
				}
				j.recovered = append(j.recovered, e)
			}
		}
	}
	return nil
}

// readSegment reads at most maxSegmentRead bytes of one segment, refusing a symlink.
func readSegment(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSegmentRead))
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", path, err)
	}
	return data, nil
}

// parseName splits a segment's file name into its run and first event number.
func parseName(name string) (run string, first uint64, ok bool) {
	base, isSegment := strings.CutSuffix(name, suffix)
	run, firstHex, dash := strings.Cut(base, "-")
	if !isSegment || !dash || len(run) != 16 || len(firstHex) != 16 {
		return "", 0, false
	}
	if _, err := strconv.ParseUint(run, 16, 64); err != nil {
		return "", 0, false
	}
	first, err := strconv.ParseUint(firstHex, 16, 64)
	if err != nil || first == 0 {
		return "", 0, false
	}
	return run, first, true
}

// lastWatermark is the highest watermark in a segment's complete lines.
func lastWatermark(data []byte) uint64 {
	var w uint64
	for line := range completeLines(data) {
		if n, ok := isWatermark(line); ok {
			w = max(w, n)
		}
	}
	return w
}

// unwritten decodes the events of a segment whose first event is number first that come
// after watermark. It returns them and how many lines it could not read: a last line cut off
// by the kill (unless it was a watermark), or a line that is not a readable event.
func unwritten(data []byte, first, watermark uint64) ([]*proto.Event, uint64) {
	var events []*proto.Event
	var lost uint64
	n := first
	for line := range completeLines(data) {
		if _, ok := isWatermark(line); ok {
			continue
		}
		number := n
		n++
		if number <= watermark {
			continue
		}
		var e proto.Event
		if err := proto.UnmarshalJSON(line, &e); err != nil || e.Event.Action == "" {
			lost++
			continue
		}
		events = append(events, &e)
	}
	if cut := cutTail(data); len(cut) > 0 && !bytes.HasPrefix(cut, []byte("w ")) && n > watermark {
		lost++
	}
	return events, lost
}

// completeLines yields the newline-terminated lines of data, without their newline.
func completeLines(data []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				return
			}
			if !yield(data[:i]) {
				return
			}
			data = data[i+1:]
		}
	}
}

// cutTail is what follows the last newline: a line the writer did not finish.
func cutTail(data []byte) []byte {
	return data[bytes.LastIndexByte(data, '\n')+1:]
}
