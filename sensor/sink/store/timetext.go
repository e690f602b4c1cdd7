package store

import (
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// timeText formats lines' timestamps in proto.TimeLayout, keeping the text of the last second:
// lines come in time order, so most share their second with the line before and only their
// nanoseconds need formatting (time.Format walks the whole layout every time).
type timeText struct {
	sec    int64
	prefix []byte // "2006-01-02T15:04:05." of sec; nil: none yet
	buf    []byte
}

// secondLayout is proto.TimeLayout up to its nanoseconds.
const secondLayout = "2006-01-02T15:04:05."

// format is t.UTC().Format(proto.TimeLayout).
func (c *timeText) format(t time.Time) string {
	t = t.UTC()
	if sec := t.Unix(); c.prefix == nil || sec != c.sec {
		c.sec, c.prefix = sec, t.AppendFormat(c.prefix[:0], secondLayout)
	}
	b := append(c.buf[:0], c.prefix...)
	ns := t.Nanosecond()
	var digits [9]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + ns%10)
		ns /= 10
	}
	b = append(append(b, digits[:]...), proto.TimeLayout[len(proto.TimeLayout)-1])
	c.buf = b
	return string(b)
}
