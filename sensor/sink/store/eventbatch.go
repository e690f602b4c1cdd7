package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
)

// rowsPerInsert is the most event rows one INSERT writes. A statement per row paid, for every
// line, the statement's start and end (opening and closing a cursor on event_rows and on each
// of its indexes, descending each index from its root) and the driver's call. Measured on an
// open line (BenchmarkUserCPU/store): 32 rows a statement cut the store's time from ~11.5 to
// ~8 µs a line (with temp_store in memory, see setUp); 64 or 128 rows no further.
const rowsPerInsert = 1 << bitsPerInsert

// bitsPerInsert is log2(rowsPerInsert). The rows left at a commit go in by statements of 16,
// 8, 4, 2 and 1 rows, a few statements rather than one each.
const bitsPerInsert = 5

// eventColumns names event_rows' columns in the order writeLocked passes their values.
var eventColumns = [...]string{"id", "timestamp", "action", "kind", "outcome", "errno", "process_id", "tid",
	"exit_code", "path_id", "file_access", "flags", "path_source", "destination_ip", "destination_port",
	"destination_address", "session_ref", "prompt_ref", "call_ref", "tool_name", "binding", "confidence",
	"binds_seq", "recovered", "source", "extra", "merged_count", "merged_first", "merged_last"}

// eventShape is a set of event_rows' columns, a bit per column of eventColumns: those an
// INSERT names. Most columns of most lines are NULL (an open has no destination, an unbound
// line no session, prompt or call); the driver binds every parameter, NULL or not, so a
// statement names only the columns that some row it inserts has, and the others get NULL,
// their default.
type eventShape uint32

// allColumns is the shape naming every column.
const allColumns = eventShape(1)<<len(eventColumns) - 1

// maxShapeStmts bounds the statements prepared for shapes other than allColumns (a handful
// in practice: a kind of line, bound or not); past it, rows are written with every column.
const maxShapeStmts = 64

// insertKey names a prepared INSERT: its columns and 1<<bits rows.
type insertKey struct {
	shape eventShape
	bits  int
}

// insertEventsSQL inserts n event rows, naming the columns of sh.
func insertEventsSQL(sh eventShape, n int) string {
	var cols []string
	for i, c := range eventColumns {
		if sh&(1<<i) != 0 {
			cols = append(cols, c)
		}
	}
	tuple := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	return "INSERT INTO event_rows (" + strings.Join(cols, ", ") + ") VALUES " + strings.Repeat(tuple+", ", n-1) + tuple
}

// eventBatch is the event rows not yet inserted, in the order they were written (rowids
// that grow fill the table's pages; rows out of order would split them), and the INSERTs
// prepared so far.
type eventBatch struct {
	values []any // len(eventColumns) a row
	shape  eventShape
	args   []driver.NamedValue
	stmts  map[insertKey]*stmt
}

// queueEventLocked queues an event row's values (in eventColumns' order), and inserts the
// queued rows once there are rowsPerInsert of them.
func (s *Store) queueEventLocked(ctx context.Context, c driverConn, values ...any) error {
	b := &s.events
	b.values = append(b.values, values...)
	for i, v := range values {
		if v != nil {
			b.shape |= 1 << i
		}
	}
	if len(b.values) < rowsPerInsert*len(eventColumns) {
		return nil
	}
	return s.flushEventsLocked(ctx, c)
}

// flushEventsLocked inserts the queued rows. It runs before a commit and before anything else
// reads or changes event_rows (a binding).
func (s *Store) flushEventsLocked(ctx context.Context, c driverConn) error {
	b := &s.events
	defer b.drop()
	rows, done := len(b.values)/len(eventColumns), 0
	for bits := bitsPerInsert; bits >= 0; bits-- {
		for n := 1 << bits; rows-done >= n; done += n {
			st, sh, err := b.insert(ctx, c, b.shape, bits)
			if err != nil {
				return err
			}
			b.args = b.args[:0]
			for i, v := range b.values[done*len(eventColumns) : (done+n)*len(eventColumns)] {
				if sh&(1<<(i%len(eventColumns))) != 0 {
					b.args = append(b.args, driver.NamedValue{Ordinal: len(b.args) + 1, Value: v})
				}
			}
			if _, err := st.execNamed(ctx, b.args); err != nil {
				return fmt.Errorf("insert event rows: %w", err)
			}
		}
	}
	return nil
}

// insert returns the statement inserting 1<<bits rows of shape sh, preparing it on c when
// needed, and the shape it names: allColumns once maxShapeStmts others are prepared.
func (b *eventBatch) insert(ctx context.Context, c driverConn, sh eventShape, bits int) (*stmt, eventShape, error) {
	k := insertKey{sh, bits}
	if st, ok := b.stmts[k]; ok {
		return st, sh, nil
	}
	if sh != allColumns && len(b.stmts) >= maxShapeStmts {
		return b.insert(ctx, c, allColumns, bits)
	}
	p, err := c.PrepareContext(ctx, insertEventsSQL(sh, 1<<bits))
	if err != nil {
		return nil, 0, fmt.Errorf("prepare the insert of event rows: %w", err)
	}
	if b.stmts == nil {
		b.stmts = map[insertKey]*stmt{}
	}
	st := &stmt{s: p}
	b.stmts[k] = st
	return st, sh, nil
}

// drop forgets the queued rows (inserted, or their transaction rolled back).
func (b *eventBatch) drop() {
	clear(b.values) // the lines' strings
	clear(b.args)
	b.values, b.args, b.shape = b.values[:0], b.args[:0], 0
}

// close closes the prepared statements.
func (b *eventBatch) close() error {
	var errs []error
	for _, st := range b.stmts {
		errs = append(errs, st.s.Close())
	}
	b.stmts = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close statements: %w", err)
	}
	return nil
}
