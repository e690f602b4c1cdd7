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

// bitsPerInsert is log2(rowsPerInsert). There is a statement for each power of two up to
// rowsPerInsert rows, so that the rows left at a commit take a few statements, not one each.
const bitsPerInsert = 5

// eventColumns names event_rows' columns in the order writeLocked passes their values.
var eventColumns = [...]string{"id", "timestamp", "action", "kind", "outcome", "errno", "process_id", "tid",
	"exit_code", "path_id", "file_access", "flags", "path_source", "destination_ip", "destination_port",
	"destination_address", "session_ref", "prompt_ref", "call_ref", "tool_name", "binding", "confidence",
	"binds_seq", "recovered", "source", "extra"}

// eventShape is the set of an event row's columns that are not NULL, a bit per column of
// eventColumns. Most columns of most lines are NULL (an open has no destination, an unbound
// line no session, prompt or call); a statement naming only the others binds about half the
// values, and the driver's binding costs per value, NULL or not.
type eventShape uint32

// allColumns is the shape naming every column.
const allColumns = eventShape(1)<<len(eventColumns) - 1

// maxShapes bounds the shapes that get statements of their own (a few in practice: a kind of
// line, bound or not); rows of a shape past it are written with every column.
const maxShapes = 32

// shapeOf is the shape of a row's values.
func shapeOf(values []any) eventShape {
	var sh eventShape
	for i, v := range values {
		if v != nil {
			sh |= 1 << i
		}
	}
	return sh
}

// insertEventsSQL inserts n event rows of shape sh.
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

// shapeBatch is the queued rows of one shape and the statements inserting them: ins[i]
// inserts 1<<i rows.
type shapeBatch struct {
	shape eventShape
	width int // values a row
	ins   [bitsPerInsert + 1]stmt
	args  []driver.NamedValue // the rows' values, in order
	rows  int
}

// eventBatch is the event rows not yet inserted, by shape (in the order shapes were first seen).
type eventBatch struct {
	shapes []*shapeBatch
}

// queueEventLocked queues an event row's values (in eventColumns' order), and inserts its
// shape's queued rows once there are rowsPerInsert of them.
func (s *Store) queueEventLocked(ctx context.Context, c driverConn, values ...any) error {
	b, err := s.events.of(ctx, c, shapeOf(values))
	if err != nil {
		return err
	}
	for _, v := range values {
		if v != nil || b.shape == allColumns {
			b.args = append(b.args, driver.NamedValue{Ordinal: len(b.args) + 1, Value: v})
		}
	}
	b.rows++
	if b.rows < rowsPerInsert {
		return nil
	}
	return b.flush(ctx)
}

// of returns the batch of shape sh, or of allColumns once maxShapes shapes have batches. A new
// shape's statements are prepared on c.
func (e *eventBatch) of(ctx context.Context, c driverConn, sh eventShape) (*shapeBatch, error) {
	for _, b := range e.shapes {
		if b.shape == sh {
			return b, nil
		}
	}
	if len(e.shapes) >= maxShapes-1 && sh != allColumns {
		return e.of(ctx, c, allColumns)
	}
	b := &shapeBatch{shape: sh}
	for v := sh; v != 0; v &= v - 1 {
		b.width++
	}
	for i := range b.ins {
		p, err := c.PrepareContext(ctx, insertEventsSQL(sh, 1<<i))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare the insert of event rows: %w", err), b.close())
		}
		b.ins[i].s = p
	}
	e.shapes = append(e.shapes, b)
	return b, nil
}

// flushEventsLocked inserts the queued rows. It runs before a commit and before anything else
// reads or changes event_rows (a binding).
func (s *Store) flushEventsLocked(ctx context.Context) error {
	for _, b := range s.events.shapes {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// flush inserts b's queued rows, by statements of the largest sizes that fit.
func (b *shapeBatch) flush(ctx context.Context) error {
	defer b.drop()
	done := 0
	for i := bitsPerInsert; i >= 0; i-- {
		for n := 1 << i; b.rows-done >= n; done += n {
			args := b.args[done*b.width : (done+n)*b.width]
			for j := range args {
				args[j].Ordinal = j + 1 // the driver binds by position in args
			}
			if _, err := b.ins[i].execNamed(ctx, args); err != nil {
				return fmt.Errorf("insert event rows: %w", err)
			}
		}
	}
	return nil
}

// drop forgets b's queued rows (inserted, or their transaction rolled back).
func (b *shapeBatch) drop() {
	clear(b.args) // the values are the lines' strings
	b.args, b.rows = b.args[:0], 0
}

// drop forgets the queued rows.
func (e *eventBatch) drop() {
	for _, b := range e.shapes {
		b.drop()
	}
}

// close closes the prepared statements.
func (e *eventBatch) close() error {
	var errs []error
	for _, b := range e.shapes {
		errs = append(errs, b.close())
	}
	e.shapes = nil
	return errors.Join(errs...)
}

// close closes b's prepared statements.
func (b *shapeBatch) close() error {
	var errs []error
	for i := range b.ins {
		if b.ins[i].s != nil {
			errs = append(errs, b.ins[i].s.Close())
			b.ins[i].s = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close statements: %w", err)
	}
	return nil
}
