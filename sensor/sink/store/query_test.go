package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// loadedReader is a Reader on the fixture loaded into memory.
func loadedReader(t *testing.T) *Reader {
	t.Helper()
	s, err := Open(Options{Path: Memory})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, readFixture(t))
	r, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func readerRows(t *testing.T, r *Reader, q string) ([]map[string]any, error) {
	t.Helper()
	rows, err := r.Query(context.Background(), q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanMaps(t, rows), nil
}

func TestReaderRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside.db")
	for _, r := range map[string]*Reader{"memory": loadedReader(t), "file": fileReader(t)} {
		before, err := readerRows(t, r, "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM event_rows) AS lines")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ sql, want string }{
			{"INSERT INTO runs (started_at) VALUES ('x')", "INSERT into runs refused"},
			{"UPDATE event_rows SET action = 'x'", "UPDATE of event_rows refused"},
			{"DELETE FROM sessions", "DELETE from sessions refused"},
			{"REPLACE INTO ids (value) VALUES ('x')", "INSERT into ids refused"},
			{"ATTACH DATABASE '" + outside + "' AS x", "ATTACH refused"},
			{"DETACH DATABASE main", "DETACH refused"},
			{"VACUUM INTO '" + outside + "'", "refused"},
			{"PRAGMA writable_schema = 1", "PRAGMA writable_schema = 1 refused"},
			{"PRAGMA query_only = 0", "PRAGMA query_only = 0 refused"},
			{"PRAGMA journal_mode = DELETE", "PRAGMA journal_mode = DELETE refused"},
			{"PRAGMA user_version = 7", "PRAGMA user_version = 7 refused"},
			{"CREATE TEMP TABLE t (x)", "changing the schema (CREATE, DROP, ALTER, ANALYZE) refused"},
			{"CREATE VIEW v AS SELECT 1", "changing the schema"},
			{"DROP TABLE runs", "changing the schema"},
			{"ALTER TABLE runs ADD COLUMN x", "ALTER TABLE"},
			{"BEGIN", "BEGIN (transactions) refused"},
			{"SAVEPOINT a", "SAVEPOINT refused"},
			{"ANALYZE", "refused"},
			{"REINDEX", "REINDEX refused"},
			{"SELECT load_extension('/tmp/x.so')", "load_extension refused"},
			{"WITH x AS (SELECT 1) DELETE FROM runs", "DELETE from runs refused"},
		} {
			_, err := readerRows(t, r, tc.sql)
			if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want ErrReadOnly saying %q", tc.sql, err, tc.want)
			}
		}
		for _, tc := range []struct{ sql, want string }{
			{"SELECT 1; DELETE FROM runs", "more than one SQL statement"},
			{"SELECT 1; SELECT 2", "more than one SQL statement"},
			{"  ; -- nothing\n", "no SQL statement"},
		} {
			if _, err := readerRows(t, r, tc.sql); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", tc.sql, err, tc.want)
			}
		}
		// Nothing changed, and nothing was created outside.
		if after, err := readerRows(t, r, "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM event_rows) AS lines"); err != nil ||
			!reflect.DeepEqual(after, before) {
			t.Errorf("after the refused statements: %v, %v; before: %v", after, err, before)
		}
		if _, err := os.Stat(outside); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists: %v", outside, err)
		}
	}
}

func TestReaderReads(t *testing.T) {
	r := loadedReader(t)
	for q, want := range map[string]int{
		"SELECT * FROM events": 62,
		"SELECT * FROM events WHERE file_path = '/home/dev/.ssh/id_rsa'":   2,
		"PRAGMA table_info(events)":                                        52,
		"SELECT name FROM pragma_table_info('runs')":                       4,
		"PRAGMA index_list(event_rows)":                                    7,
		"PRAGMA page_count":                                                1,
		"PRAGMA integrity_check":                                           1,
		"EXPLAIN QUERY PLAN SELECT * FROM events WHERE tool_call_id = 'x'": 0,
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n":              5,
		"SELECT name FROM sqlite_schema WHERE type = 'view'":                                                       1,
		"SELECT json_extract(extra, '$.vigil.telemetry.claimed_conversation_id') FROM events WHERE kind = 'alert'": 1,
		"-- the statement may end with a semicolon and comments\nSELECT 1; -- done":                                1,
	} {
		rows, err := readerRows(t, r, q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if want > 0 && len(rows) != want {
			t.Errorf("%s: %d rows, want %d", q, len(rows), want)
		}
	}
}

// fileReader writes the fixture to a database file and opens it read-only, the writer still
// open: `vigil query` beside a running sensor.
func fileReader(t *testing.T) *Reader {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	s := openTemp(t, Options{Path: path})
	writeAll(t, s, readFixture(t))
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	// The writer goes on while the reader is open.
	writeAll(t, s, readFixture(t)[:3])
	return r
}

func TestOpenReadOnly(t *testing.T) {
	r := fileReader(t)
	rows, err := readerRows(t, r, "SELECT count(*) AS n FROM events")
	if err != nil || rows[0]["n"] != int64(65) {
		t.Errorf("count = %v, %v; want the 65 committed lines", rows, err)
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	if _, err := OpenReadOnly(missing); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("OpenReadOnly(missing) = %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", missing)
	}
	other := filepath.Join(t.TempDir(), "other.db")
	if err := os.WriteFile(other, []byte("not a database, just text that is long enough to be looked at"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(other); err == nil {
		t.Error("OpenReadOnly of a text file succeeded")
	}
}

func TestOneStatement(t *testing.T) {
	for q, ok := range map[string]bool{
		"SELECT 1":                           true,
		"SELECT 1;":                          true,
		"SELECT 1 ; ; -- trailing\n/* x */ ": true,
		"SELECT ';' AS semi":                 true,
		`SELECT "a;b" FROM t`:                true,
		"SELECT `a;b`, [c;d] FROM t":         true,
		"SELECT 'it''s; fine'":               true,
		"SELECT 1 -- ; DELETE\n":             true,
		"SELECT /* ; */ 1":                   true,
		"SELECT 1; SELECT 2":                 false,
		"SELECT 1; /* */ DELETE FROM t":      false,
		"SELECT 'a'; x":                      false,
		"":                                   false,
		"-- only a comment":                  false,
		"SELECT 'unterminated; DELETE":       true, // one statement (SQLite will refuse it)
		"SELECT 1 /* unterminated; x":        true,
	} {
		if err := oneStatement(q); (err == nil) != ok {
			t.Errorf("oneStatement(%q) = %v, want ok %v", q, err, ok)
		}
	}
}
