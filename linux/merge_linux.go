package linux

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Merged opens (bpf/vigil.h, struct open_run). The kernel reports the first open of a run in
// full and only counts the repeats; a merged record reports them when the run ends in the
// thread's own context (another open, exit, exec). A thread that just stops opening keeps its
// count in the kernel: the reader sweeps the slots every mergeSweepEvery and reports the runs
// idle longer than the kernel's window, which the kernel then never extends (a later open
// starts a new run). The same run may so be reported twice, by the sweep and by the kernel
// when the run ends: reported keeps what was written, so that only the difference is.

const (
	// mergeWindow is the kernel's MERGE_WINDOW_NS: a run idle longer is over.
	mergeWindow = uint64(bpf.VigilMergeLimitMERGE_WINDOW_NS)
	// mergeSweepEvery is how often the reader looks for idle runs: a run is reported at most
	// mergeWindow + mergeSweepEvery after its last repeat. One batched read of the slots.
	mergeSweepEvery = 500 * time.Millisecond
	// mergeFirstMax bounds the first records kept for naming their runs' merged records.
	mergeFirstMax = 1 << 16
	// mergeForgetAfter is how long a reported run is remembered after its slot moved on to
	// another run without the kernel's merged record arriving (the ring had no room for it).
	mergeForgetAfter = 10 * time.Second
)

// runKey names a merge run: its thread and its first record's kernel timestamp.
type runKey struct {
	tid uint32
	run uint64
}

// runFirst is what a merged record takes from its run's first record.
type runFirst struct {
	path      string
	truncated []string
	name      string
	ppid      int
}

// runReport is what was written of a run before the kernel ended it.
type runReport struct {
	count uint32
	last  uint64    // the last repeat written, CLOCK_BOOTTIME ns
	moved time.Time // when the thread's slot was first seen holding another run
}

// merges is the reader's bookkeeping of merge runs. Only the Run goroutine touches it.
type merges struct {
	// first names runs by their first record, bounded: the oldest is forgotten first (ring of
	// keys in insertion order).
	first     map[runKey]runFirst
	firstKeys []runKey
	firstNext int
	reported  map[runKey]runReport
	// batch is the sweep's buffer for reading the kernel's slots.
	batch struct {
		tids  [256]uint32
		slots [256]bpf.VigilOpenRun
	}
	// unnamed counts merged records written without their run's path: the first record was
	// lost or forgotten. They still name the file by device and inode. Read by Lost.
	unnamed atomic.Uint64
}

func newMerges() *merges {
	return &merges{first: map[runKey]runFirst{}, firstKeys: make([]runKey, mergeFirstMax), reported: map[runKey]runReport{}}
}

// remember keeps an open record that starts a run, to name the run's merged records.
func (m *merges) remember(tid uint32, run uint64, e *proto.Event) {
	k := runKey{tid, run}
	old := m.firstKeys[m.firstNext]
	delete(m.first, old)
	m.firstKeys[m.firstNext] = k
	m.firstNext = (m.firstNext + 1) % len(m.firstKeys)
	f := runFirst{path: e.File.Path, truncated: slices.Clone(e.Vigil.Truncated), name: e.Process.Name}
	if e.Process.Parent != nil {
		f.ppid = e.Process.Parent.Pid
	}
	m.first[k] = f
}

// name gives a merged record its run's path and the process details of the first record
// (a thread that executed since has another name).
func (m *merges) name(k runKey, e *proto.Event) {
	f, ok := m.first[k]
	if !ok {
		m.unnamed.Add(1)
		return
	}
	e.File.Path = f.path
	e.Vigil.Truncated = slices.Clone(f.truncated)
	e.Process.Name = f.name
	if e.Process.Parent != nil && f.ppid != 0 {
		e.Process.Parent.Pid = f.ppid
	}
}

// ended takes the kernel's merged record of a run, which is final: it keeps only the repeats
// not already written by a sweep, and returns false when there are none.
func (m *merges) ended(k runKey, e *proto.Event, d *decoder) bool {
	rep, seen := m.reported[k]
	delete(m.reported, k)
	defer delete(m.first, k)
	if mg := e.Vigil.Merged; seen {
		if mg.Count <= uint64(rep.count) {
			return false
		}
		mg.Count -= uint64(rep.count)
		if last := d.wall(rep.last); last.After(e.Timestamp) {
			e.Timestamp = last
			mg.First = e.Timestamp.Format(proto.TimeLayout)
		}
	}
	m.name(k, e)
	return true
}

// mergeRecord applies the merge bookkeeping to a decoded ring record; false: nothing to
// deliver (a merged record whose repeats a sweep already wrote).
func (s *EBPF) mergeRecord(r *record) bool {
	if r.run == 0 {
		return true
	}
	tid := uint32(r.event.Process.Thread.ID)
	if r.event.Vigil.Merged == nil {
		s.merges.remember(tid, r.run, r.event)
		return true
	}
	return s.merges.ended(runKey{tid, r.run}, r.event, &s.dec)
}

