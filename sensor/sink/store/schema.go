package store

// schemaVersion is the database's PRAGMA user_version once the schema below is in place. A
// database with a higher version was written by a newer Vigil and is refused rather than
// written into with statements that no longer match it.
const schemaVersion = 2

// migrations bring a database of an older version to the next: migrations[v] turns version v
// into v+1, in one transaction with the new user_version (migrate). A database is only ever
// changed by adding: old rows read NULL in the new columns.
var migrations = map[int]string{
	// 1 → 2: merged open lines (vigil.merged): the count and the first and last repeat as
	// columns of event_rows and of the events view, which is recreated with them.
	1: `ALTER TABLE event_rows ADD COLUMN merged_count INTEGER;
ALTER TABLE event_rows ADD COLUMN merged_first TEXT;
ALTER TABLE event_rows ADD COLUMN merged_last TEXT;
DROP VIEW events;
` + eventsView,
}

// schema creates the tables, indexes and the events view of a new database. docs/schema.md
// ("Store") documents every column; keep the two together.
//
// The JSONL lines repeat a process's executable, argv, working directory, hash, parent and
// root on every line it causes (an open-heavy tree writes the same ~500 bytes thousands of
// times), and a few file paths make up most opens. So a line is stored as a narrow row of
// event_rows pointing at a deduplicated processes row, paths row and ids rows (the session,
// prompt and tool-call ids), and the events view joins them back into the columns the JSONL
// has. Readers query events; only the store writes the tables behind it.
//
// Small integers in place of those strings also make the indexes cheap to keep: ids are
// handed out in the order they are first seen, so a new session or call lands at the end of
// its index, and a line of the current call next to the previous one, instead of at a random
// place (measured: each random text index cost ~1.5 µs a line, most of the write).
//
// An event row's id is its run's id shifted left by 40 bits plus its event.sequence, so the
// line a binding record names (run, sequence) is found by its rowid, with no index, and ids
// grow in the order lines were written, across runs. A run holds up to 2^40 lines.
//
// Timestamps are TEXT in proto.TimeLayout (fixed width, UTC), so they compare and sort as
// text, read as they do in the JSONL, and work with SQLite's date functions. They are
// declared TEXT, not DATETIME, so that the driver hands them back as written.
//
// Absent values are NULL, never "" or 0. Indexes on columns that are mostly NULL are partial
// (WHERE ... IS NOT NULL): an equality or join on the column still uses them, and unbound
// events cost them nothing.
const schema = `
CREATE TABLE runs (
	id         INTEGER PRIMARY KEY,
	started_at TEXT NOT NULL,
	host_name  TEXT,
	boot_id    TEXT
);

CREATE TABLE processes (
	id                INTEGER PRIMARY KEY,
	boot_id           TEXT,
	entity_id         TEXT,
	pid               INTEGER,
	name              TEXT,
	executable        TEXT,
	args              TEXT,
	args_count        INTEGER,
	cwd               TEXT,
	sha256            TEXT,
	start             TEXT,
	parent_pid        INTEGER,
	parent_entity_id  TEXT,
	parent_executable TEXT,
	parent_name       TEXT,
	user_id           TEXT,
	user_name         TEXT,
	group_id          TEXT,
	root_pid          INTEGER,
	root_entity_id    TEXT,
	agent             TEXT
);
CREATE INDEX processes_entity_id ON processes(entity_id) WHERE entity_id IS NOT NULL;

CREATE TABLE paths (
	id   INTEGER PRIMARY KEY,
	path TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL
);
CREATE INDEX paths_name ON paths(name);

CREATE TABLE ids (
	id    INTEGER PRIMARY KEY,
	value TEXT NOT NULL UNIQUE
);

CREATE TABLE event_rows (
	id                  INTEGER PRIMARY KEY,
	timestamp           TEXT NOT NULL,
	action              TEXT NOT NULL,
	kind                TEXT,
	outcome             TEXT,
	errno               INTEGER,
	process_id          INTEGER,
	tid                 INTEGER,
	exit_code           INTEGER,
	path_id             INTEGER,
	file_access         TEXT,
	flags               TEXT,
	path_source         TEXT,
	destination_ip      TEXT,
	destination_port    INTEGER,
	destination_address TEXT,
	session_ref         INTEGER,
	prompt_ref          INTEGER,
	call_ref            INTEGER,
	tool_name           TEXT,
	binding             TEXT,
	confidence          TEXT,
	binds_seq           INTEGER,
	recovered           INTEGER,
	source              TEXT,
	extra               TEXT,
	merged_count        INTEGER,
	merged_first        TEXT,
	merged_last         TEXT
);
CREATE INDEX event_rows_timestamp ON event_rows(timestamp);
CREATE INDEX event_rows_action ON event_rows(action);
CREATE INDEX event_rows_path_id ON event_rows(path_id) WHERE path_id IS NOT NULL;
CREATE INDEX event_rows_process_id ON event_rows(process_id) WHERE process_id IS NOT NULL;
CREATE INDEX event_rows_session_ref ON event_rows(session_ref) WHERE session_ref IS NOT NULL;
CREATE INDEX event_rows_prompt_ref ON event_rows(prompt_ref) WHERE prompt_ref IS NOT NULL;
CREATE INDEX event_rows_call_ref ON event_rows(call_ref) WHERE call_ref IS NOT NULL;

` + eventsView + `
CREATE TABLE sessions (
	id                TEXT PRIMARY KEY,
	agent             TEXT,
	started_at        TEXT NOT NULL,
	resumed_at        TEXT,
	root_pid          INTEGER,
	root_entity_id    TEXT,
	cwd               TEXT,
	sender_pid        INTEGER,
	sender_executable TEXT,
	transport         TEXT,
	run_id            INTEGER
);

CREATE TABLE prompts (
	id         TEXT PRIMARY KEY,
	session_id TEXT,
	agent      TEXT,
	timestamp  TEXT NOT NULL,
	text       TEXT,
	sender_pid INTEGER,
	transport  TEXT,
	run_id     INTEGER
);
CREATE INDEX prompts_session_id ON prompts(session_id);

CREATE TABLE tool_calls (
	id              TEXT PRIMARY KEY,
	session_id      TEXT,
	prompt_id       TEXT,
	agent           TEXT,
	tool_name       TEXT,
	command         TEXT,
	file_paths      TEXT,
	decision        TEXT,
	decision_source TEXT,
	success         INTEGER,
	outcome         TEXT,
	duration_ms     INTEGER,
	started_at      TEXT,
	ended_at        TEXT NOT NULL,
	sender_pid      INTEGER,
	transport       TEXT,
	reports         INTEGER NOT NULL,
	run_id          INTEGER
);
CREATE INDEX tool_calls_session_id ON tool_calls(session_id);
CREATE INDEX tool_calls_prompt_id ON tool_calls(prompt_id);

CREATE TABLE alerts (
	id           INTEGER PRIMARY KEY,
	event_id     INTEGER,
	timestamp    TEXT NOT NULL,
	rule_id      TEXT NOT NULL,
	rule_name    TEXT,
	severity     TEXT,
	session_id   TEXT,
	prompt_id    TEXT,
	tool_call_id TEXT,
	root_pid     INTEGER,
	evidence     TEXT
);
CREATE INDEX alerts_timestamp ON alerts(timestamp);
CREATE INDEX alerts_event_id ON alerts(event_id);
`

