// Package store is the embedded SQL store: the records `vigil run` writes to the JSONL, also
// kept in an SQLite database (pure Go, modernc.org/sqlite, so it builds without cgo on every
// platform) that `vigil query` reads with SQL. Kernel events, the correlator's sessions,
// prompts and tool calls and the alerts each get tables; a late binding record updates the
// row of the line it binds. Rows are written in batched transactions (WAL, synchronous
// NORMAL): a killed sensor leaves a database that opens with every committed batch in it.
// Retention bounds the database by age and by size. docs/schema.md ("Store") documents the
// tables.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/vigil-sensor/vigil/proto"
)

// Memory is the Path of a database held in memory, with no file (vigil query --jsonl).
const Memory = ":memory:"

// maxBatch bounds the lines of one transaction: Write commits on its own when a batch reaches
// it, so a sink that is rarely flushed does not hold an ever larger transaction (and its dirty
// pages) in memory. Larger batches write fewer pages per line (bench/results/store.md).
const maxBatch = 8192

// maxCached bounds the process, path and id rows remembered between lines; past it a map
// starts over (a forgotten process gets a second, identical row; a path or id is looked up).
const maxCached = 1 << 16

// seqBits is how many low bits of an event row's id hold the line's event.sequence; the run's
// id is above them.
const (
	seqBits = 40
	maxSeq  = 1<<seqBits - 1
	maxRun  = 1<<(63-seqBits) - 1
)

// ErrClosed is returned (wrapped) by Write after Close.
var ErrClosed = errors.New("store closed")

// Options configure a Store.
type Options struct {
	// Path is the database file, or Memory.
	Path string
	// MaxAge deletes events older than this; 0: no age bound.
	MaxAge time.Duration
	// MaxBytes bounds the database file and its -wal file; the oldest events are deleted to
	// keep them under. 0: no size bound.
	MaxBytes int64
	// OnForeign, when set, is told of a database file another user owned, which the store
	// removed and created anew instead of writing into it.
	OnForeign func(path string, uid int)
	// Now is the clock retention reads; nil: time.Now.
	Now func() time.Time
}

// Stats are the store's counters.
type Stats struct {
	// Written counts the lines committed to the database.
	Written uint64
	// Errors counts the lines that never reached it: a write or commit that failed (the whole
	// batch is lost with it), or a write after Close.
	Errors uint64
	// Evicted counts the event rows retention deleted; EvictedRecords the sessions, prompts,
	// tool calls and alerts it deleted with them once no event referred to them.
	Evicted        uint64
	EvictedRecords uint64
	// Bytes is the size of the database and its -wal file at the last retention check (0 in
	// memory).
	Bytes int64
}

// Store is a sensor.Sink writing to the database. Write, Flush, Close and Stats may be called
// from different goroutines; a mutex serialises them.
type Store struct {
	mu   sync.Mutex
	opts Options
	db   *sql.DB
	// conn is the one connection everything runs on: pragmas are per connection, and an
	// in-memory database lives and dies with its connection.
	conn  *sql.Conn
	stmts statements
	// events are the event rows not yet inserted.
	events eventBatch
	stamp  []byte // rowOf's buffer for the line's timestamp text

	inTx    bool   // a transaction is open
	pending uint64 // lines written in it

	// run is the runs row of the lines being written; 0: the next line starts a run.
	run     int64
	runHost bool   // the run's host is known (recovered lines carry an earlier run's)
	lastSeq uint64 // of the run

	procs map[procKey]procEntry
	paths map[string]int64
	ids   map[string]int64

	retain retention
	closed bool
	reader bool // handed to a Reader: no more writes
	stats  Stats
}

