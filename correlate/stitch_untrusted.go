package correlate

import "time"

// Untrusted telemetry is kept, flagged and never bound; but a sender outside every agent
// tree must not be able to write as many lines as it likes: an outsider wrote ~35 MB/s of
// them and rotated the retained log away in seconds. Each sender gets a token bucket; past
// it, its events are counted, and one summary line per second names the sender and how many
// were left out (vigil.telemetry.suppressed). Every untrusted event is a line or a count.
const (
	untrustedPerSecond = 20
	untrustedBurst     = 100
	// maxUntrustedSenders bounds the buckets kept; past it the newest senders share one.
	maxUntrustedSenders = 4096
	// untrustedIdle: a bucket full again and with nothing to report is forgotten after this.
	untrustedIdle = time.Minute
)

// untrustedKey names a sender: pid and start time as the kernel reported them.
type untrustedKey struct {
	pid   int
	start uint64
}

// untrustedSender is one sender's bucket and what it has not yet reported.
type untrustedSender struct {
	tokens     float64
	last       time.Time
	suppressed uint64
	summarised time.Time
	transport  string
}

// allowUntrusted takes a token from b's sender, or counts the event as suppressed.
func (s *Stitcher) allowUntrusted(b TelemetryBatch, now time.Time) bool {
	key := untrustedKey{b.SenderPid, b.SenderStartBootNs}
	u := s.untrusted[key]
	if u == nil {
		if len(s.untrusted) >= maxUntrustedSenders {
			key = untrustedKey{} // every further sender shares the unnamed bucket
			u = s.untrusted[key]
		}
		if u == nil {
			u = &untrustedSender{tokens: untrustedBurst, last: now, summarised: now}
			s.untrusted[key] = u
		}
	}
	u.transport = b.Transport
	u.tokens = min(untrustedBurst, u.tokens+now.Sub(u.last).Seconds()*untrustedPerSecond)
	u.last = now
	if u.tokens >= 1 {
		u.tokens--
		return true
	}
	u.suppressed++
	s.stats.UntrustedSuppressed++
	return false
}

// summariseUntrusted emits, for each sender with events left out, one line saying how many,
// at most once a second per sender (every time when all), and forgets idle senders.
func (s *Stitcher) summariseUntrusted(now time.Time, all bool) {
	for key, u := range s.untrusted {
		if u.suppressed > 0 && (all || now.Sub(u.summarised) >= time.Second) {
			e := untrustedEvent(now, u.transport, key.pid)
			e.Vigil.Telemetry.Suppressed = u.suppressed
			s.emit(e, "")
			u.suppressed, u.summarised = 0, now
		}
		if u.suppressed == 0 && now.Sub(u.last) >= untrustedIdle {
			delete(s.untrusted, key)
		}
	}
}
