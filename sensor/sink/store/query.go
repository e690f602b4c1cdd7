package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
)

// ErrReadOnly is returned (wrapped) for a statement that would change the database, or reach
// beyond it (ATTACH), on a Reader.
var ErrReadOnly = errors.New("the store is read-only here")

// sqliteReadOnly is SQLite's SQLITE_READONLY result code.
const sqliteReadOnly = 8

// readPragmas are the pragmas a Reader may run, each with or without an argument: they only
// describe the schema or the database. Any other (writable_schema, query_only, journal_mode =
// ...) is refused.
var readPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "function_list": true, "pragma_list": true,
	"collation_list": true, "compile_options": true, "database_list": true,
}

// readValuePragmas may be read but not set: allowed only without a value.
var readValuePragmas = map[string]bool{
	"page_count": true, "page_size": true, "freelist_count": true, "user_version": true,
	"schema_version": true, "journal_mode": true, "auto_vacuum": true, "encoding": true,
	"integrity_check": true, "quick_check": true, "data_version": true,
}

// deniedFunctions are SQL functions a Reader refuses although they read nothing: they change
// the connection.
var deniedFunctions = map[string]bool{"load_extension": true, "fts3_tokenizer": true}

// Reader runs read-only SQL on a store, one statement at a time: the database is opened
// read-only with query_only set, and SQLite's authorizer refuses, while a statement is
// compiled, everything but reading (INSERT, UPDATE, DELETE, CREATE, DROP, ATTACH, BEGIN, a
// pragma that sets a value), so that the refusal says what was refused. It has one
// connection and is not for concurrent use.
type Reader struct {
	db    *sql.DB // nil when the Reader reads a Store's connection
	conn  *sql.Conn
	store *Store // the in-memory Store the Reader reads, closed with it
	// denied is what the authorizer refused while the last statement was compiled.
	denied string
}

// OpenReadOnly opens the database at path for reading. It does not check the file's owner: it
// never writes, and reading another user's file is the file system's to allow.
func OpenReadOnly(path string) (*Reader, error) {
	if err := unix.Access(path, unix.R_OK); err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("open store %s: no such file (is output.store set, and has vigil run written it?)", path)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("open store %s: %w (it is root's alone: run vigil query as root, or give it the JSONL with --jsonl)", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", fileURI(path, "mode=ro"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	r := &Reader{db: db}
	ctx := context.Background()
	if r.conn, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, errors.Join(err, db.Close()))
	}
	var version int
	if err := r.conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, errors.Join(err, r.Close()))
	}
	if version == 0 || version > schemaVersion {
		return nil, fmt.Errorf("open store %s: not a store of this vigil (schema version %d, want %d)", path, version, schemaVersion)
	}
	if err := r.lockDown(ctx); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, errors.Join(err, r.Close()))
	}
	return r, nil
}

// Reader ends writing and returns a Reader on the store's own connection: how a store held in
// memory (loaded from JSONL) is queried. It commits what is buffered and analyses the tables
// first, so that the query planner knows their shape. Closing the Reader closes the Store.
func (s *Store) Reader() (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.reader {
		return nil, fmt.Errorf("store reader: %w", ErrClosed)
	}
	if err := s.raw(s.commitLocked); err != nil {
		return nil, fmt.Errorf("store reader: %w", err)
	}
	ctx := context.Background()
	if _, err := s.conn.ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, fmt.Errorf("store reader: analyze: %w", err)
	}
	s.reader = true
	r := &Reader{conn: s.conn, store: s}
	if err := r.lockDown(ctx); err != nil {
		return nil, fmt.Errorf("store reader: %w", err)
	}
	return r, nil
}

// lockDown sets query_only and installs the authorizer on the connection.
func (r *Reader) lockDown(ctx context.Context) error {
	if _, err := r.conn.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		return fmt.Errorf("set query_only: %w", err)
	}
	err := r.conn.Raw(func(dc any) error {
		reg, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("the sqlite driver (%T) has no authorizer", dc)
		}
		return reg.RegisterAuthorizer(r.authorize)
	})
	if err != nil {
		return fmt.Errorf("install authorizer: %w", err)
	}
	return nil
}

// authorize allows what reads and refuses the rest, remembering the first refusal.
func (r *Reader) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	case sqlite.AuthFunction:
		if !deniedFunctions[strings.ToLower(arg2)] {
			return sqlite.AuthorizerOK
		}
	case sqlite.AuthPragma:
		name := strings.ToLower(arg1)
		if readPragmas[name] || (readValuePragmas[name] && arg2 == "") {
			return sqlite.AuthorizerOK
		}
	}
	if r.denied == "" {
		r.denied = describeAction(action, arg1, arg2)
	}
	return sqlite.AuthorizerDeny
}

