package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/sensor"
)

// clockTicksPerSecond is USER_HZ (sysconf(_SC_CLK_TCK)), the unit of starttime in
// /proc/<pid>/stat. It is part of the user-space ABI and is 100 on every Linux architecture
// Vigil runs on, whatever the kernel's internal HZ; procfs hands us the raw tick count.
const clockTicksPerSecond = 100

// nsPerClockTick converts /proc starttime ticks to nanoseconds since boot.
const nsPerClockTick = uint64(time.Second) / clockTicksPerSecond

// pfKthread is PF_KTHREAD in the flags field of /proc/<pid>/stat (include/linux/sched.h).
const pfKthread = 0x00200000

// BootstrapStats says what a /proc walk saw.
type BootstrapStats struct {
	Scanned  int // pid directories listed under procRoot
	Roots    int // outermost agent roots found (nested agents are not counted)
	Tracked  int // processes returned: roots and their descendants
	Vanished int // processes that exited (or became zombies) while being read, skipped
	// Unreadable counts processes skipped for any other read error (EACCES without
	// CAP_SYS_PTRACE, an unparsable file); FirstErr is the first of those errors, for the log.
	Unreadable int
	FirstErr   error
}

func (st *BootstrapStats) unreadable(err error) {
	st.Unreadable++
	if st.FirstErr == nil {
		st.FirstErr = err
	}
}

// procEntry is what the first pass reads of every process.
type procEntry struct {
	pid, ppid int
	start     uint64 // starttime in clock ticks
	comm      string
	exe       string
	args      []string
}

// Bootstrap walks procRoot (normally "/proc") and returns the agent process trees that are
// already running, sorted by pid, to seed the process table and the kernel's tracked map.
//
// A root is a process whose executable and argv the catalog matches (cat.Match). Every
// descendant of a root, by the PPID tree, belongs to that root; a descendant that matches the
// catalog itself stays in the outer root's tree (nested agents belong to the outermost one).
// selfPid (the sensor) is never tracked and cuts its subtree off from any tree above it: when
// the sensor was started from inside an agent tree, neither it nor its helpers are attributed
// to that agent. A catalog match below selfPid (an agent the sensor launched, as `vigil trace`
// would) is a root of its own.
//
// Kernel threads (no executable) are skipped. A process that vanishes while it is read
// (ENOENT or ESRCH on any of its files, a missing exe link outside a kernel thread, or a pid
// reused with another start time) is skipped and counted in Vanished; it never fails the walk.
// A process that cannot be read for another reason is skipped and counted in Unreadable (the
// first such error is kept in FirstErr): one odd process must not cost every other tree.
// Args are returned raw: redaction is the sensor's job. Only failing to open or list procRoot
// is returned as an error.
func Bootstrap(procRoot string, cat *sensor.Catalog, selfPid int) ([]sensor.ProcessInfo, BootstrapStats, error) {
	var st BootstrapStats
	if cat == nil {
		return nil, st, errors.New("bootstrap: nil catalog")
	}
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, st, fmt.Errorf("bootstrap: open %s: %w", procRoot, err)
	}
	procs, err := pfs.AllProcs()
	if err != nil {
		return nil, st, fmt.Errorf("bootstrap: list %s: %w", procRoot, err)
	}
	st.Scanned = len(procs)

	// Pass 1: identity, parent, executable and argv of every process.
	entries := make(map[int]*procEntry, len(procs))
	children := make(map[int][]int, len(procs))
	for _, p := range procs {
		e, ok, err := readEntry(p)
		if err != nil {
			st.unreadable(fmt.Errorf("bootstrap: read %s/%d: %w", procRoot, p.PID, err))
			continue
		}
		if e == nil {
			if !ok {
				st.Vanished++
			}
			continue
		}
		entries[e.pid] = e
		children[e.ppid] = append(children[e.ppid], e.pid)
	}

	// Roots: catalog matches with no matching ancestor (the walk up stops at selfPid).
	agentOf := make(map[int]string)
	for pid, e := range entries {
		if pid == selfPid {
			continue
		}
		if name, ok := cat.Match(e.exe, e.args); ok {
			agentOf[pid] = name
		}
	}
	var roots []int
	for pid := range agentOf {
		if !hasMatchingAncestor(pid, entries, agentOf, selfPid) {
			roots = append(roots, pid)
		}
	}
	sort.Ints(roots)
	st.Roots = len(roots)

	// Descendants of each root, never entering selfPid's subtree.
	rootOf := make(map[int]int)
	for _, r := range roots {
		stack := []int{r}
		for len(stack) > 0 {
			pid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if pid == selfPid {
				continue
			}
			if _, seen := rootOf[pid]; seen {
				continue // a ppid cycle cannot happen in a real /proc; be safe anyway
			}
			rootOf[pid] = r
			stack = append(stack, children[pid]...)
		}
	}

	// Pass 2: the rest of what the process table needs, for tracked processes only.
	out := make([]sensor.ProcessInfo, 0, len(rootOf))
	for pid, root := range rootOf {
		e := entries[pid]
		p, err := pfs.Proc(pid)
		if err != nil {
			if isVanished(err) {
				st.Vanished++
			} else {
				st.unreadable(fmt.Errorf("bootstrap: read %s/%d: %w", procRoot, pid, err))
			}
			continue
		}
		info, ok, err := readDetails(p, e)
		if err != nil {
			st.unreadable(fmt.Errorf("bootstrap: read %s/%d: %w", procRoot, pid, err))
			continue
		}
		if !ok {
			st.Vanished++
			continue
		}
		info.RootPid = root
		info.Agent = agentOf[root]
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	st.Tracked = len(out)
	return out, st, nil
}

