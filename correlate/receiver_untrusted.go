package correlate

import (
	"sync"
	"time"
)

// Bodies from a sender no agent vouches for (an outsider, a tool shell posting OTLP) draw,
// before a byte of them is read, on a byte rate of their own. Decoding and redacting them
// costs CPU that the sensor's one core shares with the kernel pipeline: before this, 16
// outsiders posting 1 MiB bodies of 100 KiB prompts made a tracked loop of 50k opens a
// second lose 58–78% of its opens (the ring overflowed while the sensor read their prompts).
// Past the rate a request is refused as busy (HTTP 503 with Retry-After), counted as
// RejectUntrustedBusy. An agent's own telemetry never draws on it.
const (
	// DefaultUntrustedBytesPerSecond is the rate when ReceiverOptions leave it 0.
	DefaultUntrustedBytesPerSecond = 256 << 10
	// untrustedBurstSeconds: the bucket holds this many seconds of the rate.
	untrustedBurstSeconds = 8
)

// byteRate is a token bucket of bytes.
type byteRate struct {
	mu              sync.Mutex
	tokens          float64
	last            time.Time
	perSecond, most float64
}

func newByteRate(perSecond, most int) *byteRate {
	return &byteRate{tokens: float64(most), perSecond: float64(perSecond), most: float64(most)}
}

// take takes n bytes' worth of tokens at now, or nothing when there are not enough. A body
// larger than the bucket (or of unknown size, n < 0) needs the bucket full and empties it.
func (b *byteRate) take(n int64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.most, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
	}
	b.last = now
	need := float64(n)
	if n < 0 || need > b.most {
		need = b.most
	}
	if b.tokens < need {
		return false
	}
	b.tokens -= need
	return true
}

// untrustedRoom reports whether a request from cp's sender may be read: always when Vouch
// vouches for the sender, else when the untrusted byte rate has room for its declared size.
func (r *Receiver) untrustedRoom(cp *connPeer, declared int64) bool {
	if r.o.Vouch == nil {
		return true
	}
	if cp != nil {
		if pid, start := r.sender(cp); pid > 0 && r.o.Vouch(pid, start) {
			return true
		}
	}
	return r.untrustedRate.take(declared, time.Now())
}
