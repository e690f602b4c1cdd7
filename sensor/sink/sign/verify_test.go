package sign_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// clock is a settable clock for the signer's interval.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func event(seq uint64) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2025, 11, 24, 8, 31, 7, int(seq), time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event", Category: "file", Dataset: "vigil.kernel", Sequence: seq},
		Process:   &proto.Process{Pid: 52398, Name: "go", Executable: "/usr/local/go/bin/go"},
		File:      &proto.File{Path: fmt.Sprintf("/home/alice/src/payments/pkg%d/file.go", seq), Access: "read"},
	}
}

// logDir is a signed log being written in a test: the writer's directory and its keys.
type logDir struct {
	t      *testing.T
	dir    string
	keys   string
	clock  *clock
	w      *jsonl.Writer
	seq    uint64
	maxMB  int64
	events string
}

func newLog(t *testing.T, maxSize int64) *logDir {
	t.Helper()
	dir := t.TempDir()
	l := &logDir{t: t, dir: dir, keys: filepath.Join(dir, "keys"), events: filepath.Join(dir, "events.jsonl"),
		clock: &clock{t: time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)}, maxMB: maxSize}
	l.open()
	return l
}

// open opens the writer (again), as a sensor start does.
func (l *logDir) open() {
	l.t.Helper()
	s, err := sign.Open(sign.Options{KeyDir: l.keys, Name: "events.jsonl", Interval: time.Minute, Now: l.clock.now})
	if err != nil {
		l.t.Fatal(err)
	}
	if l.w, err = jsonl.Open(jsonl.Options{Path: l.events, MaxSizeBytes: l.maxMB, MaxFiles: 9, Sign: s}); err != nil {
		l.t.Fatal(err)
	}
}

// write writes n events and flushes.
func (l *logDir) write(n int) {
	l.t.Helper()
	for range n {
		l.seq++
		if err := l.w.Write(event(l.seq)); err != nil {
			l.t.Fatal(err)
		}
	}
	if err := l.w.Flush(); err != nil {
		l.t.Fatal(err)
	}
}

// interval lets the seal interval pass and flushes: the interval seal.
func (l *logDir) interval() {
	l.t.Helper()
	l.clock.add(time.Minute)
	if err := l.w.Flush(); err != nil {
		l.t.Fatal(err)
	}
}

func (l *logDir) close() {
	l.t.Helper()
	if err := l.w.Close(); err != nil {
		l.t.Fatal(err)
	}
}

// files are the log's files, oldest first.
func (l *logDir) files() []string {
	var out []string
	for i := 9; i >= 1; i-- {
		if p := fmt.Sprintf("%s.%d", l.events, i); exists(p) {
			out = append(out, p)
		}
	}
	return append(out, l.events)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// trust is the pin: the key log's first line, as an admin would keep it off the machine.
func (l *logDir) trust() sign.Trust {
	l.t.Helper()
	certs, err := sign.ReadKeyLog(sign.KeyLogPath(l.keys, "events.jsonl"))
	if err != nil {
		l.t.Fatal(err)
	}
	return sign.Trust{Root: certs[0].Key, Chain: &certs[0].Chain}
}

func verify(t *testing.T, files []string, trust sign.Trust) sign.Result {
	t.Helper()
	var srcs []sign.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, sign.Source{Name: filepath.Base(f), R: bytes.NewReader(b)})
	}
	r, err := sign.Verify(srcs, trust)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")[:bytes.Count(b, []byte("\n"))]
}