// hasMatchingAncestor walks pid's parents (stopping at selfPid, pid 0 or an unknown pid) and
// reports whether one of them is a catalog match.
func hasMatchingAncestor(pid int, entries map[int]*procEntry, agentOf map[int]string, selfPid int) bool {
	for steps := 0; steps < len(entries); steps++ {
		e := entries[pid]
		if e == nil || e.ppid == 0 || e.ppid == pid {
			return false
		}
		pid = e.ppid
		if pid == selfPid {
			return false
		}
		if _, ok := agentOf[pid]; ok {
			return true
		}
	}
	return false
}

// readEntry reads stat, exe and cmdline. It returns (nil, true, nil) for a kernel thread,
// (nil, false, nil) for a process that vanished, and an error for anything unexpected.
func readEntry(p procfs.Proc) (*procEntry, bool, error) {
	stat, err := p.Stat()
	if err != nil {
		if isVanished(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if stat.Flags&pfKthread != 0 {
		return nil, true, nil
	}
	exe, err := p.Executable() // "" when the exe link is missing
	if err != nil {
		if isVanished(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if exe == "" {
		// Not a kernel thread, so the process exited (a zombie has no exe) or is gone.
		return nil, false, nil
	}
	args, err := p.CmdLine()
	if err != nil {
		if isVanished(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return &procEntry{
		pid:   p.PID,
		ppid:  stat.PPID,
		start: stat.Starttime,
		comm:  stat.Comm,
		exe:   strings.TrimSuffix(exe, " (deleted)"), // binary replaced on disk (e.g. an update)
		args:  args,
	}, true, nil
}

// readDetails reads cwd and status and re-reads stat to confirm the pid still names the
// process of pass 1. ok is false when the process vanished in between.
func readDetails(p procfs.Proc, e *procEntry) (sensor.ProcessInfo, bool, error) {
	cwd, err := p.Cwd()
	if err != nil {
		if isVanished(err) {
			return sensor.ProcessInfo{}, false, nil
		}
		return sensor.ProcessInfo{}, false, err
	}
	status, err := p.NewStatus()
	if err != nil {
		if isVanished(err) {
			return sensor.ProcessInfo{}, false, nil
		}
		return sensor.ProcessInfo{}, false, err
	}
	stat, err := p.Stat()
	if err != nil {
		if isVanished(err) {
			return sensor.ProcessInfo{}, false, nil
		}
		return sensor.ProcessInfo{}, false, err
	}
	if stat.Starttime != e.start {
		return sensor.ProcessInfo{}, false, nil // pid reused
	}
	return sensor.ProcessInfo{
		Pid:         e.pid,
		PPid:        e.ppid,
		StartBootNs: e.start * nsPerClockTick,
		Name:        e.comm,
		Executable:  e.exe,
		Args:        e.args,
		Cwd:         cwd,
		UID:         int(status.UIDs[0]), // real uid
		GID:         int(status.GIDs[0]), // real gid
	}, true, nil
}

// isVanished reports whether err means the process is gone (or going): its /proc files
// disappear (ENOENT) or refuse to be read (ESRCH).
func isVanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// ReadBootID returns the kernel's boot id (procRoot/sys/kernel/random/boot_id), which scopes
// every (pid, start time) identity to one boot.
func ReadBootID(procRoot string) (string, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "sys", "kernel", "random", "boot_id"))
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("read boot id: empty")
	}
	return id, nil
}

// BootTimeOffset returns wall-clock time minus CLOCK_BOOTTIME, i.e. the wall time of boot.
// Kernel events carry timestamps in ns since boot (bpf_ktime_get_boot_ns; /proc starttime
// converted by Bootstrap), and convert to wall time as
//
//	time.Unix(0, int64(ns)).Add(offset)
//
// The offset moves when the wall clock is stepped (NTP, settimeofday); a long-running sensor
// should re-read it periodically rather than once.
func BootTimeOffset() (time.Duration, error) {
	var r1, b, r2 unix.Timespec
	// Bracket the boot-time read with two wall-clock reads and take their midpoint.
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r1); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_REALTIME): %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &b); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r2); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_REALTIME): %w", err)
	}
	wall := r1.Nano() + (r2.Nano()-r1.Nano())/2
	return time.Duration(wall - b.Nano()), nil
}
