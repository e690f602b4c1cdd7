package otlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// testBatch is a batch of n records numbered from first, as the exporter builds them.
func testBatch(t testing.TB, first, n int) *batch {
	b := &batch{}
	for i := first; i < first+n; i++ {
		ev := testEvent(i)
		b.add(appendRecord(nil, ev, lineOf(t, ev), recordID("spool", uint64(i)), 1))
	}
	return b
}

func appendBatch(t *testing.T, sp *spool, b *batch) {
	t.Helper()
	if err := sp.append(encodeBatch(b), b.count); err != nil {
		t.Fatal(err)
	}
}

// drain reads every batch left in the spool, committing each, and returns their record ids.
func drain(t *testing.T, sp *spool) []string {
	t.Helper()
	var ids []string
	for {
		p, n, lost, err := sp.peek()
		if err != nil || lost != 0 {
			t.Fatalf("peek: %v (lost %d)", err, lost)
		}
		if p == nil {
			return ids
		}
		b, err := decodeBatch(p)
		if err != nil {
			t.Fatal(err)
		}
		if b.count != n {
			t.Fatalf("frame says %d records, holds %d", n, b.count)
		}
		for _, lr := range batchRecords(t, b, 1) {
			ids = append(ids, otlptest.AttrMap(lr.GetAttributes())[AttrRecordID].(string))
		}
		if err := sp.commit(n); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolTornTail: a frame cut short by a crash, or damaged, is cut off at the next open and
// its records counted lost; the frames before it are read back, and appending goes on after
// them.
func TestSpoolTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(data []byte, last int) []byte // last is where the last frame starts
	}{
		{"payload cut", func(d []byte, last int) []byte { return d[:len(d)-7] }},
		{"header cut", func(d []byte, last int) []byte { return d[:last+5] }},
		{"payload flipped", func(d []byte, last int) []byte { d[len(d)-3] ^= 0xff; return d }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			sp, lost, err := openSpool(dir, 1<<20)
			if err != nil || lost != 0 {
				t.Fatal(err, lost)
			}
			appendBatch(t, sp, testBatch(t, 1, 3))
			appendBatch(t, sp, testBatch(t, 4, 2))
			_, before := sp.size()
			appendBatch(t, sp, testBatch(t, 6, 4))
			if err := sp.close(); err != nil {
				t.Fatal(err)
			}
			seg := sp.path(firstSegment)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seg, tc.cut(data, int(before)), 0o600); err != nil {
				t.Fatal(err)
			}
			sp, lost, err = openSpool(dir, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			wantLost := uint64(4)
			if tc.name == "header cut" {
				wantLost = 0 // the count went with the header
			}
			if sp.cut != int64(len(tc.cut(bytes.Clone(data), int(before))))-before {
				t.Errorf("cut %d bytes, want %d", sp.cut, int64(len(tc.cut(bytes.Clone(data), int(before))))-before)
			}
			if recs, bytes := sp.size(); lost != wantLost || recs != 5 || bytes != before {
				t.Fatalf("reopened: lost %d, %d records in %d bytes; want lost %d, 5 records in %d bytes", lost, recs, bytes, wantLost, before)
			}
			appendBatch(t, sp, testBatch(t, 10, 1))
			got := strings.Join(drain(t, sp), " ")
			if want := "spool-1 spool-2 spool-3 spool-4 spool-5 spool-10"; got != want {
				t.Errorf("read back %s, want %s", got, want)
			}
		})
	}
}

// TestSpoolCursor: what was sent before a restart is not sent again, across segments.
func TestSpoolCursor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp, _, err := openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// Enough batches for two segments.
	big := testBatch(t, 0, 500)
	for sp.segs == nil || len(sp.segs) < 2 {
		appendBatch(t, sp, big)
	}
	recs, _ := sp.size()
	p, n, _, err := sp.peek()
	if err != nil || p == nil {
		t.Fatal(err)
	}
	if err := sp.commit(n); err != nil {
		t.Fatal(err)
	}
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	sp, _, err = openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := sp.size(); got != recs-500 {
		t.Fatalf("after a restart the spool holds %d records, want %d (one batch of 500 sent)", got, recs-500)
	}
	if got := len(drain(t, sp)); uint64(got) != recs-500 {
		t.Fatalf("read back %d records, want %d", got, recs-500)
	}
}

// TestSpoolReusesRoom: a spool filled to its bound and sent entirely takes as much again: what
// was sent no longer counts against the bound.
func TestSpoolReusesRoom(t *testing.T) {
	sp, _, err := openSpool(filepath.Join(t.TempDir(), "spool"), 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	p := encodeBatch(testBatch(t, 1, 1))
	for round := range 3 {
		n := 0
		for sp.append(p, 1) == nil {
			n++
		}
		if n < 4 {
			t.Fatalf("round %d: the spool took %d batches", round, n)
		}
		if got := len(drain(t, sp)); got != n {
			t.Fatalf("round %d: read back %d of %d", round, got, n)
		}
		if recs, bytes := sp.size(); recs != 0 || bytes != 0 {
			t.Fatalf("round %d: all sent, the spool still holds %d records in %d bytes", round, recs, bytes)
		}
	}
}

// TestSpoolStaleCursor: a cursor left naming a segment deleted since (the sensor killed between
// the delete and the cursor's update) never makes a newer segment look sent.
func TestSpoolStaleCursor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp, _, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.writeCursor(firstSegment+7, 100); err != nil {
		t.Fatal(err)
	}
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	sp, _, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	appendBatch(t, sp, testBatch(t, 1, 2))
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	sp, _, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(drain(t, sp), " "); got != "spool-1 spool-2" {
		t.Errorf("after a restart with a stale cursor the spool holds %q, want spool-1 spool-2", got)
	}
}

