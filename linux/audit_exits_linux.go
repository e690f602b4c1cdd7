package linux

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// procStat is what the sweep reads from /proc/PID/stat.
type procStat struct {
	comm     string
	state    byte
	start    uint64 // ns since boot
	exitCode int    // wait status, for a zombie
}

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

// readProcStat reads a process's comm, state, start and exit status. comm may hold blanks
// and parentheses, so fields are counted from its last ')'.
func readProcStat(procRoot string, pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("stat: no comm")
	}
	fields := strings.Fields(string(b[end+1:]))
	const (
		stateField = 3 - 3 // fields after comm start at field 3
		startField = 22 - 3
		exitField  = 52 - 3
	)
	if len(fields) <= startField || len(fields[stateField]) != 1 {
		return procStat{}, errors.New("stat: too few fields")
	}
	st := procStat{comm: string(b[open+1 : end]), state: fields[stateField][0]}
	start, err := parseStatStart(b)
	if err != nil {
		return procStat{}, err
	}
	st.start = start
	if len(fields) > exitField {
		st.exitCode, _ = strconv.Atoi(fields[exitField])
	}
	return st, nil
}
