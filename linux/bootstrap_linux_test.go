package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/sensor"
)

// kernelStat reads ppid and starttime (in clock ticks) of pid straight from /proc/<pid>/stat,
// independently of procfs.
func kernelStat(t *testing.T, pid int) (ppid int, start uint64, ok bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state); ppid is field 4, starttime field 22 (proc(5)).
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ppid, start, true
}

// descendants lists every live descendant of root by scanning /proc/*/stat.
func descendants(t *testing.T, root int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	kids := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := kernelStat(t, pid); ok {
			kids[ppid] = append(kids[ppid], pid)
		}
	}
	var out []int
	stack := append([]int(nil), kids[root]...)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p)
		stack = append(stack, kids[p]...)
	}
	return out
}

// startKilled starts cmd in its own process group and kills the whole group in t.Cleanup.
func startKilled(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

// TestBootstrapRealTree runs a fake agent (a copy of /bin/sh named claude) with a child shell,
// two sleeps and a grandchild, and checks that Bootstrap finds the whole tree and nothing else.
func TestBootstrapRealTree(t *testing.T) {
	dir := t.TempDir()
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	claude := filepath.Join(dir, "claude")
	if err := os.WriteFile(claude, sh, 0o755); err != nil {
		t.Fatal(err)
	}
	// Every -c script ends with a builtin so no shell execs its last command away.
	agent := exec.Command(claude, "-c", `sh -c 'sleep 30 & wait' & sleep 30 & wait`)
	agent.Dir = dir
	startKilled(t, agent)
	unrelated := exec.Command("sleep", "30")
	startKilled(t, unrelated)

	root := agent.Process.Pid
	var want []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		want = descendants(t, root)
		if len(want) == 3 { // sh, sleep, and sh's sleep
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent tree did not come up: descendants %v", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want = append(want, root)

	got, stats, err := Bootstrap("/proc", sensor.DefaultCatalog(), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", stats)
	if stats.Scanned == 0 || stats.Roots < 1 || stats.Tracked != len(got) {
		t.Errorf("stats %+v for %d results", stats, len(got))
	}
	byPid := map[int]sensor.ProcessInfo{}
	for i, p := range got {
		if i > 0 && got[i-1].Pid >= p.Pid {
			t.Errorf("results not sorted by pid: %d after %d", p.Pid, got[i-1].Pid)
		}
		byPid[p.Pid] = p
	}
	if _, ok := byPid[unrelated.Process.Pid]; ok {
		t.Errorf("unrelated sleep %d tracked", unrelated.Process.Pid)
	}
	if _, ok := byPid[os.Getpid()]; ok {
		t.Errorf("self tracked")
	}
	for _, pid := range want {
		p, ok := byPid[pid]
		if !ok {
			t.Errorf("pid %d of the agent tree missing", pid)
			continue
		}
		if p.RootPid != root || p.Agent != "claude-code" {
			t.Errorf("pid %d: root %d agent %q, want %d claude-code", pid, p.RootPid, p.Agent, root)
		}
		ppid, start, ok := kernelStat(t, pid)
		if !ok {
			t.Fatalf("pid %d vanished", pid)
		}
		if p.PPid != ppid {
			t.Errorf("pid %d: ppid %d, kernel says %d", pid, p.PPid, ppid)
		}
		if p.StartBootNs/10_000_000 != start || p.StartBootNs%10_000_000 != 0 {
			t.Errorf("pid %d: StartBootNs %d, kernel starttime %d ticks", pid, p.StartBootNs, start)
		}
		if p.UID != os.Getuid() || p.GID != os.Getgid() {
			t.Errorf("pid %d: uid/gid %d/%d", pid, p.UID, p.GID)
		}
		if p.Cwd != dir {
			t.Errorf("pid %d: cwd %q, want %q", pid, p.Cwd, dir)
		}
	}
	r := byPid[root]
	if r.Executable != claude || r.Name != "claude" || len(r.Args) != 3 || r.Args[0] != claude || r.Args[1] != "-c" {
		t.Errorf("root: %+v", r)
	}
	// The root started after the machine booted and within the last minute, in boot time.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	if now := uint64(ts.Nano()); r.StartBootNs > now || now-r.StartBootNs > uint64(time.Minute) {
		t.Errorf("root StartBootNs %d vs boot clock %d", r.StartBootNs, now)
	}
}

// fakeProc builds a /proc-like tree in a temp dir.
type fakeProc struct {
	t    *testing.T
	root string
}

type fakeProcess struct {
	pid, ppid int
	comm      string
	flags     uint
	start     uint64
	exe       string // "" = no exe link
	args      []string
	noStatus  bool
	badStat   bool
}

func (f fakeProc) add(p fakeProcess) {
	d := filepath.Join(f.root, strconv.Itoa(p.pid))
	mustNoErr(f.t, os.MkdirAll(d, 0o755))
	// 52 fields, as a 6.x kernel writes them; field 9 is flags, field 22 starttime.
	fields := []string{strconv.Itoa(p.pid), "(" + p.comm + ")", "S", strconv.Itoa(p.ppid)}
	for i := 5; i <= 52; i++ {
		switch i {
		case 9:
			fields = append(fields, strconv.FormatUint(uint64(p.flags), 10))
		case 22:
			fields = append(fields, strconv.FormatUint(p.start, 10))
		default:
			fields = append(fields, "0")
		}
	}
	stat := strings.Join(fields, " ") + "\n"
	if p.badStat {
		stat = "garbage\n"
	}
	mustNoErr(f.t, os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o444))
	if p.exe != "" {
		mustNoErr(f.t, os.Symlink(p.exe, filepath.Join(d, "exe")))
	}
	mustNoErr(f.t, os.Symlink("/home/dev/project", filepath.Join(d, "cwd")))
	cmdline := ""
	for _, a := range p.args {
		cmdline += a + "\x00"
	}
	mustNoErr(f.t, os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o444))
	if !p.noStatus {
		status := fmt.Sprintf("Name:\t%s\nTgid:\t%d\nPid:\t%d\nPPid:\t%d\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n",
			p.comm, p.pid, p.pid, p.ppid)
		mustNoErr(f.t, os.WriteFile(filepath.Join(d, "status"), []byte(status), 0o444))
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBootstrapFakeProc covers what a live machine rarely shows on cue: processes that vanish
// between listing and reading, zombies, kernel threads, unreadable entries, nested agents and
// an agent started below the sensor itself.
func TestBootstrapFakeProc(t *testing.T) {
	root := t.TempDir()
	f := fakeProc{t, root}
	const self = 300
	f.add(fakeProcess{pid: 1, ppid: 0, comm: "init", exe: "/sbin/init", args: []string{"/sbin/init"}, start: 1})
	f.add(fakeProcess{pid: 2, ppid: 0, comm: "kthreadd", flags: pfKthread, start: 1})
	f.add(fakeProcess{pid: 100, ppid: 1, comm: "claude", exe: "/home/dev/.local/share/claude/versions/2.1.197 (deleted)", args: []string{"claude", "-p", "hi"}, start: 1234})
	f.add(fakeProcess{pid: 101, ppid: 100, comm: "bash", exe: "/usr/bin/bash", args: []string{"/bin/bash", "-c", "make"}, start: 1300})
	f.add(fakeProcess{pid: 102, ppid: 101, comm: "make", start: 1301}) // zombie: no exe link
	mustNoErr(t, os.MkdirAll(filepath.Join(root, "103"), 0o755))       // exited after readdir: empty dir
	mustNoErr(t, os.Symlink(filepath.Join(root, "gone"), filepath.Join(root, "104")))
	f.add(fakeProcess{pid: 105, ppid: 101, comm: "cc", exe: "/usr/bin/cc", args: []string{"cc"}, start: 1310, noStatus: true})
	f.add(fakeProcess{pid: 106, ppid: 100, comm: "odd", exe: "/usr/bin/odd", args: []string{"odd"}, start: 1320, badStat: true})
	f.add(fakeProcess{pid: 107, ppid: 101, comm: "codex", exe: "/usr/local/bin/codex", args: []string{"codex", "exec"}, start: 1330})
	f.add(fakeProcess{pid: 108, ppid: 107, comm: "node", exe: "/usr/bin/node", args: []string{"node", "x.js"}, start: 1340})
	// A tool shell's `exec -a claude python3 ...`: argv[0] and comm say claude, the image is
	// python running no agent script, so it roots no tree.
	f.add(fakeProcess{pid: 201, ppid: 1, comm: "claude", exe: "/usr/bin/python3.12", args: []string{"claude", "/tmp/x.py"}, start: 60})
	f.add(fakeProcess{pid: 200, ppid: 1, comm: "vim", exe: "/usr/bin/vim", args: []string{"vim"}, start: 50})
	f.add(fakeProcess{pid: self, ppid: 101, comm: "vigil", exe: "/usr/bin/vigil", args: []string{"vigil", "trace"}, start: 1400})
	f.add(fakeProcess{pid: 301, ppid: self, comm: "sh", exe: "/bin/sh", args: []string{"sh"}, start: 1401})
	f.add(fakeProcess{pid: 302, ppid: 301, comm: "node", exe: "/usr/bin/node",
		args: []string{"node", "/usr/lib/node_modules/@openai/codex/bin/codex.js"}, start: 1402})
	f.add(fakeProcess{pid: 303, ppid: 302, comm: "rg", exe: "/usr/bin/rg", args: []string{"rg", "TODO"}, start: 1403})

	got, stats, err := Bootstrap(root, sensor.DefaultCatalog(), self)
	if err != nil {
		t.Fatal(err)
	}
	wantStats := BootstrapStats{Scanned: 17, Roots: 2, Tracked: 6, Vanished: 4, Unreadable: 1}
	if stats.FirstErr == nil || !strings.Contains(stats.FirstErr.Error(), "/106") {
		t.Errorf("FirstErr %v, want the error of pid 106", stats.FirstErr)
	}
	stats.FirstErr = nil
	if stats != wantStats {
		t.Errorf("stats %+v, want %+v", stats, wantStats)
	}
	type row struct {
		pid, ppid, root int
		agent, exe      string
		start           uint64
	}
	var rows []row
	for _, p := range got {
		rows = append(rows, row{p.Pid, p.PPid, p.RootPid, p.Agent, p.Executable, p.StartBootNs})
		if p.Cwd != "/home/dev/project" || p.UID != 1000 || p.GID != 100 {
			t.Errorf("pid %d: cwd %q uid %d gid %d", p.Pid, p.Cwd, p.UID, p.GID)
		}
	}
	want := []row{
		{100, 1, 100, "claude-code", "/home/dev/.local/share/claude/versions/2.1.197", 1234 * 10_000_000},
		{101, 100, 100, "claude-code", "/usr/bin/bash", 1300 * 10_000_000},
		{107, 101, 100, "claude-code", "/usr/local/bin/codex", 1330 * 10_000_000}, // nested agent: outer tree
		{108, 107, 100, "claude-code", "/usr/bin/node", 1340 * 10_000_000},
		{302, 301, 302, "codex", "/usr/bin/node", 1402 * 10_000_000}, // below the sensor: own root
		{303, 302, 302, "codex", "/usr/bin/rg", 1403 * 10_000_000},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got\n%v\nwant\n%v", rows, want)
	}
	if a := got[0].Args; !reflect.DeepEqual(a, []string{"claude", "-p", "hi"}) {
		t.Errorf("root args %q (must be raw)", a)
	}
}

func TestBootstrapErrors(t *testing.T) {
	if _, _, err := Bootstrap(filepath.Join(t.TempDir(), "missing"), sensor.DefaultCatalog(), 0); err == nil {
		t.Error("missing procRoot accepted")
	}
	if _, _, err := Bootstrap("/proc", nil, 0); err == nil {
		t.Error("nil catalog accepted")
	}
}

func TestReadBootID(t *testing.T) {
	id, err := ReadBootID("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Errorf("boot id %q is not a UUID", id)
	}
	if id2, _ := ReadBootID("/proc"); id2 != id {
		t.Errorf("boot id changed: %q then %q", id, id2)
	}
	if _, err := ReadBootID(t.TempDir()); err == nil {
		t.Error("missing boot_id accepted")
	}
}

func TestBootTimeOffset(t *testing.T) {
	off, err := BootTimeOffset()
	if err != nil {
		t.Fatal(err)
	}
	// The offset is the wall time of boot: compare with btime in /proc/stat (whole seconds;
	// btime is derived from CLOCK_REALTIME - CLOCK_BOOTTIME as well).
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	var btime int64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			btime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if d := time.Unix(0, 0).Add(off).Sub(time.Unix(btime, 0)); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("boot wall time %v, /proc/stat btime %v", time.Unix(0, 0).Add(off), time.Unix(btime, 0))
	}
	// Converting "now" in boot ns gives the wall clock now.
	var ts unix.Timespec
	mustNoErr(t, unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts))
	wall := time.Unix(0, ts.Nano()).Add(off)
	if d := time.Since(wall); d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("boot-ns now converts to %v, %v off the wall clock", wall, d)
	}
	// Our own start, from Bootstrap's conversion, is in the recent past.
	_, start, _ := kernelStat(t, os.Getpid())
	procStart := time.Unix(0, int64(start*nsPerClockTick)).Add(off)
	if d := time.Since(procStart); d < -time.Second || d > 10*time.Minute {
		t.Errorf("test process started at %v (%v ago)?", procStart, d)
	}
}