// sweepRuns reports the repeats of every run idle longer than the kernel's window (all of
// them when final: the source stops) that were not reported yet. It only reads the kernel's
// slots: a slot the owner was writing during the copy (its sequence words differ) is left
// for the next sweep, or read again when final.
func (s *EBPF) sweepRuns(final bool, emit func(*proto.Event)) {
	now, err := bootNow()
	if err != nil {
		s.opts.Log.Warn().Err(err).Msg("merge sweep")
		return
	}
	live := map[uint32]uint64{}
	m := &s.merges.batch
	var cursor ebpf.MapBatchCursor
	for {
		n, err := s.objs.OpenRuns.BatchLookup(&cursor, m.tids[:], m.slots[:], nil)
		for i := range n {
			tid, slot := m.tids[i], &m.slots[i]
			live[tid] = slot.Run
			if slot.Count == 0 || (!final && now-slot.LastTs <= mergeWindow) {
				continue
			}
			if s.stableRun(tid, slot, final) {
				s.reportRun(tid, slot, emit)
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			s.opts.Log.Warn().Err(err).Msg("merge sweep: read open_runs")
			return // what was not read stays in the kernel for the next sweep
		}
	}
	s.forgetMoved(live)
}

// stableRun says whether slot, as copied, is one consistent state of the run: its sequence
// words agree and a second copy is the same. The owner writes its slot with plain stores,
// and a copy may tear; a run idle past the window is normally not written again, so two
// equal copies are that state. When final, a torn slot is read again a few times.
func (s *EBPF) stableRun(tid uint32, slot *bpf.VigilOpenRun, final bool) bool {
	for try := 0; ; try++ {
		if slot.SeqDone == slot.SeqBusy {
			var again bpf.VigilOpenRun
			if err := s.objs.OpenRuns.Lookup(tid, &again); err != nil {
				return false // the thread exited: the kernel reported the run
			}
			if again == *slot {
				return true
			}
			*slot = again
		}
		if !final || try == 3 {
			return false
		}
		time.Sleep(time.Millisecond)
		if err := s.objs.OpenRuns.Lookup(tid, slot); err != nil {
			return false
		}
	}
}

// reportRun writes a merged record of the run's repeats not yet written.
func (s *EBPF) reportRun(tid uint32, slot *bpf.VigilOpenRun, emit func(*proto.Event)) {
	k := runKey{tid, slot.Run}
	rep := s.merges.reported[k]
	if slot.Count <= rep.count {
		return
	}
	x := bpf.VigilMergedEvent{
		Hdr: bpf.VigilEventHeader{
			Ts: slot.LastTs, StartNs: slot.StartNs, Kind: kindMerged, Pid: slot.Pid, Tid: tid,
			Root: slot.Root, Agent: slot.Agent, TrackFlags: slot.TrackFlags, Uid: slot.Uid, Gid: slot.Gid,
		},
		Run: slot.Run, FirstTs: slot.FirstTs, LastTs: slot.LastTs, Dev: slot.Dev, Ino: slot.Ino,
		Count: slot.Count - rep.count, Flags: slot.Flags, Mode: slot.Mode, IoUring: slot.IoUring,
	}
	if rep.count > 0 {
		x.FirstTs = rep.last // the repeats after those written: (rep.last, last]
	}
	s.merges.reported[k] = runReport{count: slot.Count, last: slot.LastTs}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&x)), mergedSize)
	r, err := s.dec.decode(raw)
	if err != nil {
		s.decodeFails.Add(1)
		return
	}
	s.merges.name(k, r.event)
	s.dispatch(r, emit)
}

// forgetMoved drops what was reported of runs whose thread has moved on to another run (or
// exited) for mergeForgetAfter without the kernel's merged record for them arriving: that
// record was lost with a full ring (and counted so).
func (s *EBPF) forgetMoved(live map[uint32]uint64) {
	now := time.Now()
	for k, rep := range s.merges.reported {
		if run, ok := live[k.tid]; ok && run == k.run {
			continue
		}
		switch {
		case rep.moved.IsZero():
			rep.moved = now
			s.merges.reported[k] = rep
		case now.Sub(rep.moved) > mergeForgetAfter:
			delete(s.merges.reported, k)
		}
	}
}

// bootNow is CLOCK_BOOTTIME in ns, the kernel's clock for records.
func bootNow() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("read CLOCK_BOOTTIME: %w", err)
	}
	return uint64(ts.Nano()), nil
}

var _ sensor.MergingSource = (*EBPF)(nil)

// BumpMergeEpoch ends every merge run in the kernel: the next open of each thread starts a
// new run. The correlator calls it at each tool-call boundary it learns, so that no merged
// record spans two tool calls. Safe from any goroutine.
func (s *EBPF) BumpMergeEpoch() error {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	s.epoch++
	if err := s.objs.MergeEpoch.Update(uint32(0), s.epoch, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bump merge epoch: %w", err)
	}
	return nil
}