// TestSpoolRefuses: a spool directory or segment that is a symlink is refused, never followed.
func TestSpoolRefuses(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openSpool(link, 1<<20); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("spool at a symlink: %v, want it refused", err)
	}
	dir := filepath.Join(base, "spool")
	sp, _, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, sp.path(firstSegment)); err != nil {
		t.Fatal(err)
	}
	p := encodeBatch(testBatch(t, 1, 1))
	if err := sp.append(p, 1); err == nil {
		t.Error("append through a symlinked segment succeeded")
	}
	if data, _ := os.ReadFile(target); len(data) != 0 {
		t.Error("the symlink's target was written")
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != spoolDirMode {
		t.Errorf("%s: mode %v (%v), want %v", dir, fi.Mode().Perm(), err, spoolDirMode)
	}
}

// TestSpoolFileModes: segments are 0600 whatever the umask.
func TestSpoolFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	sp, _, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	appendBatch(t, sp, testBatch(t, 1, 1))
	fi, err := os.Stat(sp.path(firstSegment))
	if err != nil || fi.Mode().Perm() != spoolFileMode {
		t.Fatalf("segment mode %v (%v), want %v", fi.Mode().Perm(), err, spoolFileMode)
	}
}

// realFrames are frames as the spool writes them, for the decoder's table and fuzz seeds.
func realFrames(t testing.TB) [][]byte {
	var out [][]byte
	for _, n := range []int{1, 3} {
		out = append(out, appendFrame(nil, encodeBatch(testBatch(t, 1, n)), uint32(n)))
	}
	return out
}

func TestDecodeFrame(t *testing.T) {
	frames := realFrames(t)
	whole := frames[1]
	flipped := bytes.Clone(whole)
	flipped[frameHeader+2] ^= 1
	huge := bytes.Clone(whole)
	huge[3] = 0x7f
	for _, tc := range []struct {
		name    string
		data    []byte
		want    error
		count   uint32
		records int
	}{
		{"whole", whole, nil, 3, 3},
		{"two frames: the first", append(bytes.Clone(frames[0]), whole...), nil, 1, 1},
		{"header cut", whole[:7], errTorn, 0, 0},
		{"payload cut", whole[:len(whole)-1], errTorn, 3, 0},
		{"payload flipped", flipped, errCorrupt, 3, 0},
		{"length past any batch", huge, errCorrupt, 0, 0},
		{"empty", nil, errTorn, 0, 0},
	} {
		payload, count, n, err := decodeFrame(tc.data)
		if !errors.Is(err, tc.want) || count != tc.count {
			t.Errorf("%s: count %d, err %v; want %d, %v", tc.name, count, err, tc.count, tc.want)
			continue
		}
		if err != nil {
			continue
		}
		b, err := decodeBatch(payload)
		if err != nil || b.count != tc.records || n > len(tc.data) {
			t.Errorf("%s: batch %v (%v), length %d", tc.name, b, err, n)
		}
	}
}

// FuzzDecodeFrame: spool files are read back from disk, outside input: whatever they hold,
// the decoder must not panic, must not claim more bytes than it was given, and a frame it
// accepts must hold a batch that decodes or fails cleanly.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range realFrames(f) {
		f.Add(fr)
		f.Add(fr[:len(fr)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for len(data) > 0 {
			payload, _, n, err := decodeFrame(data)
			if err != nil {
				return
			}
			if n < frameHeader || n > len(data) || len(payload) != n-frameHeader {
				t.Fatalf("frame of %d bytes from %d bytes, payload %d", n, len(data), len(payload))
			}
			if b, err := decodeBatch(payload); err == nil {
				// What the sender does with a batch read back: a request with the attempt
				// after the batch's, each record's bytes as they were, the attempt last.
				req := requestBytes(envelope{}, b, b.attempt+1)
				n := 0
				for r := range b.each() {
					if !bytes.Contains(req, r) {
						t.Fatalf("record %d is not in the request", n)
					}
					n++
				}
				if n != b.count {
					t.Fatalf("%d records, the batch says %d", n, b.count)
				}
				var jc jsonCache // http/json: converted by hand, or left to protojson
				if j, ok := jc.requestJSON(nil, req); ok && !json.Valid(j) {
					t.Fatalf("converted to invalid JSON: %s", j)
				}
			}
			data = data[n:]
		}
	})
}
