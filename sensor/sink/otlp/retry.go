package otlp

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// exportError is a failed export, classified as the OTLP specification says: permanent (the
// server will never take this batch: it is dropped and counted) or retryable, with the delay
// the server asked for, if it did.
type exportError struct {
	err        error
	permanent  bool
	retryAfter time.Duration
}

func (e *exportError) Error() string { return e.err.Error() }
func (e *exportError) Unwrap() error { return e.err }

// retryableHTTP are the status codes OTLP/HTTP says to retry (with Retry-After when given);
// every other failure status is permanent.
func retryableHTTP(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the wait before try n+1 of a batch (n >= 1): exponential from lo, capped at
// hi, with full jitter over its upper half so that many sensors cut off by one collector
// outage do not come back in step. A server's requested delay wins (the caller caps it).
func backoff(n int, lo, hi, requested time.Duration) time.Duration {
	if requested > 0 {
		return requested
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d = time.Duration(float64(d) * (0.5 + rand.Float64()/2))
	return d
}
