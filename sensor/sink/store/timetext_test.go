package store

import (
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

func TestTimeText(t *testing.T) {
	var c timeText
	base := time.Date(2026, 12, 5, 14, 12, 59, 999_999_999, time.FixedZone("x", 3600))
	for _, tm := range []time.Time{
		base, base, base.Add(1), base.Add(time.Nanosecond * 1001), base.Add(-time.Second), base.Add(24 * time.Hour),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 7, time.UTC),
		{}, time.Date(-1, 3, 1, 0, 0, 0, 5, time.UTC), time.Date(12000, 3, 1, 0, 0, 0, 5, time.UTC),
		time.Unix(1_764_000_000, 123).Add(time.Hour), // monotonic-free, local zone
		time.Now(), // with a monotonic reading
	} {
		if got, want := c.format(tm), tm.UTC().Format(proto.TimeLayout); got != want {
			t.Errorf("format(%v) = %q, want %q", tm, got, want)
		}
	}
}
