package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Retention runs from Flush, on the pipeline's goroutine. The size is checked at every
// Flush (it costs a page count); the age every retainEvery. One pass deletes at most
// maxEvictPerPass events, in transactions of evictChunk at most, so that the sink never stalls
// the pipeline for long; a pass that stops short of the bound makes the next Flush run another.
const (
	retainEvery     = 10 * time.Second
	maxEvictPerPass = 50000
	evictChunk      = 10000
	minEvictChunk   = 500
)

// lowWaterPercent is where size eviction stops, as a share of the target: deleting a little
// more than needed leaves room for the next batches instead of evicting at every Flush.
const lowWaterPercent = 90

// retention is when the store last checked the age bound, and whether it owes another pass.
type retention struct {
	lastAge time.Time
	more    bool
}

// retainLocked deletes the events older than MaxAge, then the oldest events while the
// database is over its size target, and then the rows only those events used. The freed
// pages are given back to the file system (auto_vacuum=INCREMENTAL), so the file shrinks
// rather than only stopping to grow. atOpen lifts the per-pass budget: a bound lowered in the
// configuration applies at once.
func (s *Store) retainLocked(atOpen bool) error {
	ctx := context.Background()
	now := s.opts.Now()
	budget := int64(maxEvictPerPass)
	if atOpen {
		budget = 1 << 62
	}
	var evicted int64
	if s.opts.MaxAge > 0 && (atOpen || s.retain.more || now.Sub(s.retain.lastAge) >= retainEvery) {
		s.retain.lastAge = now
		cutoff := now.Add(-s.opts.MaxAge).UTC().Format(proto.TimeLayout)
		for budget > 0 {
			n, err := s.execCount(ctx, `DELETE FROM event_rows WHERE id IN
				(SELECT id FROM event_rows WHERE timestamp < ? ORDER BY timestamp LIMIT ?)`, cutoff, min(evictChunk, budget))
			if err != nil {
				return fmt.Errorf("retention: delete events older than %s: %w", cutoff, err)
			}
			evicted, budget = evicted+n, budget-n
			if n < evictChunk {
				break
			}
		}
	}
	over := false
	if s.opts.MaxBytes > 0 {
		n, stillOver, err := s.evictForSizeLocked(ctx, budget)
		if err != nil {
			return err
		}
		evicted, budget, over = evicted+n, budget-n, stillOver
	}
	s.retain.more = budget <= 0 || over
	s.stats.Evicted += uint64(evicted)
	if evicted > 0 {
		if err := s.dropOrphansLocked(ctx, now); err != nil {
			return err
		}
		// Give the free pages back, and checkpoint so that the shrink reaches the file now.
		// PASSIVE never waits for a reader (`vigil query`); a later checkpoint finishes.
		for _, q := range []string{"PRAGMA incremental_vacuum", "PRAGMA wal_checkpoint(PASSIVE)"} {
			if _, err := s.conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("retention: %s: %w", q, err)
			}
		}
		// ANALYZE statistics follow the tables' new shape (cheap: analysis_limit).
		if _, err := s.conn.ExecContext(ctx, "PRAGMA optimize"); err != nil {
			return fmt.Errorf("retention: optimize: %w", err)
		}
	}
	size, err := fileBytes(s.opts.Path)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	s.stats.Bytes = size
	return nil
}

// walBytes is the room the -wal file may take: walLimitBytes, or half a smaller size bound.
func (s *Store) walBytes() int64 {
	if s.opts.MaxBytes == 0 {
		return walLimitBytes
	}
	return min(walLimitBytes, s.opts.MaxBytes/2)
}

// sizeTarget is the most the database file may hold: MaxBytes less the -wal file's room.
func (s *Store) sizeTarget() int64 {
	return s.opts.MaxBytes - s.walBytes()
}

// evictForSizeLocked deletes the oldest events (by id: the order they were written) while the
// database's pages exceed its target, until the pages in use are under the low-water mark.
// Deleting rows frees whole table pages but leaves index pages part empty, so it measures
// again after each chunk instead of trusting an estimate. over says the budget ran out first.
func (s *Store) evictForSizeLocked(ctx context.Context, budget int64) (evicted int64, over bool, err error) {
	target := s.sizeTarget()
	low := target / 100 * lowWaterPercent
	if !s.retain.more {
		// The files hold every committed page (a page past the database file's end is in the
		// -wal file), so files under the target need no page count: two stat(2) calls instead
		// of a query (~100 µs, at every Flush of a busy store).
		files, err := fileBytes(s.opts.Path)
		if err != nil {
			return 0, false, fmt.Errorf("retention: %w", err)
		}
		if files <= target {
			return 0, false, nil
		}
	}
	total, used, err := s.pagesLocked(ctx)
	if err != nil {
		return 0, false, err
	}
	if total <= target && !s.retain.more {
		return 0, false, nil
	}
	for used > low {
		if budget <= 0 {
			return evicted, true, nil
		}
		var rows int64
		if err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM event_rows").Scan(&rows); err != nil {
			return evicted, false, fmt.Errorf("retention: count events: %w", err)
		}
		if rows == 0 {
			break // no event left: what remains is the other tables, whose orphans go next
		}
		perRow := max(used/rows, 1)
		chunk := min(max((used-low)/perRow, minEvictChunk), evictChunk, budget)
		n, err := s.execCount(ctx, `DELETE FROM event_rows WHERE id IN (SELECT id FROM event_rows ORDER BY id LIMIT ?)`, chunk)
		if err != nil {
			return evicted, false, fmt.Errorf("retention: delete the oldest events: %w", err)
		}
		evicted, budget = evicted+n, budget-n
		if _, used, err = s.pagesLocked(ctx); err != nil {
			return evicted, false, err
		}
	}
	return evicted, false, nil
}