// describeAction names a refused action in the user's terms.
func describeAction(action sqlite.AuthorizerActionCode, arg1, arg2 string) string {
	if (action == sqlite.AuthInsert || action == sqlite.AuthUpdate || action == sqlite.AuthDelete) &&
		(arg1 == "sqlite_master" || arg1 == "sqlite_temp_master") {
		return "changing the schema (CREATE, DROP, ALTER, ANALYZE)"
	}
	switch action {
	case sqlite.AuthInsert:
		return "INSERT into " + arg1
	case sqlite.AuthUpdate:
		return "UPDATE of " + arg1
	case sqlite.AuthDelete:
		return "DELETE from " + arg1
	case sqlite.AuthAttach:
		return "ATTACH"
	case sqlite.AuthDetach:
		return "DETACH"
	case sqlite.AuthPragma:
		if arg2 != "" {
			return fmt.Sprintf("PRAGMA %s = %s", arg1, arg2)
		}
		return "PRAGMA " + arg1
	case sqlite.AuthFunction:
		return "the function " + arg2
	case sqlite.AuthTransaction:
		return arg1 + " (transactions)"
	case sqlite.AuthSavepoint:
		return "SAVEPOINT"
	case sqlite.AuthCreateIndex, sqlite.AuthCreateTable, sqlite.AuthCreateTempIndex, sqlite.AuthCreateTempTable,
		sqlite.AuthCreateTempTrigger, sqlite.AuthCreateTempView, sqlite.AuthCreateTrigger, sqlite.AuthCreateView,
		sqlite.AuthCreateVTable:
		return "CREATE " + arg1
	case sqlite.AuthDropIndex, sqlite.AuthDropTable, sqlite.AuthDropTempIndex, sqlite.AuthDropTempTable,
		sqlite.AuthDropTempTrigger, sqlite.AuthDropTempView, sqlite.AuthDropTrigger, sqlite.AuthDropView,
		sqlite.AuthDropVTable:
		return "DROP " + arg1
	case sqlite.AuthAlterTable:
		return "ALTER TABLE " + arg2
	case sqlite.AuthReindex:
		return "REINDEX"
	case sqlite.AuthAnalyze:
		return "ANALYZE"
	}
	return fmt.Sprintf("SQLite action %d", action)
}

// Query runs one read-only statement. A statement that would write, or any input with more
// than one statement, fails before anything runs: an error wrapping ErrReadOnly names what was
// refused.
func (r *Reader) Query(ctx context.Context, query string) (*sql.Rows, error) {
	if err := oneStatement(query); err != nil {
		return nil, err
	}
	r.denied = ""
	rows, err := r.conn.QueryContext(ctx, query)
	if err != nil {
		if r.denied != "" {
			return nil, fmt.Errorf("%s refused: %w", r.denied, ErrReadOnly)
		}
		if sqliteCode(err) == sqliteReadOnly {
			return nil, fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
		return nil, err
	}
	return rows, nil
}

// Close closes the connection (and the Store it reads).
func (r *Reader) Close() error {
	if r.store != nil {
		return r.store.Close()
	}
	err := r.conn.Close()
	if cerr := r.db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// oneStatement refuses input holding no statement or more than one: the driver would run
// every statement of a script, one after the other, and show the rows of the last.
func oneStatement(q string) error {
	end := statementEnd(q)
	if blank(q[:end]) {
		return errors.New("no SQL statement")
	}
	if !blank(q[end:]) {
		return errors.New("more than one SQL statement: give one at a time")
	}
	return nil
}

// statementEnd is the index just past the first ';' that ends a statement (outside strings,
// quoted names and comments), or len(q).
func statementEnd(q string) int {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case ';':
			return i + 1
		case '\'', '"', '`':
			i = closing(q, i+1, c)
		case '[':
			i = closing(q, i+1, ']')
		case '-':
			if i+1 < len(q) && q[i+1] == '-' {
				i = closing(q, i+2, '\n')
			}
		case '/':
			if i+1 < len(q) && q[i+1] == '*' {
				i = commentEnd(q, i+2)
			}
		}
	}
	return len(q)
}

// closing is the index of the c that closes what starts at i (a doubled quote is an escaped
// one, and continues), or len(q).
func closing(q string, i int, c byte) int {
	for ; i < len(q); i++ {
		if q[i] == c {
			if c != ']' && c != '\n' && i+1 < len(q) && q[i+1] == c {
				i++
				continue
			}
			return i
		}
	}
	return len(q)
}

// commentEnd is the index of the '/' that ends a block comment whose body starts at i.
func commentEnd(q string, i int) int {
	if j := strings.Index(q[i:], "*/"); j >= 0 {
		return i + j + 1
	}
	return len(q)
}

// blank reports whether s holds nothing but white space, comments and semicolons.
func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ';' || c < 0x80 && unicode.IsSpace(rune(c)):
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = closing(s, i+2, '\n')
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = commentEnd(s, i+2)
		default:
			return false
		}
	}
	return true
}

// sqliteCode is the primary result code of an SQLite error, 0 for other errors.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}
