package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

var _ sensor.LineSink = (*Writer)(nil)

func event(seq uint64) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2025, 11, 24, 8, 31, 7, int(seq), time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event", Category: "file", Dataset: "vigil.kernel", Sequence: seq},
		Process:   &proto.Process{Pid: 52398, Name: "go", Executable: "/usr/local/go/bin/go"},
		File:      &proto.File{Path: fmt.Sprintf("/home/alice/src/payments/pkg%d/file.go", seq), Access: "read"},
	}
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// readLines returns every line of path, checking each is one whole JSON object.
func readLines(t *testing.T, path string) []proto.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline: a record is split", path)
	}
	var out []proto.Event
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var e proto.Event
		if err := proto.UnmarshalJSON([]byte(l), &e); err != nil {
			t.Fatalf("%s: invalid line %q: %v", path, l, err)
		}
		out = append(out, e)
	}
	return out
}

func TestCreatesDirAndFileWithRestrictiveModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "log", "vigil", "events.jsonl")
	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := perm(t, path); got != 0o640 {
		t.Errorf("file mode %o, want 640", got)
	}
	if got := perm(t, filepath.Dir(path)); got != 0o750 {
		t.Errorf("directory mode %o, want 750", got)
	}
}

func TestTightensExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(`{"old":1}`+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil { // defeat the umask
		t.Fatal(err)
	}
	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := perm(t, path); got != 0o640 {
		t.Errorf("existing 0666 file left at %o, want 640", got)
	}
	if err := w.Write(event(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, path); len(lines) != 2 {
		t.Errorf("got %d lines, want the old one plus one appended", len(lines))
	}
}

func TestCustomMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := Open(Options{Path: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := perm(t, path); got != 0o600 {
		t.Errorf("mode %o, want 600", got)
	}
}

func TestRefusesSymlinkAndNonRegular(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "secret")
	if err := os.WriteFile(target, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "events.jsonl")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: link}); err == nil {
		t.Error("opened a symlink")
	}
	if got := perm(t, target); got != 0o600 {
		t.Errorf("symlink target chmod-ed to %o", got)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		testenv.Skipf(t, "mkfifo: %v", err)
	}
	// A blocking open of a FIFO would hang the sensor; bound the test instead of hanging.
	opened := make(chan error, 1)
	go func() {
		_, err := Open(Options{Path: fifo})
		opened <- err
	}()
	select {
	case err := <-opened:
		if err == nil {
			t.Error("opened a FIFO")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Open blocked on a FIFO for 10s")
	}
	if got := perm(t, fifo); got != 0o600 {
		t.Errorf("FIFO chmod-ed to %o", got)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {Path: "x", MaxSizeBytes: -1}, {Path: "x", MaxFiles: -1}} {
		if _, err := Open(o); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
}

func TestFlushMakesDataVisible(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range uint64(3) {
		if err := w.Write(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("Write flushed on its own (%d bytes); the pipeline flushes per batch", fi.Size())
	}
	if written, _, _ := w.Stats(); written != 0 {
		t.Errorf("written = %d before Flush, want 0", written)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("after Flush a reader sees %d lines, want 3", len(lines))
	}
	fi, _ := os.Stat(path)
	written, n, errs := w.Stats()
	if written != 3 || n != uint64(fi.Size()) || errs != 0 {
		t.Errorf("Stats = %d, %d, %d; want 3, %d, 0", written, n, errs, fi.Size())
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	const maxSize, maxFiles, records = 4096, 3, 400
	w, err := Open(Options{Path: path, MaxSizeBytes: maxSize, MaxFiles: maxFiles})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(records) {
		if err := w.Write(event(i)); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 { // flush at batch boundaries, as the pipeline does
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	all, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The hidden disk reserve (.events.jsonl.reserve) is not an output file.
	entries := slices.DeleteFunc(all, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") })
	if len(entries) != maxFiles+1 {
		t.Fatalf("got %d files, want the live file plus %d rotated", len(entries), maxFiles)
	}
	// Read oldest first: sequences must be contiguous with nothing lost or split between
	// the files that are kept, ending at the last record written.
	var seqs []uint64
	for i := maxFiles; i >= 0; i-- {
		p := path
		if i > 0 {
			p = fmt.Sprintf("%s.%d", path, i)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s is %d bytes, over %d", p, fi.Size(), maxSize)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("%s mode %o, want 640", p, fi.Mode().Perm())
		}
		for _, e := range readLines(t, p) {
			seqs = append(seqs, e.Event.Sequence)
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("gap between sequence %d and %d", seqs[i-1], seqs[i])
		}
	}
	if last := seqs[len(seqs)-1]; last != records-1 {
		t.Errorf("last record %d, want %d", last, records-1)
	}
	written, _, errs := w.Stats()
	if written != records || errs != 0 {
		t.Errorf("Stats written=%d errors=%d, want %d and 0", written, errs, records)
	}
}

// TestRotationKeepsEveryRecord checks the count across files when nothing is rotated away.
func TestRotationKeepsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	w, err := Open(Options{Path: path, MaxSizeBytes: 8192, MaxFiles: 50})
	if err != nil {
		t.Fatal(err)
	}
	const records = 500
	for i := range uint64(records) {
		if err := w.Write(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	if len(files) < 5 || len(files) > 51 {
		t.Fatalf("got %d files", len(files))
	}
	seen := map[uint64]bool{}
	for _, f := range files {
		for _, e := range readLines(t, f) {
			if seen[e.Event.Sequence] {
				t.Errorf("record %d written twice", e.Event.Sequence)
			}
			seen[e.Event.Sequence] = true
		}
	}
	if len(seen) != records {
		t.Errorf("found %d records across %d files, want %d", len(seen), len(files), records)
	}
}

func TestWriteAfterCloseIsCounted(t *testing.T) {
	w, err := Open(Options{Path: filepath.Join(t.TempDir(), "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(event(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("want ErrClosed, got %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
	if _, _, errs := w.Stats(); errs != 1 {
		t.Errorf("errors = %d, want 1", errs)
	}
}

func TestFailedFileIsCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(4) {
		if err := w.Write(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	w.file.Close() // the descriptor fails under the writer, as on a lost disk
	if err := w.Flush(); err == nil {
		t.Fatal("Flush on a failed file: want an error")
	}
	written, _, errs := w.Stats()
	if written != 0 || errs != 4 {
		t.Errorf("Stats written=%d errors=%d, want 0 and 4 (every buffered record lost)", written, errs)
	}
}

func TestUnencodableEventIsCounted(t *testing.T) {
	w, err := Open(Options{Path: filepath.Join(t.TempDir(), "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	bad := event(1)
	bad.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := w.Write(bad); err == nil {
		t.Error("want an error")
	}
	if _, _, errs := w.Stats(); errs != 1 {
		t.Errorf("errors = %d, want 1", errs)
	}
}

func TestLongRecordIsFitted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	e := event(1)
	e.Process.Args = []string{"sh", "-c", strings.Repeat("y", 200<<10)}
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) >= proto.MaxLineBytes {
			t.Errorf("line of %d bytes", len(sc.Bytes()))
		}
		if !json.Valid(sc.Bytes()) {
			t.Error("invalid JSON line")
		}
	}
}

// TestConcurrentFlush runs the pipeline's pattern, one writer and a flushing timer, under
// the race detector when enabled.
func TestConcurrentFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := Open(Options{Path: path, MaxSizeBytes: 16 << 10, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				if err := w.Flush(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	const records = 2000
	for i := range uint64(records) {
		if err := w.Write(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	total := 0
	for _, f := range files {
		total += len(readLines(t, f))
	}
	if total != records {
		t.Errorf("found %d records, want %d", total, records)
	}
}

func TestStdout(t *testing.T) {
	r, wp, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = wp
	w, err := Open(Options{Path: Stdout, MaxSizeBytes: 10})
	os.Stdout = orig
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		if err := w.Write(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wp.Close()
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		var e proto.Event
		if err := proto.UnmarshalJSON(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("got %d lines on stdout, want 3 (no rotation)", n)
	}
}

// An output file another user created is never written into (that user could read it, or
// keep it open and read what follows): it is replaced, and the caller told.
func TestForeignOutputFileIsReplaced(t *testing.T) {
	testenv.RequireRoot(t, "creating a file owned by another uid")
	path := filepath.Join(t.TempDir(), "events.jsonl")
	testenv.ForeignFile(t, path, "planted\n")
	planted, err := os.Open(path) // the other user's descriptor, opened beforehand
	if err != nil {
		t.Fatal(err)
	}
	defer planted.Close()
	var told []int
	w, err := Open(Options{Path: path, OnForeign: func(p string, uid int) {
		if p == path {
			told = append(told, uid)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&proto.Event{Event: proto.EventMeta{Action: proto.ActionOpen}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || told[0] != 65534 {
		t.Errorf("OnForeign told %v, want [65534]", told)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() || fi.Mode().Perm() != DefaultMode {
		t.Errorf("output owner %d mode %v, want uid %d %v", st.Uid, fi.Mode().Perm(), os.Geteuid(), DefaultMode)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("planted")) || !bytes.Contains(data, []byte(`"action":"open"`)) {
		t.Errorf("output %q: want only the sink's line", data)
	}
	if leaked, _ := io.ReadAll(planted); string(leaked) != "planted\n" {
		t.Errorf("the other user's descriptor read %q: want only its own old content", leaked)
	}
}

// The output directory must be the sensor's, and not writable by others unless sticky.
func TestOutputDirectoryOthersCouldReplaceIsRefused(t *testing.T) {
	testenv.RequireRoot(t, "creating a directory owned by another uid")
	base := t.TempDir()
	mk := func(name string, mode os.FileMode, uid int) string { return testenv.Dir(t, base, name, mode, uid) }
	for _, tc := range []struct {
		name string
		dir  string
		ok   bool
	}{
		{"the sensor's", mk("own", 0o750, 0), true},
		{"sticky and world-writable, like /tmp", mk("tmp", 0o777|os.ModeSticky, 0), true},
		{"world-writable, not sticky", mk("open", 0o777, 0), false},
		{"another user's", mk("theirs", 0o755, 65534), false},
	} {
		w, err := Open(Options{Path: filepath.Join(tc.dir, "events.jsonl")})
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
		if w != nil {
			w.Close()
		}
	}
}

// TestScope: the generation changes exactly when a line begins a new file, and room is what
// the file takes before that; a file that never rotates has unbounded room.
func TestScope(t *testing.T) {
	dir := t.TempDir()
	const maxSize = 4096
	w, err := Open(Options{Path: filepath.Join(dir, "events.jsonl"), MaxSizeBytes: maxSize, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	gen, room := w.Scope()
	if room != maxSize {
		t.Fatalf("empty file: room %d, want %d", room, maxSize)
	}
	rotations := 0
	for i := range uint64(100) {
		line, err := proto.AppendLine(nil, event(i))
		if err != nil {
			t.Fatal(err)
		}
		fits := int64(len(line)) <= room || room == maxSize
		if err := w.WriteLine(event(i), line); err != nil {
			t.Fatal(err)
		}
		g, r := w.Scope()
		if (g != gen) == fits {
			t.Fatalf("line %d (%d bytes, room %d): generation %d → %d", i, len(line), room, gen, g)
		}
		if g != gen {
			rotations++
			room = maxSize
		}
		if want := room - int64(len(line)); r != want {
			t.Fatalf("line %d: room %d, want %d", i, r, want)
		}
		gen, room = g, r
	}
	if rotations < 5 {
		t.Fatalf("%d rotations over 100 lines of a %d-byte file", rotations, maxSize)
	}
	out, err := Open(Options{Path: Stdout})
	if err != nil {
		t.Fatal(err)
	}
	if _, room := out.Scope(); room != math.MaxInt64 {
		t.Fatalf("standard output: room %d", room)
	}
}