// eventsView joins a line's row back into the columns its JSONL line has (schema).
const eventsView = `CREATE VIEW events AS
SELECT e.id, e.id >> 40 AS run_id, e.id & 1099511627775 AS seq, e.timestamp, e.action, e.kind, e.outcome, e.errno,
	p.pid, p.entity_id, e.tid, p.name, p.executable, p.args, p.args_count, p.cwd, p.sha256, p.start,
	p.parent_pid, p.parent_entity_id, p.parent_executable, p.parent_name,
	p.user_id, p.user_name, p.group_id, p.root_pid, p.root_entity_id, p.agent, p.boot_id,
	e.exit_code, f.path AS file_path, f.name AS file_name, e.file_access, e.flags, e.path_source,
	e.destination_ip, e.destination_port, e.destination_address,
	s.value AS session_id, pr.value AS prompt_id, c.value AS tool_call_id, e.tool_name, e.binding, e.confidence,
	e.binds_seq, e.recovered, e.source, e.process_id, e.extra, e.merged_count, e.merged_first, e.merged_last
FROM event_rows e
LEFT JOIN processes p ON p.id = e.process_id
LEFT JOIN paths f ON f.id = e.path_id
LEFT JOIN ids s ON s.id = e.session_ref
LEFT JOIN ids pr ON pr.id = e.prompt_ref
LEFT JOIN ids c ON c.id = e.call_ref;
`