// Open opens (creating it if needed) the database at o.Path and checks its schema. A file is
// created 0600 in a directory that only the sensor's user may write to (see prepareFile).
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("open store: empty path")
	}
	if o.MaxAge < 0 || o.MaxBytes < 0 {
		return nil, fmt.Errorf("open store %s: negative MaxAge or MaxBytes", o.Path)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dsn := "file::memory:"
	if o.Path != Memory {
		if err := prepareFile(o.Path, o.OnForeign); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		dsn = fileURI(o.Path, "")
	}
	s := &Store{opts: o, procs: map[procKey]procEntry{}, paths: map[string]int64{}, ids: map[string]int64{}}
	if err := s.open(dsn); err != nil {
		if s.db != nil {
			err = errors.Join(err, s.closeDB())
		}
		return nil, fmt.Errorf("open store %s: %w", o.Path, err)
	}
	if o.Path != Memory {
		if err := s.retainLocked(true); err != nil {
			return nil, fmt.Errorf("open store %s: %w", o.Path, errors.Join(err, s.closeDB()))
		}
	}
	return s, nil
}

// open connects, sets the connection up and prepares the statements.
func (s *Store) open(dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	s.db = db
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if s.conn, err = db.Conn(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if err := setUp(ctx, s.conn, s.opts.Path == Memory, s.walBytes()); err != nil {
		return err
	}
	if s.opts.Path != Memory {
		// SQLite creates the -wal and -shm files with the database's mode; make sure.
		if err := tightenSideFiles(s.opts.Path); err != nil {
			return err
		}
	}
	return s.raw(func(c driverConn) error {
		var err error
		s.stmts, err = prepare(ctx, c)
		return err
	})
}

// Write adds e to the current batch (and opens one). The batch reaches the database on Flush,
// or on its own at maxBatch lines. A line that cannot be written fails the whole batch: its
// lines are counted in Stats' errors, and the next Write starts a new one.
func (s *Store) Write(e *proto.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.reader {
		s.stats.Errors++
		return fmt.Errorf("store write %s: %w", s.opts.Path, ErrClosed)
	}
	err := s.raw(func(c driverConn) error {
		if err := s.writeLocked(c, e); err != nil {
			s.abortLocked(c)
			s.stats.Errors++
			return err
		}
		if s.pending >= maxBatch {
			return s.commitLocked(c)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store write: %w", err)
	}
	return nil
}

// Flush commits the batch, so that readers see it and it survives the process, and applies
// the retention bounds. Flush after Close is a no-op.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if err := s.raw(s.commitLocked); err != nil {
		return fmt.Errorf("store flush: %w", err)
	}
	if s.opts.Path != Memory && (s.opts.MaxAge > 0 || s.opts.MaxBytes > 0) {
		if err := s.retainLocked(false); err != nil {
			return fmt.Errorf("store flush: %w", err)
		}
	}
	return nil
}

// Close commits the batch and closes the database. Writes after Close fail with ErrClosed and
// are counted.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.raw(s.commitLocked)
	if !s.reader {
		// Keeps the query planner's statistics current for `vigil query` (cheap: it analyses
		// only the tables that changed much, with analysis_limit set).
		if _, oerr := s.conn.ExecContext(context.Background(), "PRAGMA optimize"); oerr != nil && err == nil {
			err = fmt.Errorf("optimize: %w", oerr)
		}
	}
	if cerr := s.closeDB(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store close %s: %w", s.opts.Path, err)
	}
	return nil
}

// closeDB closes the statements, the connection and the database.
func (s *Store) closeDB() error {
	err := errors.Join(s.stmts.close(), s.events.close())
	if s.conn != nil {
		if cerr := s.conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close connection: %w", cerr)
		}
	}
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	return err
}

