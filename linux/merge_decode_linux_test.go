package linux

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
)

// mergedRecord is a run's repeats: count opens of (dev 8:1, inode 42) after the run's first
// record at 2 s, the first at 2.5 s, the last at 3 s.
func mergedRecord(count uint32, flags uint32) *bpf.VigilMergedEvent {
	return &bpf.VigilMergedEvent{Hdr: header(kindMerged), Run: 2e9, FirstTs: 25e8, LastTs: 3e9,
		Dev: 8<<20 | 1, Ino: 42, Count: count, Flags: flags}
}

func TestDecodeMerged(t *testing.T) {
	d := testDecoder()
	iou := mergedRecord(7, 0)
	iou.IoUring = 1
	tests := []struct {
		name    string
		raw     []byte
		count   uint64
		flags   string
		syscall string
		err     bool
	}{
		{"read", rawOf(mergedRecord(99999, 0)), 99999, "O_RDONLY", "", false},
		{"write", rawOf(mergedRecord(1, 01|0100)), 1, "O_WRONLY|O_CREAT", "", false},
		{"io_uring", rawOf(iou), 7, "O_RDONLY", proto.SyscallIOUring, false},
		{"short", rawOf(mergedRecord(1, 0))[:mergedSize-1], 0, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := d.decode(tc.raw)
			if tc.err {
				if !errors.Is(err, errShortRecord) {
					t.Fatalf("decode: %v, want a short record", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e, m := r.event, r.event.Vigil.Merged
			if m == nil || e.Event.Action != proto.ActionOpen || e.Event.Outcome != proto.OutcomeSuccess || r.run != 2e9 {
				t.Fatalf("decoded %+v (merged %+v, run %d)", e, m, r.run)
			}
			first := time.Unix(0, 25e8).Add(d.bootOffset).UTC()
			want := proto.Merged{Count: tc.count, First: first.Format(proto.TimeLayout),
				Last: first.Add(500 * time.Millisecond).Format(proto.TimeLayout), Dev: 2049, Ino: 42}
			if *m != want || !e.Timestamp.Equal(first) {
				t.Errorf("merged %+v @timestamp %s, want %+v @timestamp %s", *m, e.Timestamp, want, first)
			}
			if e.File.Flags != tc.flags || e.Vigil.Syscall != tc.syscall || e.Vigil.PathSource != proto.PathSourceKernel ||
				e.Process.Pid != 200 || e.Process.Thread.ID != 201 {
				t.Errorf("file %+v syscall %q source %q pid %d", e.File, e.Vigil.Syscall, e.Vigil.PathSource, e.Process.Pid)
			}
		})
	}
}

// An open record that starts a run names the run by its timestamp; others name none.
func TestDecodeRunStart(t *testing.T) {
	d := testDecoder()
	x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: 3, Dfd: -100, WalkKind: walkFile, Merge: mergeRunStart}
	x.WalkLen = uint32(copy(x.Walk[:], "m\x00t\x00"))
	r, err := d.decode(rawOf(x)[:openMinSize+int(x.WalkLen)])
	if err != nil || r.run != 2e9 || r.event.File.Path != "/t/m" {
		t.Fatalf("run start: run %d path %q err %v", r.run, r.event.File.Path, err)
	}
	if r, err := d.decode(fileRecord(3, "m\x00t\x00")); err != nil || r.run != 0 {
		t.Fatalf("plain open: run %d err %v", r.run, err)
	}
}

// The reader names a merged record by its run's first record, writes only what a sweep has
// not, and counts the merged records it could not name.
func TestMergesBookkeeping(t *testing.T) {
	d := testDecoder()
	m := newMerges()
	decode := func(raw []byte) *proto.Event {
		r, err := d.decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r.event
	}
	first := decode(fileRecord(3, "m\x00t\x00"))
	first.Vigil.Truncated = []string{"file.path"}
	m.remember(201, 2e9, first)
	k := runKey{201, 2e9}

	e := decode(rawOf(mergedRecord(10, 0)))
	if !m.ended(k, e, d) || e.File.Path != "/t/m" || e.Vigil.Merged.Count != 10 || len(e.Vigil.Truncated) != 1 {
		t.Fatalf("ended: path %q count %d truncated %q", e.File.Path, e.Vigil.Merged.Count, e.Vigil.Truncated)
	}

	// A sweep wrote 6 repeats of the next run: the kernel's record of 10 writes 4 more; one of
	// 6 writes nothing.
	m.remember(201, 4e9, first)
	k = runKey{201, 4e9}
	m.reported[k] = runReport{count: 6, last: 27e8}
	e = decode(rawOf(mergedRecord(10, 0)))
	if !m.ended(k, e, d) || e.Vigil.Merged.Count != 4 || e.Vigil.Merged.First != d.wall(27e8).Format(proto.TimeLayout) {
		t.Fatalf("after a sweep: count %d first %s", e.Vigil.Merged.Count, e.Vigil.Merged.First)
	}
	k = runKey{201, 6e9}
	m.remember(201, 6e9, first)
	m.reported[k] = runReport{count: 6}
	if m.ended(k, decode(rawOf(mergedRecord(6, 0))), d) {
		t.Fatal("a run the sweep wrote whole was written again")
	}
	if _, ok := m.reported[k]; ok {
		t.Fatal("the kernel's record of a run did not end its bookkeeping")
	}

	// Forgotten first records: the merged record keeps its identity and is counted.
	e = decode(rawOf(mergedRecord(3, 0)))
	m.ended(runKey{999, 1}, e, d)
	if e.File.Path != "" || e.Vigil.Merged.Ino != 42 || m.unnamed.Load() != 1 {
		t.Fatalf("unnamed: path %q ino %d unnamed %d", e.File.Path, e.Vigil.Merged.Ino, m.unnamed.Load())
	}
	for i := range mergeFirstMax + 1 {
		m.remember(uint32(i), 1, first)
	}
	if len(m.first) != mergeFirstMax {
		t.Fatalf("%d first records kept, bound %d", len(m.first), mergeFirstMax)
	}
}

func FuzzDecodeMerged(f *testing.F) {
	f.Add(rawOf(mergedRecord(1, 0)))
	f.Add(rawOf(mergedRecord(1<<32-1, 0xffffffff)))
	f.Add(rawOf(mergedRecord(5, 0))[:mergedSize-3])
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := testDecoder()
		if len(raw) >= headerSize {
			// Every input is a merged record: the fuzzer explores its fields, not the kind.
			h := header(kindMerged)
			copy(raw, structBytes(&h)[:headerSize])
		}
		r, err := d.decode(raw)
		if err != nil {
			if r.event != nil {
				t.Fatalf("error %v came with an event", err)
			}
			return
		}
		m := r.event.Vigil.Merged
		if m == nil || r.event.Event.Action != proto.ActionOpen || r.event.File == nil {
			t.Fatalf("decoded to %+v", r.event)
		}
		if _, err := time.Parse(proto.TimeLayout, m.First); err != nil {
			t.Fatalf("first %q: %v", m.First, err)
		}
		if _, err := json.Marshal(r.event); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