func put(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(ls, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sealedLog writes: 1 start seal, 2-6 events, 7 interval seal, 8-12 events, 13 stop seal.
func sealedLog(t *testing.T) *logDir {
	l := newLog(t, 0)
	l.write(5)
	l.interval()
	l.write(5)
	l.close()
	return l
}

func TestVerifyIntactLog(t *testing.T) {
	l := sealedLog(t)
	ls := lines(t, l.events)
	if len(ls) != 13 {
		t.Fatalf("%d lines, want 13 (3 seals, 10 events):\n%s", len(ls), strings.Join(ls, ""))
	}
	for i, n := range []int{1, 7, 13} {
		reason := []string{"start", "interval", "stop"}[i]
		if !strings.Contains(ls[n-1], `"dataset":"vigil.integrity","reason":"`+reason+`"`) {
			t.Errorf("line %d is not the %s seal: %s", n, reason, ls[n-1])
		}
	}
	// Every line, seals included, still decodes as an event for the readers of the file.
	for i, s := range ls {
		var e proto.Event
		if err := proto.UnmarshalJSON([]byte(s), &e); err != nil {
			t.Errorf("line %d no longer decodes: %v", i+1, err)
		}
	}
	r := verify(t, l.files(), l.trust())
	if !r.Intact() || r.Problem != nil || r.Seals != 3 || r.Lines != 13 || r.LastSealed != 13 || r.Restarts != 1 {
		t.Errorf("intact log: %+v, problem %v", r, r.Problem)
	}
}

func TestVerifyNamesTheTamperedLine(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(ls []string) []string
		line   int
		kind   sign.Kind
	}{
		{"a byte of an event edited", func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], "pkg3", "pkg9", 1)
			return ls
		}, 4, sign.Edited},
		{"an event's chain field edited", func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `"seq":4,`, `"seq":5,`, 1)
			return ls
		}, 4, sign.Edited},
		{"an event deleted", func(ls []string) []string { return append(ls[:3:3], ls[4:]...) }, 4, sign.Deleted},
		{"the line before a seal deleted", func(ls []string) []string { return append(ls[:5:5], ls[6:]...) }, 6, sign.Deleted},
		{"two events swapped", func(ls []string) []string {
			ls[3], ls[4] = ls[4], ls[3]
			return ls
		}, 4, sign.Reordered},
		{"an unchained line inserted", func(ls []string) []string {
			return append(ls[:4:4], append([]string{`{"event":{"action":"open"}}` + "\n"}, ls[4:]...)...)
		}, 5, sign.Inserted},
		{"an earlier line repeated", func(ls []string) []string {
			return append(ls[:4:4], append([]string{ls[1]}, ls[4:]...)...)
		}, 5, sign.Reordered},
		{"a seal's reason edited", func(ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"reason":"interval"`, `"reason":"rotation"`, 1)
			return ls
		}, 7, sign.BadSeal},
		{"a space added to a seal", func(ls []string) []string {
			ls[6] = strings.Replace(ls[6], `"epoch":`, `"epoch": `, 1)
			return ls
		}, 7, sign.BadSeal},
		{"a seal deleted", func(ls []string) []string { return append(ls[:6:6], ls[7:]...) }, 7, sign.Deleted},
		{"the first lines cut off", func(ls []string) []string { return ls[3:] }, 4, sign.Deleted},
	}
	l := sealedLog(t)
	orig := lines(t, l.events)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			put(t, path, c.tamper(append([]string(nil), orig...)))
			r := verify(t, []string{path}, l.trust())
			if r.Problem == nil {
				t.Fatalf("verify found nothing: %+v", r)
			}
			if r.Problem.At.Line != c.line || r.Problem.Kind != c.kind {
				t.Errorf("verify: %v; want line %d, %s", r.Problem, c.line, c.kind)
			}
		})
	}
}

func TestVerifyFirstLinesCutIsNamed(t *testing.T) {
	// Cutting lines 1-3 leaves a file that begins mid-chain, which a rotated-away history also
	// does: the seal's first_seq tells them apart.
	l := sealedLog(t)
	ls := lines(t, l.events)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	put(t, path, ls[3:])
	r := verify(t, []string{path}, l.trust())
	if r.Problem == nil || !strings.Contains(r.Problem.Detail, "cut off its start") {
		t.Errorf("verify: %v, want the start cut named", r.Problem)
	}
}

func TestVerifyReportsAnUnsealedTail(t *testing.T) {
	l := sealedLog(t)
	ls := lines(t, l.events)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	put(t, path, ls[:10]) // the last 2 events and the stop seal are gone: truncated
	r := verify(t, []string{path}, l.trust())
	if r.Problem != nil || r.Intact() || r.Unsealed != 3 || r.UnsealedFrom.Line != 8 || r.LastSealed != 7 {
		t.Errorf("truncated tail: %+v, problem %v; want no problem, 3 unsealed lines from line 8", r, r.Problem)
	}
	// The tail after the last seal can be rewritten undetected: that is what unsealed means.
	ls[8] = strings.Replace(ls[8], "pkg7", "pkg0", 1)
	put(t, path, ls[:9])
	if r := verify(t, []string{path}, l.trust()); r.Problem != nil || r.Unsealed != 2 {
		t.Errorf("an edited unsealed tail: %+v, %v", r, r.Problem)
	}
}

func TestVerifyRefusesAnotherKey(t *testing.T) {
	l := sealedLog(t)
	other := sealedLog(t) // the same events, written with another key: a replaced key
	r := verify(t, other.files(), l.trust())
	if r.Problem == nil || r.Problem.Kind != sign.KeyChain || r.Problem.At.Line != 1 {
		t.Errorf("a log signed with another key: %v, want key-chain at line 1", r.Problem)
	}
	// Pinning only the public key (no chain id): the signature fails instead.
	tr := l.trust()
	tr.Chain = nil
	r = verify(t, other.files(), tr)
	if r.Problem == nil || r.Problem.Kind != sign.BadSeal || r.Problem.At.Line != 1 {
		t.Errorf("another key, pinned by public key alone: %v, want bad-seal at line 1", r.Problem)
	}
}

func TestRestartContinuesTheChain(t *testing.T) {
	l := newLog(t, 0)
	l.write(3)
	l.close()
	l.open()
	l.write(3)
	l.close()
	r := verify(t, l.files(), l.trust())
	if !r.Intact() || r.Restarts != 2 || r.Lines != 3+3+4 || r.Last != 10 {
		t.Errorf("after a restart: %+v, problem %v", r, r.Problem)
	}
}

func TestTornLastLineIsReportedThenCut(t *testing.T) {
	l := newLog(t, 0)
	l.write(3)
	l.close()
	f, err := os.OpenFile(l.events, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const fragment = `{"@timestamp":"2025-11-24T08:31:07.0`
	if _, err := f.WriteString(fragment); err != nil { // the sensor died mid-write
		t.Fatal(err)
	}
	f.Close()
	r := verify(t, l.files(), l.trust())
	if r.Problem != nil || r.Torn != len(fragment) || r.TornAt.Line != 6 || r.Intact() {
		t.Fatalf("torn last line: %+v, problem %v", r, r.Problem)
	}
	l.open() // the restart cuts the fragment and says so in its start seal
	l.write(1)
	l.close()
	r = verify(t, l.files(), l.trust())
	if !r.Intact() || r.Cut != uint64(len(fragment)) {
		t.Errorf("after the restart: %+v, problem %v; want intact, %d bytes cut", r, r.Problem, len(fragment))
	}
}

func TestRotationContinuesTheChainAndSealsEveryFile(t *testing.T) {
	l := newLog(t, 4<<10)
	for range 6 {
		l.write(5)
	}
	l.close()
	files := l.files()
	if len(files) < 3 {
		t.Fatalf("%d files, want rotations: %v", len(files), files)
	}
	for _, f := range files[:len(files)-1] {
		ls := lines(t, f)
		if !strings.Contains(ls[len(ls)-1], `"reason":"rotation"`) {
			t.Errorf("%s does not end with a rotation seal: %s", f, ls[len(ls)-1])
		}
	}
	r := verify(t, files, l.trust())
	if !r.Intact() || r.Lines != 30+len(files)+1 {
		t.Fatalf("rotated log: %+v, problem %v", r, r.Problem)
	}

	// Across the boundary: the newer file's first line deleted, the older file's last event
	// edited, the files given out of order.
	older, newer := files[len(files)-2], files[len(files)-1]
	ls := lines(t, newer)
	put(t, newer, ls[1:])
	r = verify(t, files, l.trust())
	if r.Problem == nil || r.Problem.Kind != sign.Deleted || r.Problem.At != (sign.Position{File: filepath.Base(newer), Line: 1}) {
		t.Errorf("first line of %s deleted: %v", newer, r.Problem)
	}
	put(t, newer, ls)
	ols := lines(t, older)
	n := len(ols) - 1 // the last event, before the rotation seal
	ols[n-1] = strings.Replace(ols[n-1], `"read"`, `"write"`, 1)
	put(t, older, ols)
	r = verify(t, files, l.trust())
	if r.Problem == nil || r.Problem.Kind != sign.Edited || r.Problem.At != (sign.Position{File: filepath.Base(older), Line: n}) {
		t.Errorf("last event of %s edited: %v, want edited at line %d", older, r.Problem, n)
	}
}

func TestVerifyWithoutTheOldestFilesNeedsTheKeyLog(t *testing.T) {
	l := newLog(t, 4<<10)
	for range 6 {
		l.write(5)
		l.interval()
	}
	l.close()
	files := l.files()[2:] // the two oldest rotated away
	r := verify(t, files, l.trust())
	if r.Problem == nil || r.Problem.Kind != sign.KeyChain {
		t.Fatalf("without the files that vouched for later keys: %v, want key-chain", r.Problem)
	}
	certs, err := sign.ReadKeyLog(sign.KeyLogPath(l.keys, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tr := l.trust()
	tr.Certs = certs
	r = verify(t, files, tr)
	if !r.Intact() || !r.MidChain || r.CertsRefused() != 0 {
		t.Errorf("with the key log: %+v, problem %v", r, r.Problem)
	}
	// A key log entry forged with a key that is not vouched for is refused.
	forged := certs[len(certs)-1]
	forged.Epoch = 2
	tr.Certs = append(certs[:2:2], forged)
	r = verify(t, files, tr)
	if r.Problem == nil || r.CertsRefused() != 1 {
		t.Errorf("forged key log entry: %+v, problem %v; want it refused and the seal unverifiable", r, r.Problem)
	}
}

func TestKeyFilesAreRootsAlone(t *testing.T) {
	l := sealedLog(t)
	for path, want := range map[string]os.FileMode{
		l.keys:                                  sign.KeyDirMode,
		sign.KeyPath(l.keys, "events.jsonl"):    sign.KeyMode,
		sign.KeyLogPath(l.keys, "events.jsonl"): sign.KeyLogMode,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	// A key others could read is refused, not used.
	if err := os.Chmod(sign.KeyPath(l.keys, "events.jsonl"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Open(sign.Options{KeyDir: l.keys, Name: "events.jsonl"}); err == nil || !strings.Contains(err.Error(), "others may have read it") {
		t.Errorf("a 0644 key: %v, want it refused", err)
	}
	if err := os.Chmod(l.keys, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Open(sign.Options{KeyDir: l.keys, Name: "other.jsonl"}); err == nil || !strings.Contains(err.Error(), "others could read") {
		t.Errorf("a 0755 key directory: %v, want it refused", err)
	}
}

// A seal that cannot be written (here the key file's place is taken by a directory, so the new
// key cannot replace it) is an error of that Flush only: the key stays the current one, the
// lines go on being chained, the next interval tries again, and once it succeeds the file
// verifies, the failed attempt's key log entry included.
func TestFailedSealIsRetriedAnIntervalLater(t *testing.T) {
	l := newLog(t, 0)
	l.write(2)
	key := sign.KeyPath(l.keys, "events.jsonl")
	saved, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(key, "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	l.clock.add(time.Minute)
	if err := l.w.Flush(); err == nil || !strings.Contains(err.Error(), "evolve the key") {
		t.Fatalf("Flush with the key file's place taken: %v, want the seal's error", err)
	}
	l.write(2) // chained; no new attempt before another interval
	if err := os.RemoveAll(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, saved, sign.KeyMode); err != nil {
		t.Fatal(err)
	}
	l.interval()
	l.close()
	r := verify(t, l.files(), l.trust())
	if !r.Intact() || r.Seals != 3 || r.Lines != 7 {
		t.Errorf("after a failed seal: %+v, problem %v; want start, interval and stop seals over 4 events", r, r.Problem)
	}
}

// A key that is gone is replaced by a new chain; the old chain's key log is kept beside it,
// so the files the old key signed still verify.
func TestNewKeyKeepsTheOldKeyLog(t *testing.T) {
	l := sealedLog(t)
	old := l.trust()
	oldLog, err := sign.ReadKeyLog(sign.KeyLogPath(l.keys, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sign.KeyPath(l.keys, "events.jsonl")); err != nil {
		t.Fatal(err)
	}
	s, err := sign.Open(sign.Options{KeyDir: l.keys, Name: "events.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Created() {
		t.Fatal("no new key")
	}
	if pin, err := s.Pin(); err != nil || pin.Chain == *old.Chain {
		t.Errorf("new pin %v, %v: want a new chain", pin, err)
	}
	kept, err := sign.ReadKeyLog(sign.OldKeyLogPath(l.keys, "events.jsonl", *old.Chain))
	if err != nil {
		t.Fatalf("the old key log was not kept: %v", err)
	}
	if len(kept) != len(oldLog) || !kept[len(kept)-1].Key.Equal(oldLog[len(oldLog)-1].Key) {
		t.Errorf("kept key log has %d entries, want %d, the same", len(kept), len(oldLog))
	}
	old.Certs = kept
	if r := verify(t, l.files(), old); !r.Intact() {
		t.Errorf("the old files with the kept key log: %v", r.Problem)
	}
}
