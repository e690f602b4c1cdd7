package holdjournal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

var _ sensor.HoldJournal = (*Journal)(nil)

// openEvent is a kernel open of /work/f<n>, recognisable after a round trip.
func openEvent(n int) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2026, 12, 4, 22, 0, 0, n, time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event", Category: "file", Dataset: "vigil.kernel"},
		Process:   &proto.Process{Pid: 4242, EntityID: "e1", Name: "cat", Executable: "/usr/bin/cat", Args: []string{"cat", "f"}},
		File:      &proto.File{Path: fmt.Sprintf("/work/f%d", n), Access: "read"},
		Vigil:     proto.Vigil{Root: &proto.Root{Pid: 4200, EntityID: "r1"}, Source: "ebpf"},
	}
}

func mustOpen(t *testing.T, dir string) *Journal {
	t.Helper()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// paths lists the file.path of events.
func paths(events []*proto.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.File.Path)
	}
	return out
}

func wantPaths(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("/work/f%d", n))
	}
	return out
}

// segments lists the segment files in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// kill drops a journal the way SIGKILL does: its files stay as they are and its lock goes.
func kill(j *Journal) {
	j.lock.Close()
}

func TestKilledRunIsRecoveredAfterItsWatermark(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir)
	for n := 1; n <= 10; n++ {
		if err := j.Add(openEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Commit(4); err != nil {
		t.Fatal(err)
	}
	kill(j)

	next := mustOpen(t, dir)
	got, lost := next.Recovered()
	if !slices.Equal(paths(got), wantPaths(5, 10)) || lost != 0 {
		t.Fatalf("recovered %v (lost %d), want f5..f10 and none lost", paths(got), lost)
	}
	if got[0].Process.Args[1] != "f" || got[0].Vigil.Root.Pid != 4200 || !got[0].Timestamp.Equal(openEvent(5).Timestamp) {
		t.Errorf("recovered event differs from the one added: %+v", got[0])
	}
	if err := next.ForgetRecovered(); err != nil {
		t.Fatal(err)
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if left := segments(t, dir); len(left) != 0 {
		t.Errorf("segments left after recovery and a clean close: %v", left)
	}
	if again := mustOpen(t, dir); len(again.recovered) != 0 {
		t.Errorf("a third start recovered %d events again", len(again.recovered))
	}
}

func TestEventsAddedButNeverCommittedAreRecovered(t *testing.T) {
	// Add buffers; Commit is what writes. What a sensor killed before any Commit added is
	// in its memory only, and nothing can be recovered of it: that is the pipeline's queue
	// between two flushes. After a Commit(0) every event added before it is on disk.
	dir := t.TempDir()
	j := mustOpen(t, dir)
	for n := 1; n <= 3; n++ {
		if err := j.Add(openEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Commit(0); err != nil {
		t.Fatal(err)
	}
	kill(j)
	got, lost := mustOpen(t, dir).Recovered()
	if !slices.Equal(paths(got), wantPaths(1, 3)) || lost != 0 {
		t.Fatalf("recovered %v (lost %d), want f1..f3", paths(got), lost)
	}
}

func TestCleanCloseLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir)
	for n := 1; n <= 5; n++ {
		if err := j.Add(openEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Commit(5); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if left := segments(t, dir); len(left) != 0 {
		t.Errorf("segments left after a clean close: %v", left)
	}
}

func TestCloseWithUnwrittenEventsKeepsThem(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir)
	for n := 1; n <= 5; n++ {
		if err := j.Add(openEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Commit(2); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := mustOpen(t, dir).Recovered()
	if !slices.Equal(paths(got), wantPaths(3, 5)) {
		t.Fatalf("recovered %v, want f3..f5", paths(got))
	}
}

func TestWrittenSegmentsAreRemovedAndLaterOnesRecovered(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir)
	// Events with 64 KiB of args: a segment closes every ~64 of them.
	big := strings.Repeat("x", 64<<10-512)
	n := 0
	add := func(count int) {
		for range count {
			n++
			e := openEvent(n)
			e.Process.Args = []string{"cat", big}
			if err := j.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(200)
	if err := j.Commit(0); err != nil {
		t.Fatal(err)
	}
	add(100)
	if err := j.Commit(0); err != nil {
		t.Fatal(err)
	}
	before := len(segments(t, dir))
	if before < 2 {
		t.Fatalf("%d segments for 300 events of 64 KiB; want several", before)
	}
	if err := j.Commit(250); err != nil {
		t.Fatal(err)
	}
	after := len(segments(t, dir))
	if after >= before {
		t.Errorf("%d segments after 250 of 300 events were written, %d before: written segments are kept", after, before)
	}
	kill(j)
	got, lost := mustOpen(t, dir).Recovered()
	if !slices.Equal(paths(got), wantPaths(251, 300)) || lost != 0 {
		t.Fatalf("recovered %d events from %v (lost %d), want f251..f300", len(got), paths(got)[:min(len(got), 3)], lost)
	}
}

func TestLineCutByTheKillIsCounted(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir)
	for n := 1; n <= 3; n++ {
		if err := j.Add(openEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Commit(1); err != nil {
		t.Fatal(err)
	}
	// The kill interrupted the write of a fourth event's line.
	line, err := proto.AppendLine(nil, openEvent(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.cur.Write(line[:len(line)/2]); err != nil {
		t.Fatal(err)
	}
	kill(j)
	got, lost := mustOpen(t, dir).Recovered()
	if !slices.Equal(paths(got), wantPaths(2, 3)) || lost != 1 {
		t.Fatalf("recovered %v, lost %d; want f2, f3 and 1 lost", paths(got), lost)
	}
}

func TestRunsAreRecoveredInOrder(t *testing.T) {
	dir := t.TempDir()
	for run := range 2 {
		j := mustOpen(t, dir)
		for n := 1; n <= 2; n++ {
			if err := j.Add(openEvent(run*10 + n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Commit(0); err != nil {
			t.Fatal(err)
		}
		kill(j)
		// The second run must not see (or need) the first's files gone: it dies too.
		time.Sleep(time.Millisecond)
	}
	got, _ := mustOpen(t, dir).Recovered()
	if want := []string{"/work/f1", "/work/f2", "/work/f11", "/work/f12"}; !slices.Equal(paths(got), want) {
		t.Fatalf("recovered %v, want %v", paths(got), want)
	}
}

func TestSecondSensorIsRefused(t *testing.T) {
	dir := t.TempDir()
	j := mustOpen(t, dir)
	defer j.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "another sensor") {
		t.Fatalf("second Open of a held journal: %v, want it refused", err)
	}
}

func TestJournalFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hold")
	j := mustOpen(t, dir)
	if err := j.Add(openEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := j.Commit(0); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("journal directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	for _, p := range segments(t, dir) {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("segment %s mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
}

func TestOpenNarrowsADirectoryOthersCanRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hold")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	j := mustOpen(t, dir)
	defer j.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("journal directory mode %v (%v), want it narrowed to 0700", fi.Mode().Perm(), err)
	}
}

func TestOpenRefusesAForeignDirectory(t *testing.T) {
	testenv.RequireRoot(t, "give the directory to another user")
	dir := testenv.Dir(t, t.TempDir(), "hold", 0o700, testenv.Nobody)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Open of a directory uid 65534 owns: %v, want it refused", err)
	}
}

func TestCommitBeyondAddedIsAnError(t *testing.T) {
	j := mustOpen(t, t.TempDir())
	defer j.Close()
	if err := j.Add(openEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := j.Commit(2); err == nil {
		t.Fatal("Commit(2) after one Add succeeded")
	}
}

func TestUnwrittenTable(t *testing.T) {
	line := func(n int) string {
		b, err := proto.AppendLine(nil, openEvent(n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name      string
		data      string
		first     uint64
		watermark uint64
		want      []string
		lost      uint64
	}{
		{"empty", "", 1, 0, nil, 0},
		{"all after the watermark", line(1) + line(2), 1, 0, wantPaths(1, 2), 0},
		{"watermark inside", line(1) + "w 1\n" + line(2), 1, 1, wantPaths(2, 2), 0},
		{"segment starting later", line(7) + line(8), 7, 7, wantPaths(8, 8), 0},
		{"cut last line", line(1) + line(2)[:20], 1, 0, wantPaths(1, 1), 1},
		{"cut watermark", line(1) + "w ", 1, 0, wantPaths(1, 1), 0},
		{"garbage line", line(1) + "not json\n" + line(3), 1, 0, []string{"/work/f1", "/work/f3"}, 1},
		{"empty object", "{}\n" + line(2), 1, 0, wantPaths(2, 2), 1},
		{"everything written", line(1) + line(2) + "w 2\n", 1, 2, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, lost := unwritten([]byte(tc.data), tc.first, tc.watermark)
			if !slices.Equal(paths(got), tc.want) || lost != tc.lost {
				t.Errorf("unwritten = %v, lost %d; want %v, lost %d", paths(got), lost, tc.want, tc.lost)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		run   string
		first uint64
		ok    bool
	}{
		{"187e0b3c2d4a5f60-0000000000000001.hold", "187e0b3c2d4a5f60", 1, true},
		{"187e0b3c2d4a5f60-00000000000000ff.hold", "187e0b3c2d4a5f60", 255, true},
		{"187e0b3c2d4a5f60-0000000000000000.hold", "", 0, false}, // numbers start at 1
		{"187e0b3c2d4a5f60-0000000000000001.txt", "", 0, false},
		{".lock", "", 0, false},
		{"zz7e0b3c2d4a5f60-0000000000000001.hold", "", 0, false},
		{"187e0b3c2d4a5f60-1.hold", "", 0, false},
	} {
		run, first, ok := parseName(tc.name)
		if run != tc.run || first != tc.first || ok != tc.ok {
			t.Errorf("parseName(%q) = %q, %d, %v; want %q, %d, %v", tc.name, run, first, ok, tc.run, tc.first, tc.ok)
		}
	}
}

// FuzzUnwritten feeds arbitrary segment contents to the recovery reader: it must neither
// panic nor return more events than the segment has lines.
func FuzzUnwritten(f *testing.F) {
	line, err := proto.AppendLine(nil, openEvent(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line, uint64(1), uint64(0))
	f.Add(append(append([]byte{}, line...), "w 1\n"...), uint64(1), uint64(1))
	f.Add(line[:len(line)/2], uint64(1), uint64(0))
	f.Add([]byte(strings.Repeat("[", 10000)+"\n"), uint64(1), uint64(0))
	f.Add([]byte("w 18446744073709551615\n{}\n"), uint64(18446744073709551615), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, first, watermark uint64) {
		got, lost := unwritten(data, first, watermark)
		lines := uint64(strings.Count(string(data), "\n")) + 1
		if uint64(len(got))+lost > lines {
			t.Fatalf("%d events and %d lost from %d lines", len(got), lost, lines)
		}
		lastWatermark(data)
	})
}
