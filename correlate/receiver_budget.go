package correlate

// The memory OTLP requests may hold at once. Each request reserves what its body and decoded
// message can take before a byte of it is read; a request that finds no room waits briefly,
// then is refused as busy (HTTP 503 with Retry-After, gRPC Unavailable), both of which OTLP
// exporters retry. Without it, 64 concurrent 7.9 MiB posts took the sensor to 1.4 GiB.

import (
	"context"
	"time"

	"golang.org/x/sync/semaphore"
)

const (
	// bodyCostFactor: a request costs its body plus the message decoded from it, measured at
	// about 1.5 times the body for OTLP protobuf; 2 leaves room.
	bodyCostFactor = 2
	// smallBodyBytes: bodies declared at most this large draw on their own pool, so that
	// large posts (an attacker's, or a long session flushed at once) cannot hold up the
	// agents' usual 2–36 KiB batches.
	smallBodyBytes = 1 << 20
	// smallPoolBytes and largePoolBytes are the two pools: at most 8 small requests of the
	// full small size and 2 of MaxBodyBytes in flight, 48 MiB in all.
	smallPoolBytes = 8 * bodyCostFactor * smallBodyBytes
	largePoolBytes = 2 * bodyCostFactor * MaxBodyBytes
	// budgetWait is how long an HTTP request waits for room before it is refused.
	budgetWait = 2 * time.Second
)

// bodyBudget is the two pools.
type bodyBudget struct {
	small, large *semaphore.Weighted
}

func newBodyBudget() *bodyBudget {
	return &bodyBudget{small: semaphore.NewWeighted(smallPoolBytes), large: semaphore.NewWeighted(largePoolBytes)}
}

// pool picks the pool and the cost of a body of declared size (< 0: unknown, so the most
// it may inflate or stream to, MaxBodyBytes).
func (b *bodyBudget) pool(declared int64) (*semaphore.Weighted, int64) {
	if declared >= 0 && declared <= smallBodyBytes {
		return b.small, bodyCostFactor * max(declared, 1)
	}
	return b.large, bodyCostFactor * MaxBodyBytes
}

// acquire reserves room for a body of declared size, waiting at most until ctx ends; it
// returns the release function, or nil when there was no room.
func (b *bodyBudget) acquire(ctx context.Context, declared int64) func() {
	sem, cost := b.pool(declared)
	if err := sem.Acquire(ctx, cost); err != nil {
		return nil
	}
	return func() { sem.Release(cost) }
}

// tryAcquire is acquire without waiting (gRPC's tap runs on the connection's reader).
func (b *bodyBudget) tryAcquire(declared int64) func() {
	sem, cost := b.pool(declared)
	if !sem.TryAcquire(cost) {
		return nil
	}
	return func() { sem.Release(cost) }
}
