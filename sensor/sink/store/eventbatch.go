package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
)

// rowsPerInsert is the most event rows one INSERT writes. A statement per row paid, for every
// line, the statement's start and end (opening and closing a cursor on event_rows and on each
// of its indexes, descending each index from its root) and the driver's call. Measured on an
// open line (BenchmarkUserCPU/store): 32 rows a statement cut the store's time from ~11.5 to
// ~8 µs a line (with temp_store in memory, see setUp); 64 or 128 rows no further.
const rowsPerInsert = 1 << bitsPerInsert

// eventColumns is the number of values of an event row, in eventColumnList's order.
const eventColumns = 26

const eventColumnList = `id, timestamp, action, kind, outcome, errno, process_id, tid, exit_code, path_id, file_access,
	flags, path_source, destination_ip, destination_port, destination_address, session_ref, prompt_ref, call_ref,
	tool_name, binding, confidence, binds_seq, recovered, source, extra`

// insertEventsSQL inserts n event rows.
func insertEventsSQL(n int) string {
	tuple := "(" + strings.Repeat("?, ", eventColumns-1) + "?)"
	return "INSERT INTO event_rows (" + eventColumnList + ") VALUES " + strings.Repeat(tuple+", ", n-1) + tuple
}

// bitsPerInsert is log2(rowsPerInsert). There is a statement for each power of two up to
// rowsPerInsert rows, so that the rows left at a commit take a few statements, not one each.
const bitsPerInsert = 5

// eventBatch is the event rows not yet inserted.
type eventBatch struct {
	args []driver.NamedValue // the rows' values, in order
	rows int
}

// queueEventLocked queues an event row's values, and inserts the queued rows once there are
// rowsPerInsert of them.
func (s *Store) queueEventLocked(ctx context.Context, values ...any) error {
	b := &s.events
	for _, v := range values {
		b.args = append(b.args, driver.NamedValue{Ordinal: len(b.args) + 1, Value: v})
	}
	b.rows++
	if b.rows < rowsPerInsert {
		return nil
	}
	return s.flushEventsLocked(ctx)
}

// flushEventsLocked inserts the queued rows. It runs before a commit and before anything else
// reads or changes event_rows (a binding).
func (s *Store) flushEventsLocked(ctx context.Context) error {
	b := &s.events
	defer b.drop()
	done := 0
	for i := bitsPerInsert; i >= 0; i-- {
		for n := 1 << i; b.rows-done >= n; done += n {
			args := b.args[done*eventColumns : (done+n)*eventColumns]
			for j := range args {
				args[j].Ordinal = j + 1 // the driver binds by position in args
			}
			if _, err := s.stmts.insertEvents[i].execNamed(ctx, args); err != nil {
				return fmt.Errorf("insert event rows: %w", err)
			}
		}
	}
	return nil
}

// drop forgets the queued rows (inserted, or their transaction rolled back).
func (b *eventBatch) drop() {
	clear(b.args) // the values are the lines' strings
	b.args, b.rows = b.args[:0], 0
}
