package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// walLimitBytes is the most room the -wal file takes beside the database: it is truncated back
// to it after a checkpoint (it would otherwise stay at its largest), and checkpoints run when
// it holds half of it. A smaller size bound (Options.MaxBytes) gives it half the bound.
const walLimitBytes = 16 << 20

// cacheKiB is the page cache of the writing connection. Index pages are read back while they
// fill; the default 2 MiB misses them once the indexes outgrow it.
const cacheKiB = 8 << 10

// setUp sets the connection's pragmas and, on a new database, creates the schema; an older
// database is migrated. A database written by a newer Vigil (a higher user_version) is
// refused.
func setUp(ctx context.Context, c *sql.Conn, memory bool, walBytes int64) error {
	var version int
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this vigil's (%d): written by a newer version", version, schemaVersion)
	}
	pragmas := []string{
		// Writers never block `vigil query` nor the other way round; a crash leaves committed
		// transactions intact. Must be set before the first table exists.
		"PRAGMA auto_vacuum = INCREMENTAL",
		"PRAGMA journal_mode = WAL",
		// In WAL mode NORMAL syncs at checkpoints only: a committed batch survives the
		// process being killed, and only a power cut can lose the last ones.
		"PRAGMA synchronous = NORMAL",
		fmt.Sprintf("PRAGMA journal_size_limit = %d", walBytes),
		fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", max(walBytes/2/4096, 16)),
		fmt.Sprintf("PRAGMA cache_size = -%d", cacheKiB),
		"PRAGMA busy_timeout = 5000",
		// A statement inserting several event rows keeps a statement journal (to undo itself
		// alone on an error): in memory it costs a copy, in a temporary file a write(2) per
		// page (measured with multi-row INSERTs: 9.1 µs a line with a file, 7.9 in memory).
		"PRAGMA temp_store = MEMORY",
		// ANALYZE (run by PRAGMA optimize) reads a sample of each index, not all of it.
		"PRAGMA analysis_limit = 1000",
	}
	if memory {
		pragmas = []string{"PRAGMA synchronous = OFF", fmt.Sprintf("PRAGMA cache_size = -%d", cacheKiB)}
	}
	if version != 0 {
		pragmas = pragmas[1:] // auto_vacuum can no longer change without a VACUUM
	}
	for _, p := range pragmas {
		if _, err := c.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if version == 0 {
		return createSchema(ctx, c)
	}
	for v := version; v < schemaVersion; v++ {
		if err := migrate(ctx, c, v); err != nil {
			return err
		}
	}
	return nil
}

// migrate turns a database of schema version v into v+1 (migrations), in one transaction
// with the version that says it is done.
func migrate(ctx context.Context, c *sql.Conn, v int) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, errors.Join(err, tx.Rollback()))
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, errors.Join(err, tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
	}
	return nil
}

