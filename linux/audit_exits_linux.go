package linux

import (
	"time"

	"github.com/vigil-sensor/vigil/sensor/tree"
)

// Exits audit does not report. exit_group is a syscall: a process killed by a signal, or
// whose last thread called exit, makes none. The sweep looks at each followed process in
// /proc; one whose entry is gone, is a zombie, or now belongs to a later process (another
// start) has exited. The kernel queues records asynchronously, so a process can be a zombie
// before its exit_group record is read: an exit is written only when the process was found
// dead by two sweeps in a row, with the socket drained between them, and a late exit_group
// record of a swept process is ignored.

// sweptMemory is how long a swept pid's late exit_group record is expected.
const sweptMemory = 10 * time.Second

// sweepExits writes the exits of followed processes found dead twice.
func (s *Audit) sweepExits() {
	now := time.Now()
	for pid, at := range s.swept {
		if now.Sub(at) > sweptMemory {
			delete(s.swept, pid)
		}
	}
	for _, pid := range s.tracker.Pids() {
		start := s.tracker.StartOf(pid)
		st, err := readProcStat(s.opts.ProcRoot, pid)
		alive := err == nil && st.state != 'Z' && st.state != 'X' && (start == 0 || st.start == start)
		first, suspected := s.suspects[pid]
		if alive {
			delete(s.suspects, pid)
			continue
		}
		if !suspected {
			if err != nil {
				st = procStat{}
			}
			s.suspects[pid] = st
			continue
		}
		delete(s.suspects, pid)
		p := tree.Proc{Pid: pid, Start: start}
		m, ok := s.tracker.Exit(p)
		s.unscope(pid)
		s.swept[pid] = now
		if !ok {
			continue
		}
		var code *int
		if first.state == 'Z' && first.start == start {
			c := exitCode(uint32(first.exitCode))
			code = &c
		}
		s.emit(s.exitEvent(now, p, m, first.comm, code))
	}
}