// Stats returns a snapshot of the counters. Lines of the open batch are in neither Written nor
// Errors until it is committed.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// writeLocked writes the rows of one line into the open transaction.
func (s *Store) writeLocked(c driverConn, e *proto.Event) error {
	ctx := context.Background()
	if !s.inTx {
		if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		s.inTx = true
	}
	row, err := rowOf(e, &s.stamp)
	if err != nil {
		return err
	}
	// event.sequence starts at 1 again in each sensor run: a sequence that does not grow
	// starts a new run, so that (run, seq) names a line and a binding record finds the line
	// it names in its own run. A line without one (not written by vigil run) is numbered
	// after the previous line.
	seq, numbered := row.seq, row.seq != 0 && row.seq <= maxSeq
	if !numbered {
		seq = s.lastSeq + 1
	}
	if s.run == 0 || seq <= s.lastSeq || seq > maxSeq {
		if err := s.startRunLocked(ctx, e, row.timestamp); err != nil {
			return err
		}
		if !numbered {
			seq = 1
		}
	} else if !s.runHost && !e.Vigil.Recovered && e.Host != nil {
		if _, err := s.stmts.setRunHost.exec(ctx, text(e.Host.Name), text(e.Host.BootID), s.run); err != nil {
			return fmt.Errorf("record run host: %w", err)
		}
		s.runHost = true
	}
	s.lastSeq = seq
	id := s.run<<seqBits | int64(seq)
	var procID, pathID, sessionRef, promptRef, callRef any
	if row.hasProc {
		if procID, err = s.processIDLocked(ctx, &row.proc); err != nil {
			return err
		}
	}
	if row.path != "" {
		if pathID, err = s.pathIDLocked(ctx, row.path); err != nil {
			return err
		}
	}
	if sessionRef, err = s.refLocked(ctx, row.sessionID); err != nil {
		return err
	}
	if promptRef, err = s.refLocked(ctx, row.promptID); err != nil {
		return err
	}
	if callRef, err = s.refLocked(ctx, row.callID); err != nil {
		return err
	}
	if err := s.queueEventLocked(ctx, c, id, row.timestamp, row.action, text(row.kind),
		text(row.outcome), integer(row.errno), procID, integer(row.tid), intPtr(row.exitCode), pathID,
		text(row.access), text(row.flags), text(row.pathSource), text(row.destIP), integer(row.destPort),
		text(row.destAddr), sessionRef, promptRef, callRef, text(row.toolName),
		text(row.binding), text(row.confidence), unsigned(row.bindsSeq), boolean(row.recovered),
		text(row.source), blobText(row.extra), unsigned(row.mergedCount), text(row.mergedFirst),
		text(row.mergedLast)); err != nil {
		return fmt.Errorf("insert %s line: %w", row.action, err)
	}
	if err := s.writeRecordLocked(ctx, c, e, &row, id); err != nil {
		return err
	}
	s.pending++
	return nil
}

// commitLocked commits the open transaction, if any. A failed commit loses the batch: its
// lines are counted as errors.
func (s *Store) commitLocked(c driverConn) error {
	if !s.inTx {
		return nil
	}
	if err := s.flushEventsLocked(context.Background(), c); err != nil {
		s.abortLocked(c)
		return err
	}
	if _, err := c.ExecContext(context.Background(), "COMMIT", nil); err != nil {
		s.abortLocked(c)
		return fmt.Errorf("commit: %w", err)
	}
	s.stats.Written += s.pending
	s.inTx, s.pending = false, 0
	return nil
}

// abortLocked rolls the open transaction back after a failure and forgets what it wrote: the
// lines it held are counted as errors, and the rows it created (run, processes, paths, ids)
// no longer exist.
func (s *Store) abortLocked(c driverConn) {
	if s.inTx {
		// SQLite may have rolled it back already (a full disk); the failure is reported.
		_, _ = c.ExecContext(context.Background(), "ROLLBACK", nil)
	}
	s.stats.Errors += s.pending
	s.inTx, s.pending = false, 0
	s.events.drop()
	s.run, s.runHost = 0, false
	s.forgetIDsLocked()
}

// forgetIDsLocked drops the remembered row ids (after a rollback, or after retention deleted
// rows they may name).
func (s *Store) forgetIDsLocked() {
	clear(s.procs)
	clear(s.paths)
	clear(s.ids)
}

