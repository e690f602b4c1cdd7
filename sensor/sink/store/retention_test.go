package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// integrityCheck fails t unless SQLite finds the database sound.
func integrityCheck(t testing.TB, s *Store) {
	t.Helper()
	rows := queryRows(t, s, "PRAGMA integrity_check")
	if len(rows) != 1 || rows[0]["integrity_check"] != "ok" {
		t.Fatalf("integrity_check = %v", rows)
	}
}

// The fixture's lines (November 2025) are past a 30-day bound on 10 January 2026; a workload
// of the day before is not. The old lines go, and with them their records and the rows only
// they used.
func TestRetentionAge(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	s := openTemp(t, Options{MaxAge: 30 * 24 * time.Hour, Now: func() time.Time { return now }})
	old := readFixture(t)
	w := newWorkload(3)
	w.t = now.Add(-24 * time.Hour)
	var recent []*proto.Event
	for range 2000 {
		recent = append(recent, w.next())
	}
	writeAll(t, s, append(append([]*proto.Event{}, old...), recent...))
	now = now.Add(retainEvery) // the age bound is checked every retainEvery
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}

	if n := queryInt(t, s, "SELECT count(*) FROM event_rows"); n != int64(len(recent)) {
		t.Errorf("%d events left, want the %d recent ones", n, len(recent))
	}
	if n := queryInt(t, s, "SELECT count(*) FROM events WHERE timestamp < '2025-12-11'"); n != 0 {
		t.Errorf("%d events older than the bound left", n)
	}
	// The fixture's sessions, prompts, tool calls and alert referred only to its lines.
	kept := map[string]int64{"sessions": 0, "prompts": 0, "alerts": 0}
	for _, e := range recent {
		switch e.Event.Action {
		case proto.ActionSession:
			kept["sessions"]++
		case proto.ActionAgentPrompt:
			kept["prompts"]++
		}
	}
	for table, want := range kept {
		if n := queryInt(t, s, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%d %s left, want the workload's %d", n, table, want)
		}
	}
	if n := queryInt(t, s, "SELECT count(*) FROM tool_calls WHERE ended_at < '2025-12-11'"); n != 0 {
		t.Errorf("%d old tool calls left", n)
	}
	for _, q := range []string{
		"SELECT count(*) FROM processes WHERE pid IN (1200, 1234, 4242)",
		"SELECT count(*) FROM paths WHERE path LIKE '/home/dev/app/%'",
		"SELECT count(*) FROM ids WHERE value = 'toolu_01HzQ8mP3vX7kR2nW5yT9bLc'",
	} {
		if n := queryInt(t, s, q); n != 0 {
			t.Errorf("%s = %d, want 0 (used only by evicted lines)", q, n)
		}
	}
	st := s.Stats()
	if st.Evicted != uint64(len(old)) || st.EvictedRecords != 3+5+1+1 {
		t.Errorf("stats = %+v, want %d events and 10 records (3 prompts, 5 tool calls, a session, an alert) evicted", st, len(old))
	}
	// The recent lines read back whole.
	if n := queryInt(t, s, "SELECT count(*) FROM events WHERE pid IS NULL AND action NOT IN ('lost')"); n != 0 {
		t.Errorf("%d recent lines lost their process", n)
	}
	integrityCheck(t, s)
}

// A size bound holds at every Flush: the database and its -wal file never exceed it, the
// oldest lines go first, and the file shrinks when the bound is lowered.
func TestRetentionSize(t *testing.T) {
	const bound = 4 << 20
	path := filepath.Join(t.TempDir(), "vigil.db")
	s := openTemp(t, Options{Path: path, MaxBytes: bound})
	w := newWorkload(5)
	var largest int64
	const lines, batch = 40000, 1000
	for range lines / batch {
		for range batch {
			if err := s.Write(w.next()); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		size, err := fileBytes(path)
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, size)
	}
	st := s.Stats()
	t.Logf("%d lines into a %d MiB bound: largest %.1f MiB, %d events evicted, %d left", lines, bound>>20,
		float64(largest)/(1<<20), st.Evicted, lines-st.Evicted)
	if largest > bound {
		t.Errorf("database and WAL reached %d bytes, over the %d bound", largest, bound)
	}
	if st.Evicted == 0 || st.Evicted >= lines {
		t.Fatalf("evicted %d of %d", st.Evicted, lines)
	}
	// The oldest went: what is left is one run of the newest lines.
	if got := queryRows(t, s, "SELECT min(seq) AS first, max(seq) AS last, count(*) AS n FROM events"); got[0]["last"] != int64(w.seq) ||
		got[0]["n"] != int64(lines-st.Evicted) || got[0]["first"] != int64(st.Evicted+1) {
		t.Errorf("left: %v, want lines %d to %d", got, st.Evicted+1, w.seq)
	}
	integrityCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A bound lowered in the configuration applies at the next start, and the file shrinks.
	s = openTemp(t, Options{Path: path, MaxBytes: bound / 2})
	size, err := fileBytes(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reopened with a %d MiB bound: %.1f MiB", bound>>21, float64(size)/(1<<20))
	if size > bound/2 {
		t.Errorf("after lowering the bound to %d the files hold %d bytes", bound/2, size)
	}
	integrityCheck(t, s)
}
