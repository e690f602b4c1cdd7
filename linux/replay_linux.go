package linux

import (
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// RecordDecoder decodes ring buffer records exactly as the eBPF source's reader does, without
// a kernel: the user-space CPU benchmark (cmd/vigil, BenchmarkUserCPU) runs raw records
// through the same decoder as `vigil run`, which it could not reach otherwise. Records of a
// pending (interpreter) tree are decoded, not judged: that decision needs the kernel map.
type RecordDecoder struct{ d decoder }

// NewRecordDecoder decodes with bootOffset (CLOCK_BOOTTIME to wall clock, BootTimeOffset)
// and names agents by cat's ids, as NewEBPF sets its reader up.
func NewRecordDecoder(bootOffset time.Duration, cat *sensor.Catalog) *RecordDecoder {
	return &RecordDecoder{d: decoder{bootOffset: bootOffset, agentName: cat.NameOf}}
}

// Decode decodes one raw record into a new event the caller owns.
func (r *RecordDecoder) Decode(raw []byte) (*proto.Event, error) {
	rec, err := r.d.decode(raw)
	if err != nil {
		return nil, err
	}
	return rec.event, nil
}
