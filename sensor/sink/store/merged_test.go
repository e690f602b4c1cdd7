package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// mergedLine is proto's golden merged open line (vigil.merged).
func mergedLine(t *testing.T) *proto.Event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "proto", "testdata", "golden", "open_merged.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e proto.Event
	if err := proto.UnmarshalJSON(data, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// A merged open line keeps its count and span in columns and the file's identity in extra.
func TestMergedLineColumns(t *testing.T) {
	s := openTemp(t, Options{Path: Memory})
	writeAll(t, s, []*proto.Event{mergedLine(t)})
	rows := queryRows(t, s, "SELECT merged_count, merged_first, merged_last, json_extract(extra, '$.vigil.merged.ino') AS ino FROM events")
	want := map[string]any{"merged_count": int64(4812), "merged_first": "2025-11-24T08:31:07.162400000Z",
		"merged_last": "2025-11-24T08:31:07.960113204Z", "ino": int64(1312207)}
	if len(rows) != 1 || len(rows[0]) != len(want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %v, want %v", k, rows[0][k], v)
		}
	}
}

// A store of schema version 1 gains the merged columns when opened, keeps its rows, and
// takes merged lines.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	s := openTemp(t, Options{Path: path})
	writeAll(t, s, readFixture(t)[:3])
	// Make it what version 1 created: no merged columns, a view without them.
	for _, q := range []string{"DROP VIEW events", "ALTER TABLE event_rows DROP COLUMN merged_count",
		"ALTER TABLE event_rows DROP COLUMN merged_first", "ALTER TABLE event_rows DROP COLUMN merged_last",
		"CREATE VIEW events AS SELECT id FROM event_rows", "PRAGMA user_version = 1"} {
		if _, err := s.conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, Options{Path: path})
	writeAll(t, s, []*proto.Event{mergedLine(t)})
	if v := queryRows(t, s, "PRAGMA user_version"); v[0]["user_version"] != int64(schemaVersion) {
		t.Errorf("user_version %v after the migration, want %d", v[0]["user_version"], schemaVersion)
	}
	rows := queryRows(t, s, "SELECT action, merged_count FROM events ORDER BY id")
	if len(rows) != 4 || rows[0]["merged_count"] != nil || rows[3]["merged_count"] != int64(4812) {
		t.Errorf("rows after the migration: %v", rows)
	}
}