// startRunLocked adds the runs row of the run e starts. A recovered line (written first, from
// the hold journal) carries the host of the run that saw it, so the host is then filled in
// from the run's first line of its own.
func (s *Store) startRunLocked(ctx context.Context, e *proto.Event, timestamp string) error {
	var host, boot string
	s.runHost = e.Host != nil && !e.Vigil.Recovered
	if s.runHost {
		host, boot = e.Host.Name, e.Host.BootID
	}
	res, err := s.stmts.insertRun.exec(ctx, timestamp, text(host), text(boot))
	if err == nil {
		s.run, err = res.LastInsertId()
	}
	if err != nil {
		return fmt.Errorf("insert run: %w", err)
	}
	if s.run > maxRun {
		// Only input whose sequence keeps falling gets here (a sensor starts a run once).
		return fmt.Errorf("insert run: more than %d runs: an event row's id would overflow", maxRun)
	}
	s.lastSeq = 0
	return nil
}

// processIDLocked returns the id of p's processes row, adding one when no identical row is
// remembered.
func (s *Store) processIDLocked(ctx context.Context, p *procRow) (any, error) {
	k := p.key()
	if ent, ok := s.procs[k]; ok && slices.Equal(ent.args, p.args) {
		return ent.id, nil
	}
	args, err := jsonStrings(p.args)
	if err != nil {
		return nil, fmt.Errorf("encode process.args: %w", err)
	}
	res, err := s.stmts.insertProcess.exec(ctx, text(k.bootID), text(k.entityID), integer(k.pid), text(k.name),
		text(k.executable), text(args), integer(k.argsCount), text(k.cwd), text(k.sha256), k.startText(),
		integer(k.parentPid), text(k.parentEntityID), text(k.parentExecutable), text(k.parentName),
		text(k.userID), text(k.userName), text(k.groupID), integer(k.rootPid), text(k.rootEntityID), text(k.agent))
	var id int64
	if err == nil {
		id, err = res.LastInsertId()
	}
	if err != nil {
		return nil, fmt.Errorf("insert process: %w", err)
	}
	if len(s.procs) >= maxCached {
		clear(s.procs)
	}
	s.procs[k] = procEntry{args: p.args, id: id}
	return id, nil
}

// pathIDLocked returns the id of path's paths row, adding it (with its last element, the
// file's name) when there is none.
func (s *Store) pathIDLocked(ctx context.Context, path string) (any, error) {
	id, err := s.internLocked(ctx, s.paths, &s.stmts.insertPath, &s.stmts.selectPath, path, path[strings.LastIndexByte(path, '/')+1:])
	if err != nil {
		return nil, fmt.Errorf("path id: %w", err)
	}
	return id, nil
}

// refLocked returns the ids row of a session, prompt or tool-call id (nil for ""), adding it
// when there is none.
func (s *Store) refLocked(ctx context.Context, value string) (any, error) {
	if value == "" {
		return nil, nil
	}
	id, err := s.internLocked(ctx, s.ids, &s.stmts.insertID, &s.stmts.selectID, value)
	if err != nil {
		return nil, fmt.Errorf("id of %q: %w", value, err)
	}
	return id, nil
}

// internLocked returns the id of value's row in a table of unique strings (paths, ids): from
// cache, else by inserting it (with the insert's other values), else (it was there already)
// by looking it up.
func (s *Store) internLocked(ctx context.Context, cache map[string]int64, insert, lookup *stmt, value string, more ...any) (int64, error) {
	if id, ok := cache[value]; ok {
		return id, nil
	}
	res, err := insert.exec(ctx, append([]any{value}, more...)...)
	if err != nil {
		return 0, err
	}
	var id int64
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 1 {
		if id, err = res.LastInsertId(); err != nil {
			return 0, err
		}
	} else if id, err = lookup.queryInt(ctx, value); err != nil {
		return 0, err
	}
	if len(cache) >= maxCached {
		clear(cache)
	}
	cache[value] = id
	return id, nil
}
