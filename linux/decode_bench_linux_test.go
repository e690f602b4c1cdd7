package linux

import (
	"testing"
	"time"
	"unsafe"

	"github.com/vigil-sensor/vigil/bpf"
)

// benchOpenRecord is an open record as the kernel writes it for a tracked process's
// successful open: the path walked from the opened file, leaf first, the record cut right
// after it.
func benchOpenRecord() []byte {
	var x bpf.VigilOpenEvent
	x.Hdr = bpf.VigilEventHeader{
		Ts: 5_123_456_789_012, StartNs: 5_121_000_000_123, Kind: kindOpen,
		Pid: 52398, Tid: 52401, Ppid: 52311, Root: 52398, Agent: 1, Uid: 1000, Gid: 1000,
	}
	copy(x.Hdr.Comm[:], "claude")
	x.Ret = 3
	x.Flags = 0o2000000 // O_RDONLY|O_CLOEXEC
	x.Dfd = -100
	x.WalkKind = walkFile
	x.WalkLen = uint32(copy(x.Walk[:], "f\x00loadgen-open-2871635312\x00tmp\x00"))
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&x)), unsafe.Sizeof(x))
	return append([]byte(nil), raw[:openMinSize+int(x.WalkLen)]...)
}

func BenchmarkDecodeOpen(b *testing.B) {
	d := decoder{bootOffset: time.Duration(1_764_000_000) * time.Second, agentName: func(id uint32) string {
		if id == 1 {
			return "claude-code"
		}
		return ""
	}}
	raw := benchOpenRecord()
	if _, err := d.decode(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
