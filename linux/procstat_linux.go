package linux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is what Vigil reads from /proc/<pid>/stat: a process's identity (its start) for
// the peer lookup, and its state and exit status for the audit source's exit sweep.
type procStat struct {
	comm     string
	state    byte
	start    uint64 // ns since boot (clock-tick resolution)
	exitCode int    // wait status, for a zombie
}

// readProcStat reads root/<pid>/stat.
func readProcStat(root string, pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads a /proc/<pid>/stat line. comm (field 2) may hold blanks and
// parentheses, so fields are counted from its last ')'.
func parseProcStat(b []byte) (procStat, error) {
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
	ticks, err := strconv.ParseUint(fields[startField], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: starttime: %w", err)
	}
	st := procStat{comm: string(b[open+1 : end]), state: fields[stateField][0], start: ticks * nsPerClockTick}
	if len(fields) > exitField {
		st.exitCode, _ = strconv.Atoi(fields[exitField])
	}
	return st, nil
}