// createSchema creates the tables in one transaction, with the version that says they exist.
func createSchema(ctx context.Context, c *sql.Conn) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", errors.Join(err, tx.Rollback()))
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("create schema: %w", errors.Join(err, tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// driverConn is what the write path needs of the driver's connection.
type driverConn interface {
	driver.ConnPrepareContext
	driver.ExecerContext
}

// raw runs f on the driver's connection. The write path uses the driver's statements
// directly: database/sql's argument conversion, locking and retries cost a third of a line's
// time (measured, bench/results/store.md), and the one pinned connection needs none of them.
// Statements prepared in f are used only in later calls of raw on the same connection.
func (s *Store) raw(f func(c driverConn) error) error {
	return s.conn.Raw(func(dc any) error {
		c, ok := dc.(driverConn)
		if !ok {
			return fmt.Errorf("the sqlite driver's connection (%T) cannot prepare and execute with a context", dc)
		}
		return f(c)
	})
}

// stmt is a prepared statement of the driver and its reusable arguments.
type stmt struct {
	s    driver.Stmt
	args []driver.NamedValue
}

// exec runs the statement with args.
func (st *stmt) exec(ctx context.Context, args ...any) (driver.Result, error) {
	st.bind(args)
	return st.s.(driver.StmtExecContext).ExecContext(ctx, st.args)
}

// execNamed runs the statement with args as they are.
func (st *stmt) execNamed(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return st.s.(driver.StmtExecContext).ExecContext(ctx, args)
}

// queryInt runs the statement with args and returns the integer in the first column of its
// first row.
func (st *stmt) queryInt(ctx context.Context, args ...any) (int64, error) {
	st.bind(args)
	rows, err := st.s.(driver.StmtQueryContext).QueryContext(ctx, st.args)
	if err != nil {
		return 0, err
	}
	dest := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(dest)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("want an integer, got %T", dest[0])
	}
	return n, nil
}

func (st *stmt) bind(args []any) {
	if len(st.args) != len(args) {
		st.args = make([]driver.NamedValue, len(args))
	}
	for i, a := range args {
		st.args[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
}

// statements are the prepared statements of the write path.
type statements struct {
	insertRun, setRunHost  stmt
	insertProcess          stmt
	insertPath, selectPath stmt
	insertID, selectID     stmt
	upsertSession          stmt
	upsertPrompt           stmt
	upsertToolCall         stmt
	applyBinding           stmt
	insertAlert            stmt
}

// statementSQL lists each statement with where it goes.
func (st *statements) statementSQL() []struct {
	p   *stmt
	sql string
} {
	return []struct {
		p   *stmt
		sql string
	}{
		{&st.insertRun, `INSERT INTO runs (started_at, host_name, boot_id) VALUES (?, ?, ?)`},
		{&st.setRunHost, `UPDATE runs SET host_name = ?, boot_id = ? WHERE id = ?`},
		{&st.insertProcess, `INSERT INTO processes (boot_id, entity_id, pid, name, executable, args, args_count, cwd,
			sha256, start, parent_pid, parent_entity_id, parent_executable, parent_name, user_id, user_name, group_id,
			root_pid, root_entity_id, agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.insertPath, `INSERT OR IGNORE INTO paths (path, name) VALUES (?, ?)`},
		{&st.selectPath, `SELECT id FROM paths WHERE path = ?`},
		{&st.insertID, `INSERT OR IGNORE INTO ids (value) VALUES (?)`},
		{&st.selectID, `SELECT id FROM ids WHERE value = ?`},
		// A session seen again was resumed in another agent tree: that tree becomes its root,
		// and started_at stays the first sight.
		{&st.upsertSession, `INSERT INTO sessions (id, agent, started_at, root_pid, root_entity_id, cwd, sender_pid,
			sender_executable, transport, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET agent = coalesce(excluded.agent, agent),
				started_at = min(started_at, excluded.started_at), resumed_at = excluded.started_at,
				root_pid = excluded.root_pid, root_entity_id = excluded.root_entity_id, cwd = coalesce(excluded.cwd, cwd),
				sender_pid = excluded.sender_pid, sender_executable = excluded.sender_executable,
				transport = excluded.transport, run_id = excluded.run_id`},
		{&st.upsertPrompt, `INSERT INTO prompts (id, session_id, agent, timestamp, text, sender_pid, transport, run_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET session_id = coalesce(excluded.session_id, session_id),
				agent = coalesce(excluded.agent, agent), timestamp = min(timestamp, excluded.timestamp),
				text = coalesce(excluded.text, text), sender_pid = coalesce(excluded.sender_pid, sender_pid),
				transport = coalesce(excluded.transport, transport)`},
		// A call reported again (e.g. its result after a line written without one) keeps what
		// the new report leaves out.
		{&st.upsertToolCall, `INSERT INTO tool_calls (id, session_id, prompt_id, agent, tool_name, command, file_paths,
			decision, decision_source, success, outcome, duration_ms, started_at, ended_at, sender_pid, transport,
			reports, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
			ON CONFLICT (id) DO UPDATE SET session_id = coalesce(excluded.session_id, session_id),
				prompt_id = coalesce(excluded.prompt_id, prompt_id), agent = coalesce(excluded.agent, agent),
				tool_name = coalesce(excluded.tool_name, tool_name), command = coalesce(excluded.command, command),
				file_paths = coalesce(excluded.file_paths, file_paths), decision = coalesce(excluded.decision, decision),
				decision_source = coalesce(excluded.decision_source, decision_source),
				success = coalesce(excluded.success, success), outcome = coalesce(excluded.outcome, outcome),
				duration_ms = coalesce(excluded.duration_ms, duration_ms), started_at = coalesce(excluded.started_at, started_at),
				ended_at = excluded.ended_at, sender_pid = coalesce(excluded.sender_pid, sender_pid),
				transport = coalesce(excluded.transport, transport), reports = reports + 1, run_id = excluded.run_id`},
		{&st.applyBinding, `UPDATE event_rows SET session_ref = coalesce(?, session_ref), prompt_ref = coalesce(?, prompt_ref),
			call_ref = ?, tool_name = ?, binding = ?, confidence = ? WHERE id = ?`},
		{&st.insertAlert, `INSERT INTO alerts (event_id, timestamp, rule_id, rule_name, severity, session_id, prompt_id,
			tool_call_id, root_pid, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
	}
}

// prepare prepares every statement on c.
func prepare(ctx context.Context, c driverConn) (statements, error) {
	var st statements
	for _, s := range st.statementSQL() {
		p, err := c.PrepareContext(ctx, s.sql)
		if err != nil {
			return statements{}, errors.Join(fmt.Errorf("prepare %.40q: %w", s.sql, err), st.close())
		}
		_, canExec := p.(driver.StmtExecContext)
		_, canQuery := p.(driver.StmtQueryContext)
		if !canExec || !canQuery {
			return statements{}, errors.Join(fmt.Errorf("the sqlite driver's statement (%T) cannot run with a context", p), p.Close(), st.close())
		}
		s.p.s = p
	}
	return st, nil
}

// close closes the prepared statements.
func (st *statements) close() error {
	var errs []error
	for _, s := range st.statementSQL() {
		if s.p.s != nil {
			if err := s.p.s.Close(); err != nil {
				errs = append(errs, err)
			}
			s.p.s = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close statements: %w", err)
	}
	return nil
}