// pagesLocked returns the database's size and the part of it in use (not on the free list),
// in bytes.
func (s *Store) pagesLocked(ctx context.Context) (total, used int64, err error) {
	var pages, free, size int64
	if err := s.conn.QueryRowContext(ctx, "SELECT page_count, freelist_count, page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size").
		Scan(&pages, &free, &size); err != nil {
		return 0, 0, fmt.Errorf("retention: measure the database: %w", err)
	}
	return pages * size, (pages - free) * size, nil
}

// dropOrphansLocked deletes the rows no remaining event needs: sessions, prompts, tool calls
// older than the oldest event that no event (or call, or prompt) refers to any more, alerts
// whose event is gone, and the processes, paths and ids rows no event points at. The remembered
// ids are forgotten, since some may be gone.
func (s *Store) dropOrphansLocked(ctx context.Context, now time.Time) error {
	var oldest sql.NullString
	if err := s.conn.QueryRowContext(ctx, "SELECT min(timestamp) FROM event_rows").Scan(&oldest); err != nil {
		return fmt.Errorf("retention: oldest event: %w", err)
	}
	before := now.UTC().Format(proto.TimeLayout)
	if oldest.Valid {
		before = oldest.String
	}
	records := []struct{ what, sql string }{
		{"tool calls", `DELETE FROM tool_calls WHERE ended_at < ?1
			AND NOT EXISTS (SELECT 1 FROM ids i JOIN event_rows e ON e.call_ref = i.id WHERE i.value = tool_calls.id)`},
		{"prompts", `DELETE FROM prompts WHERE timestamp < ?1
			AND NOT EXISTS (SELECT 1 FROM ids i JOIN event_rows e ON e.prompt_ref = i.id WHERE i.value = prompts.id)
			AND NOT EXISTS (SELECT 1 FROM tool_calls t WHERE t.prompt_id = prompts.id)`},
		{"sessions", `DELETE FROM sessions WHERE coalesce(resumed_at, started_at) < ?1
			AND NOT EXISTS (SELECT 1 FROM ids i JOIN event_rows e ON e.session_ref = i.id WHERE i.value = sessions.id)
			AND NOT EXISTS (SELECT 1 FROM prompts p WHERE p.session_id = sessions.id)
			AND NOT EXISTS (SELECT 1 FROM tool_calls t WHERE t.session_id = sessions.id)`},
		{"alerts", `DELETE FROM alerts WHERE timestamp < ?1
			AND NOT EXISTS (SELECT 1 FROM event_rows e WHERE e.id = alerts.event_id)`},
	}
	for _, r := range records {
		n, err := s.execCount(ctx, r.sql, before)
		if err != nil {
			return fmt.Errorf("retention: delete orphaned %s: %w", r.what, err)
		}
		s.stats.EvictedRecords += uint64(n)
	}
	for _, q := range []string{
		`DELETE FROM processes WHERE NOT EXISTS (SELECT 1 FROM event_rows e WHERE e.process_id = processes.id)`,
		`DELETE FROM paths WHERE NOT EXISTS (SELECT 1 FROM event_rows e WHERE e.path_id = paths.id)`,
		`DELETE FROM ids WHERE NOT EXISTS (SELECT 1 FROM event_rows e WHERE e.session_ref = ids.id)
			AND NOT EXISTS (SELECT 1 FROM event_rows e WHERE e.prompt_ref = ids.id)
			AND NOT EXISTS (SELECT 1 FROM event_rows e WHERE e.call_ref = ids.id)`,
	} {
		if _, err := s.conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("retention: delete unused processes, paths and ids: %w", err)
		}
	}
	s.forgetIDsLocked()
	return nil
}

// execCount runs a statement and returns the rows it changed.
func (s *Store) execCount(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.conn.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// fileBytes is the size of the database file and its -wal file together.
func fileBytes(path string) (int64, error) {
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("measure %s: %w", p, err)
		}
		total += fi.Size()
	}
	return total, nil
}
