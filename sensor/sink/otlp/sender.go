package otlp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// run is the sender: it sends batches one at a time, oldest first (ready before the spool, see
// hand), and seals the batch being built once it is MaxDelay old. After Close it keeps sending
// until nothing is left or Close's deadline cancels ctx; then it spools what it holds.
func (e *Exporter) run() {
	defer close(e.done)
	tick := time.NewTicker(e.o.MaxDelay)
	defer tick.Stop()
	stopping := false
	for {
		b := e.next()
		if b == nil {
			if stopping {
				return // all sent
			}
			select {
			case b = <-e.ready:
			case <-e.wake:
				continue
			case now := <-tick.C:
				e.sealOld(now)
				continue
			case <-e.stop:
				stopping = true
				continue
			}
		}
		if !e.send(b) {
			e.keep(b)
			return
		}
		if b.spooled {
			e.commit(b.count)
		}
	}
}

// next takes a batch without waiting: ready first, then the spool's oldest.
func (e *Exporter) next() *batch {
	select {
	case b := <-e.ready:
		return b
	default:
	}
	for {
		payload, count, lost, err := e.sp.peek()
		if lost > 0 {
			e.drop(DropSpoolCorrupt, lost, err)
		} else if err != nil {
			e.setLastErr(err)
			return nil
		}
		if payload == nil {
			if err != nil {
				continue // a cut segment: look at the next
			}
			return nil
		}
		b, err := decodeBatch(payload)
		if err == nil && b.count != count {
			err = fmt.Errorf("%d records, its frame says %d", b.count, count)
		}
		if err != nil {
			e.drop(DropSpoolCorrupt, uint64(count), fmt.Errorf("spooled batch: %w", err))
			e.commit(count)
			continue
		}
		b.spooled = true
		return b
	}
}

// commit marks the spool's oldest batch sent (or given up on).
func (e *Exporter) commit(count int) {
	if err := e.sp.commit(count); err != nil {
		e.setLastErr(err) // the batch went; at worst the next run sends it again
		e.o.Log.Warn().Err(err).Msg("otlp: spool cursor not saved")
	}
}

// send sends b until the endpoint takes it or refuses it for good (true), or until Close's
// deadline (false: b is still to send). Between tries it waits with exponential backoff, or
// as long as the server asked.
func (e *Exporter) send(b *batch) bool {
	for try := 1; ; try++ {
		if e.ctx.Err() != nil {
			return false
		}
		b.attempt++
		if b.attempt > 1 {
			e.retried.Add(uint64(b.count))
		}
		// Assembled for each try: the attempt is an argument, never left from the last one.
		req := requestBytes(e.env, b, b.attempt)
		ctx, cancel := context.WithTimeout(e.ctx, e.o.Timeout)
		rejected, msg, err := e.tr.export(ctx, req)
		cancel()
		if err == nil {
			n := int64(b.count)
			if rejected > n || rejected < 0 {
				rejected = n
			}
			e.sent.Add(uint64(n - rejected))
			if rejected > 0 {
				e.drop(DropPartial, uint64(rejected), fmt.Errorf("endpoint rejected %d of %d records: %s", rejected, n, msg))
			}
			return true
		}
		e.setLastErr(err)
		var xe *exportError
		if errors.As(err, &xe) && xe.permanent {
			e.drop(DropRejected, uint64(b.count), err)
			return true
		}
		if e.ctx.Err() != nil {
			// Cut off by Close. The try counts: the request may have arrived, and the next
			// run's send of this batch must say it may be a duplicate.
			return false
		}
		var after time.Duration
		if xe != nil {
			after = min(xe.retryAfter, e.o.MaxBackoff)
		}
		wait := backoff(try, e.o.MinBackoff, e.o.MaxBackoff, after)
		if try == 1 {
			e.o.Log.Warn().Err(err).Dur("retry_in", wait).Int("records", b.count).Msg("otlp: export failed, retrying")
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			return false
		}
	}
}

// keep puts what the sender still holds at Close's deadline (b, and the batches in ready
// behind it) before everything in the spool: they are older. A batch that came from the
// spool is still there.
func (e *Exporter) keep(b *batch) {
	var held []*batch
	if !b.spooled {
		held = append(held, b)
	}
	for {
		select {
		case r := <-e.ready:
			held = append(held, r)
			continue
		default:
		}
		break
	}
	if len(held) == 0 {
		return
	}
	payloads := make([][]byte, 0, len(held))
	counts := make([]int, 0, len(held))
	for _, h := range held {
		payloads, counts = append(payloads, encodeBatch(h)), append(counts, h.count)
	}
	if lost, err := e.sp.prepend(payloads, counts); err != nil {
		e.drop(DropSpoolError, lost, fmt.Errorf("spool what Close could not send: %w", err))
	}
}

func (e *Exporter) setLastErr(err error) {
	s := err.Error()
	e.lastErr.Store(&s)
}
