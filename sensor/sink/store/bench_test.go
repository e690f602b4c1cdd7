package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// The store's benchmarks (make bench-store runs them on one core; bench/results/store.md
// reports a run):
//
//   - BenchmarkStoreWrite: lines written per second, and per second of CPU, in batches of
//     1000 lines (a busy pipeline's flush) and of maxBatch, into a database that grows to
//     b.N lines;
//   - BenchmarkStoreSize: the database's bytes per line for a million lines, beside the
//     JSONL's, and what a column holding each whole line would add;
//   - BenchmarkStoreQuery: the README's queries, a tool call's events and a count by action
//     on a million lines;
//   - BenchmarkStoreRetention: a million lines into a 64 MiB bound, the file's size measured
//     after every batch.

// million is the number of lines of the size, query and retention benchmarks.
const million = 1_000_000

// cpuTime is the CPU time the process has used (user and system).
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkStoreWrite(b *testing.B) {
	for _, batch := range []int{1000, maxBatch} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			s := openTemp(b, Options{})
			w := newWorkload(1)
			events := make([]*proto.Event, batch)
			var cpu time.Duration
			b.ResetTimer()
			b.StopTimer()
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				for i := range n {
					events[i] = w.next()
				}
				c0 := cpuTime(b)
				b.StartTimer()
				for _, e := range events[:n] {
					if err := s.Write(e); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime(b) - c0
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
		})
	}
}

// millionStore is a database of a million workload lines, written once per test binary.
var millionStore struct {
	once       sync.Once
	dir, path  string
	jsonlBytes int64 // the lines as JSONL
	err        error
}

func writeMillion(b *testing.B) string {
	b.Helper()
	m := &millionStore
	m.once.Do(func() {
		if m.dir, m.err = os.MkdirTemp("", "vigil-store-bench"); m.err != nil {
			return
		}
		m.path = filepath.Join(m.dir, "vigil.db")
		var s *Store
		if s, m.err = Open(Options{Path: m.path}); m.err != nil {
			return
		}
		w := newWorkload(1)
		var line []byte
		for i := range million {
			e := w.next()
			if line, m.err = proto.AppendLine(line[:0], e); m.err != nil {
				return
			}
			m.jsonlBytes += int64(len(line))
			if m.err = s.Write(e); m.err != nil {
				return
			}
			if i%1000 == 999 {
				if m.err = s.Flush(); m.err != nil {
					return
				}
			}
		}
		m.err = s.Close()
	})
	if m.err != nil {
		b.Fatal(m.err)
	}
	return m.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if millionStore.dir != "" {
		os.RemoveAll(millionStore.dir)
	}
	os.Exit(code)
}

// BenchmarkStoreSize reports bytes per line: the database (closed, so its WAL is checkpointed
// into it), the JSONL of the same lines, and a table of the lines' JSON alone, which is what a
// raw column beside the others would add.
func BenchmarkStoreSize(b *testing.B) {
	path := writeMillion(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	// The raw lines in a table of their own, as a column would hold them.
	rawPath := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", fileURI(rawPath, ""))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE raw (line TEXT)"); err != nil {
		b.Fatal(err)
	}
	w := newWorkload(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.PrepareContext(ctx, "INSERT INTO raw (line) VALUES (?)")
	if err != nil {
		b.Fatal(err)
	}
	var line []byte
	for range million {
		if line, err = proto.AppendLine(line[:0], w.next()); err != nil {
			b.Fatal(err)
		}
		if _, err := ins.ExecContext(ctx, string(line)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	raw, err := os.Stat(rawPath)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() { // the work above is done once, whatever the benchtime
	}
	b.ReportMetric(float64(fi.Size())/million, "store-B/event")
	b.ReportMetric(float64(millionStore.jsonlBytes)/million, "jsonl-B/event")
	b.ReportMetric(float64(raw.Size())/million, "raw-column-B/event")
}

// readmeQueries are the SQL examples of README.md, in order.
func readmeQueries(tb testing.TB) []string {
	tb.Helper()
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllSubmatch(data, -1) {
		out = append(out, string(m[1]))
	}
	if len(out) != 2 {
		tb.Fatalf("README.md has %d sql examples, want 2", len(out))
	}
	return out
}

// BenchmarkStoreQuery runs the README's queries, a tool call's events and a count by action
// on a million lines,
// through a Reader as `vigil query --db` does (opened once: the process start and the open
// are not the query).
func BenchmarkStoreQuery(b *testing.B) {
	path := writeMillion(b)
	readme := readmeQueries(b)
	r, err := OpenReadOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for _, q := range []struct{ name, sql string }{
		{"ssh_key_readers", readme[0]},
		{"unapproved_connects", readme[1]},
		// A tool call's events in order, the call the workload ran last (~120 lines).
		{"tool_call_events", `SELECT * FROM events WHERE tool_call_id =
			(SELECT id FROM tool_calls ORDER BY ended_at DESC LIMIT 1) ORDER BY id`},
		// Whole-table aggregates: on the view, SQLite joins every row to its process, path
		// and ids (it omits unused LEFT JOINs in plain queries, not in aggregates); on
		// event_rows, the table behind it, it reads the action index alone.
		{"count_by_action", "SELECT action, count(*) FROM events GROUP BY action"},
		{"count_by_action_rows", "SELECT action, count(*) FROM event_rows GROUP BY action"},
	} {
		b.Run(q.name, func(b *testing.B) {
			var n int
			for range b.N {
				n = drain(b, r, q.sql)
			}
			b.ReportMetric(float64(n), "rows")
		})
	}
}

// drain runs q and reads every row, returning how many.
func drain(b *testing.B, r *Reader, q string) int {
	rows, err := r.Query(context.Background(), q)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		b.Fatal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkStoreRetention writes a million lines into a 64 MiB bound and reports the largest
// size the database and its WAL reached (measured after every batch), the size at the end,
// and how many lines were evicted.
func BenchmarkStoreRetention(b *testing.B) {
	const bound = 64 << 20
	path := filepath.Join(b.TempDir(), "vigil.db")
	s := openTemp(b, Options{Path: path, MaxBytes: bound})
	w := newWorkload(1)
	var largest int64
	for i := range million {
		if err := s.Write(w.next()); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			size, err := fileBytes(path)
			if err != nil {
				b.Fatal(err)
			}
			largest = max(largest, size)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	final, err := fileBytes(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() { // the work above is done once, whatever the benchtime
	}
	st := s.Stats()
	b.ReportMetric(float64(largest)/(1<<20), "max-MiB")
	b.ReportMetric(float64(final)/(1<<20), "final-MiB")
	b.ReportMetric(float64(st.Evicted), "evicted")
	b.ReportMetric(float64(million-st.Evicted), "kept")
}
