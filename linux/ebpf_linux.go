package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// Options configure the eBPF source.
type Options struct {
	Catalog *sensor.Catalog
	// RingBufferBytes is the ring size: a power of two, at least one page.
	RingBufferBytes int
	// WakeupBytes: the kernel wakes the reader only when this much is queued; the reader
	// also polls every PollInterval, so a quiet tree is still reported promptly.
	WakeupBytes  int
	PollInterval time.Duration
	// ProcRoot is where /proc is mounted (tests may point elsewhere).
	ProcRoot string
	Log      zerolog.Logger
}

// EBPF is the Linux source: eBPF programs filtered in the kernel to agent process trees.
type EBPF struct {
	opts   Options
	objs   bpf.VigilObjects
	links  []link.Link
	reader *ringbuf.Reader
	// readerMu keeps Ring off the reader once Close has unmapped the ring.
	readerMu     sync.RWMutex
	readerClosed bool
	dec          decoder
	seeded       []sensor.ProcessInfo
	bootID       string
	started      time.Time
	ready        time.Duration

	// confirmed holds pending interpreter roots that argv showed to be agents (root tgid →
	// agent id and the root's start) until the root exits: records queued before the verdict
	// still carry the pending flag. Only the Run goroutine touches it.
	confirmed   map[uint32]verdict
	decodeFails atomic.Uint64
	// copies judges pending roots that ran a file of an installed agent's size; held keeps
	// their records (by root tgid) until the verdict, heldDrops counts those not kept. Only
	// the Run goroutine touches held.
	copies    *copies
	held      map[uint32]*heldTree
	heldDrops atomic.Uint64
	// maybeTracked is the kernel's maybe_tracked array mapped into this process: one byte
	// per tgid, set by the bootstrap for the processes it seeds.
	maybeTracked *ebpf.Memory
	// merges names merged records and keeps what the sweep reported (Run goroutine only);
	// epoch is the kernel's merge_epoch, bumped under epochMu from any goroutine.
	merges  *merges
	epochMu sync.Mutex
	epoch   uint64
}

// dropKindNames name the kernel's per-CPU drop counters (enum drop_kind).
// io_uring_unseen counts no lost record but io_uring requests of agent trees that changed files
// where no probe reports them.
var dropKindNames = map[bpf.VigilDropKind]string{
	bpf.VigilDropKindDROP_EXEC: "exec", bpf.VigilDropKindDROP_FORK: "fork", bpf.VigilDropKindDROP_EXIT: "exit",
	bpf.VigilDropKindDROP_OPEN: "open", bpf.VigilDropKindDROP_CONNECT: "connect",
	bpf.VigilDropKindDROP_TRACK_FULL: "track_full", bpf.VigilDropKindDROP_MUTATE: "mutate",
	bpf.VigilDropKindDROP_SEND: "send", bpf.VigilDropKindDROP_IO_URING_UNSEEN: "io_uring_unseen",
	// Opens of merged records the ring had no room for: opens lost, like DROP_OPEN's.
	bpf.VigilDropKindDROP_OPEN_MERGED: "open",
}

// ErrProgramTypeRefused explains an EPERM from BPF_PROG_LOAD as what it is on kernels that
// forbid a program type, rather than cilium/ebpf's generic memlock hint.
var ErrProgramTypeRefused = errors.New("the kernel refused to load an eBPF program type (EPERM): this kernel forbids the hook; it is not a memlock limit")

// NewEBPF checks privileges, mounts tracefs when missing, loads and attaches the programs,
// fills the catalog maps and seeds the tracked map from agent trees already running.
// Everything that can fail does so here, before Run, with the step that failed.
func NewEBPF(opts Options) (*EBPF, error) {
	started := time.Now()
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	bootID, err := ReadBootID(opts.ProcRoot)
	if err != nil {
		return nil, err
	}
	if err := CheckBTF(); err != nil {
		return nil, err
	}
	// Before any tracepoint attach: cilium/ebpf caches a failed tracefs lookup for the life of
	// the process.
	if _, err := EnsureTracefs(); err != nil {
		return nil, err
	}
	if err := EnsureBPFFS(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	offset, err := BootTimeOffset()
	if err != nil {
		return nil, err
	}
	s := &EBPF{
		opts:      opts,
		bootID:    bootID,
		started:   started,
		confirmed: map[uint32]verdict{},
		held:      map[uint32]*heldTree{},
		merges:    newMerges(),
		dec:       decoder{bootOffset: offset, agentName: opts.Catalog.NameOf},
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if n := opts.RingBufferBytes; n > 0 && n < 4*execSize {
		opts.Log.Warn().Int("ring_buffer_bytes", n).Int("exec_record_bytes", execSize).
			Msg("ring buffer holds fewer than four exec records: expect lost events")
	}
	if err := s.fillCatalog(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.attach(); err != nil {
		s.Close()
		return nil, err
	}
	if s.reader, err = ringbuf.NewReader(s.objs.Events); err != nil {
		s.Close()
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	if err := s.seed(); err != nil {
		s.Close()
		return nil, err
	}
	s.ready = time.Since(started)
	return s, nil
}

func (s *EBPF) load() error {
	spec, err := bpf.LoadVigil()
	if err != nil {
		return fmt.Errorf("read embedded eBPF object: %w", err)
	}
	if n := s.opts.RingBufferBytes; n > 0 {
		if n < os.Getpagesize() || n&(n-1) != 0 {
			return fmt.Errorf("ring buffer size %d: must be a power of two of at least %d bytes", n, os.Getpagesize())
		}
		spec.Maps["events"].MaxEntries = uint32(n)
	}
	if err := spec.Variables["self_tgid"].Set(uint32(os.Getpid())); err != nil {
		return fmt.Errorf("set self_tgid: %w", err)
	}
	if s.opts.WakeupBytes > 0 {
		if err := spec.Variables["wakeup_bytes"].Set(uint64(s.opts.WakeupBytes)); err != nil {
			return fmt.Errorf("set wakeup_bytes: %w", err)
		}
	}
	// One byte per possible tgid: pid_max of them (up to 4M, so at most 4 MiB).
	spec.Maps["maybe_tracked"].MaxEntries = uint32((pidMax(s.opts.ProcRoot) + 7) / 8)
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return explainLoadError(err)
	}
	if s.maybeTracked, err = s.objs.MaybeTracked.Memory(); err != nil {
		return fmt.Errorf("map maybe_tracked into memory: %w", err)
	}
	return nil
}

// pidMaxLimit is the kernel's PID_MAX_LIMIT on 64-bit: no tgid is larger.
const pidMaxLimit = 4 << 20

// pidMax reads kernel.pid_max, the bound on tgids, or assumes the kernel's limit. A tgid
// beyond the array (pid_max raised later) still works: the kernel then checks the hash.
func pidMax(procRoot string) int {
	data, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/pid_max"))
	if err != nil {
		return pidMaxLimit
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n <= 0 || n > pidMaxLimit {
		return pidMaxLimit
	}
	return n
}

// markMaybeTracked sets tgid's byte in maybe_tracked, as the kernel does for the tgids it
// adds to the tracked map. A single-byte store: the kernel's own stores to neighbouring
// bytes are not disturbed.
func (s *EBPF) markMaybeTracked(tgid uint32) error {
	if int64(tgid) >= int64(s.maybeTracked.Size()) {
		return nil // beyond the array: the kernel checks the hash for it anyway
	}
	if _, err := s.maybeTracked.WriteAt([]byte{1}, int64(tgid)); err != nil {
		return fmt.Errorf("mark tgid %d in maybe_tracked: %w", tgid, err)
	}
	return nil
}

// explainLoadError says plainly why the kernel refused the programs.
func explainLoadError(err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("load eBPF programs: %w (%v)", ErrProgramTypeRefused, strings.Split(err.Error(), " (MEMLOCK")[0])
	case errors.As(err, &ve):
		tail := ve.Log
		if len(tail) > 8 {
			tail = tail[len(tail)-8:]
		}
		return fmt.Errorf("load eBPF programs: the verifier rejected a program: %w\n%s", err, strings.Join(tail, "\n"))
	}
	return fmt.Errorf("load eBPF programs: %w", err)
}

func (s *EBPF) fillCatalog() error {
	cat := s.opts.Catalog
	for _, a := range cat.Agents {
		id := cat.ID(a.Name)
		for _, b := range a.Binaries {
			if err := s.objs.AgentNames.Put(nameKey(b), id); err != nil {
				return fmt.Errorf("add agent binary %q to the kernel catalog: %w", b, err)
			}
		}
	}
	installed := cat.ResolvePaths()
	for _, ident := range installed {
		key := bpf.VigilInodeKey{Dev: kernelDev(ident.Dev), Ino: ident.Ino}
		if err := s.objs.AgentInodes.Put(key, cat.ID(ident.Agent)); err != nil {
			return fmt.Errorf("add agent executable inode to the kernel catalog: %w", err)
		}
	}
	s.copies = newCopies(s.opts.ProcRoot, installed)
	for _, size := range s.copies.sizes() {
		if err := s.objs.AgentSizes.Put(uint64(size), uint32(1)); err != nil {
			return fmt.Errorf("add an agent executable's size to the kernel catalog: %w", err)
		}
	}
	for _, name := range cat.Interpreters {
		if err := s.objs.Interpreters.Put(nameKey(name), uint32(1)); err != nil {
			return fmt.Errorf("add interpreter %q to the kernel catalog: %w", name, err)
		}
	}
	return s.fillEnvKeys()
}

// fillEnvKeys loads the environment allowlist: each join key of the agents registry gets the
// exec record's value slot of its position (envKeySlots).
func (s *EBPF) fillEnvKeys() error {
	if len(envKeySlots) > len(bpf.VigilExecEvent{}.Env) {
		return fmt.Errorf("the agents registry has %d environment join keys, the kernel program %d slots", len(envKeySlots), len(bpf.VigilExecEvent{}.Env))
	}
	for slot, k := range envKeySlots {
		var key bpf.VigilEnvName
		if len(k.Name) >= len(key.Name) {
			return fmt.Errorf("environment join key %q: longer than %d bytes", k.Name, len(key.Name)-1)
		}
		copy(key.Name[:], k.Name)
		if err := s.objs.EnvKeys.Put(key, uint32(slot)); err != nil {
			return fmt.Errorf("add environment join key %q to the kernel allowlist: %w", k.Name, err)
		}
	}
	return nil
}

func nameKey(name string) bpf.VigilNameKey {
	var k bpf.VigilNameKey
	copy(k.Name[:len(k.Name)-1], name)
	return k
}

// kernelDev converts a user-space st_dev into the kernel's internal dev_t (MAJOR<<20|MINOR),
// which is what inode->i_sb->s_dev holds.
func kernelDev(dev uint64) uint64 {
	return uint64(unix.Major(dev))<<20 | uint64(unix.Minor(dev))
}

// userDev is kernelDev's inverse: the st_dev stat(2) reports for a kernel dev_t the probes
// read.
func userDev(kdev uint64) uint64 {
	return unix.Mkdev(uint32(kdev>>20), uint32(kdev&(1<<20-1)))
}

// syscallTracepoint is a syscall tracepoint Vigil attaches and the program for it.
// optional marks a syscall the running kernel may lack (fchmodat2, Linux 6.6): it is attached
// where its tracepoint exists and left out, with the floor's, elsewhere.
type syscallTracepoint struct {
	name     string
	prog     func(*bpf.VigilPrograms) *ebpf.Program
	optional bool
}

// syscallTracepoints are the syscall tracepoints Vigil attaches: the calls every architecture
// has, then the older path calls of this one (legacySyscallTracepoints, syscalls_linux_*.go).
// There are no enter hooks: each exit program reads its syscall's arguments from the saved
// user registers.
var syscallTracepoints = append([]syscallTracepoint{
	{"sys_exit_openat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitOpenat }, false},
	{"sys_exit_openat2", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitOpenat2 }, false},
	{"sys_exit_connect", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitConnect }, false},
	// File mutations (one record layout, struct mutate_event).
	{"sys_exit_renameat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitRenameat }, false},
	{"sys_exit_renameat2", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitRenameat2 }, false},
	{"sys_exit_unlinkat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitUnlinkat }, false},
	{"sys_exit_linkat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitLinkat }, false},
	{"sys_exit_symlinkat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitSymlinkat }, false},
	{"sys_exit_fchmod", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitFchmod }, false},
	{"sys_exit_fchmodat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitFchmodat }, false},
	{"sys_exit_fchmodat2", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitFchmodat2 }, true},
	{"sys_exit_fchown", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitFchown }, false},
	{"sys_exit_fchownat", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitFchownat }, false},
	{"sys_exit_truncate", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitTruncate }, false},
	{"sys_exit_ftruncate", func(p *bpf.VigilPrograms) *ebpf.Program { return p.ExitFtruncate }, false},
}, legacySyscallTracepoints...)

// SyscallTracepoints names the syscall tracepoints (category "syscalls") Vigil attaches to on
// this architecture; the benchmark's overhead floor attaches empty programs to the same ones.
// An optional one the running kernel lacks is left out.
func SyscallTracepoints() []string {
	names := make([]string, 0, len(syscallTracepoints))
	for _, tp := range syscallTracepoints {
		if tp.optional && !syscallTracepointExists(tp.name) {
			continue
		}
		names = append(names, tp.name)
	}
	return names
}

// syscallTracepointExists reports whether tracefs lists the syscall tracepoint.
func syscallTracepointExists(name string) bool {
	for _, root := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(root, "events", "syscalls", name)); err == nil {
			return true
		}
	}
	return false
}

func (s *EBPF) attach() error {
	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"sched_process_exec", s.objs.HandleExec},
		{"sched_process_fork", s.objs.HandleFork},
		{"sched_process_exit", s.objs.HandleExit},
		{"io_uring_complete", s.objs.IoUringComplete},
	} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p.prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("attach tp_btf/%s: %w", p.name, err)
		}
		s.links = append(s.links, l)
	}
	for _, tp := range syscallTracepoints {
		l, err := link.Tracepoint("syscalls", tp.name, tp.prog(&s.objs.VigilPrograms), nil)
		if err != nil && tp.optional && errors.Is(err, os.ErrNotExist) {
			continue // a syscall this kernel does not have
		}
		if err != nil {
			return fmt.Errorf("attach tracepoint syscalls/%s: %w", tp.name, err)
		}
		s.links = append(s.links, l)
	}
	return s.attachEgress()
}

// egressHooks are the cgroup sock_addr hooks: every connect and every send to a named
// destination, whichever path reaches it (syscall, TCP Fast Open, io_uring), with the
// kernel's copy of the address.
var egressHooks = []struct {
	attach ebpf.AttachType
	prog   func(*bpf.VigilPrograms) *ebpf.Program
}{
	{ebpf.AttachCGroupInet4Connect, func(p *bpf.VigilPrograms) *ebpf.Program { return p.Connect4 }},
	{ebpf.AttachCGroupInet6Connect, func(p *bpf.VigilPrograms) *ebpf.Program { return p.Connect6 }},
	{ebpf.AttachCgroupUnixConnect, func(p *bpf.VigilPrograms) *ebpf.Program { return p.ConnectUnix }},
	{ebpf.AttachCGroupUDP4Sendmsg, func(p *bpf.VigilPrograms) *ebpf.Program { return p.Sendmsg4 }},
	{ebpf.AttachCGroupUDP6Sendmsg, func(p *bpf.VigilPrograms) *ebpf.Program { return p.Sendmsg6 }},
	{ebpf.AttachCgroupUnixSendmsg, func(p *bpf.VigilPrograms) *ebpf.Program { return p.SendmsgUnix }},
}

// EgressAttachTypes are the cgroup hooks Vigil attaches at the cgroup2 root, in order; the
// benchmark's overhead floor attaches empty programs to the same ones.
func EgressAttachTypes() []ebpf.AttachType {
	types := make([]ebpf.AttachType, len(egressHooks))
	for i, h := range egressHooks {
		types[i] = h.attach
	}
	return types
}

// attachEgress attaches the egress hooks at the root of the cgroup2 hierarchy, where they run
// for every process on the host (a tracked-map lookup and return for all but agent trees).
func (s *EBPF) attachEgress() error {
	root, err := EnsureCgroup2()
	if err != nil {
		return err
	}
	for _, h := range egressHooks {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: root, Attach: h.attach, Program: h.prog(&s.objs.VigilPrograms)})
		if err != nil {
			return fmt.Errorf("attach cgroup hook %s at %s: %w", h.attach, root, err)
		}
		s.links = append(s.links, l)
	}
	return nil
}

// seed walks /proc for agent trees that were running before the probes attached and adds
// them to the kernel map. It walks twice: a child forked by a not-yet-seeded parent during
// the first walk is found by the second.
func (s *EBPF) seed() error {
	seen := map[int]bool{}
	for pass := 0; pass < 2; pass++ {
		procs, stats, err := Bootstrap(s.opts.ProcRoot, s.opts.Catalog, os.Getpid())
		if err != nil {
			return fmt.Errorf("bootstrap running agent trees: %w", err)
		}
		starts := make(map[int]uint64, len(procs))
		for _, p := range procs {
			starts[p.Pid] = p.StartBootNs
		}
		for _, p := range procs {
			if seen[p.Pid] {
				continue
			}
			entry := bpf.VigilTrackEntry{Root: uint32(p.RootPid), Agent: s.opts.Catalog.ID(p.Agent), RootStart: starts[p.RootPid]}
			// The byte first: a set byte without an entry only costs the probe a hash lookup,
			// an entry without its byte would be skipped.
			if err := s.markMaybeTracked(uint32(p.Pid)); err != nil {
				return fmt.Errorf("seed tracked process %d: %w", p.Pid, err)
			}
			if err := s.objs.Tracked.Update(uint32(p.Pid), entry, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
				return fmt.Errorf("seed tracked process %d: %w", p.Pid, err)
			}
			seen[p.Pid] = true
			s.seeded = append(s.seeded, p)
		}
		if pass == 0 {
			s.opts.Log.Debug().Int("scanned", stats.Scanned).Int("roots", stats.Roots).Int("tracked", stats.Tracked).
				Int("vanished", stats.Vanished).Msg("bootstrap")
		}
	}
	return nil
}

// Name implements sensor.Source.
func (s *EBPF) Name() string { return "ebpf" }

// Started implements sensor.Source: the /proc bootstrap's processes, the boot id, the time
// NewEBPF took from its start to probes attached and bootstrap done, and the /proc socket
// lookup that names telemetry senders.
func (s *EBPF) Started() sensor.Started {
	return sensor.Started{Seeded: s.seeded, BootID: s.bootID, Ready: s.ready, Peers: PeerResolver{ProcRoot: s.opts.ProcRoot}}
}

// sweepCheckRecords is how many records the reader handles between two looks at the clock
// for the merge sweep when the ring never empties.
const sweepCheckRecords = 4096

// Run reads the ring buffer until ctx is cancelled, then drains what is left and reports
// the merge runs still open in the kernel.
func (s *EBPF) Run(ctx context.Context, emit func(*proto.Event)) error {
	stop := context.AfterFunc(ctx, func() { s.reader.SetDeadline(time.Now()) })
	defer stop()
	var rec ringbuf.Record
	// The deadline only matters once the ring is empty: the reader returns queued records
	// without waiting. So it is renewed after each timeout, not before every record (reading
	// the clock per record cost ~4% of the sensor's CPU under load).
	s.reader.SetDeadline(time.Now().Add(s.opts.PollInterval))
	defer s.dropHeld()
	nextSweep := time.Now().Add(mergeSweepEvery)
	sweep := func() {
		if now := time.Now(); now.After(nextSweep) {
			s.sweepRuns(false, emit)
			nextSweep = now.Add(mergeSweepEvery)
		}
	}
	records := 0
	for {
		err := s.reader.ReadInto(&rec)
		s.applyCopyVerdicts(emit)
		switch {
		case err == nil:
			s.handle(rec.RawSample, emit)
			if records++; records%sweepCheckRecords == 0 {
				sweep()
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			if ctx.Err() != nil {
				// The ring is drained: a deadline error comes only once it is empty.
				s.sweepRuns(true, emit)
				return nil
			}
			sweep()
			s.reader.SetDeadline(time.Now().Add(s.opts.PollInterval))
		case errors.Is(err, ringbuf.ErrClosed):
			return nil
		default:
			return fmt.Errorf("read ring buffer: %w", err)
		}
	}
}

func (s *EBPF) handle(raw []byte, emit func(*proto.Event)) {
	r, err := s.dec.decode(raw)
	if err != nil {
		s.decodeFails.Add(1)
		s.opts.Log.Warn().Err(err).Int("bytes", len(raw)).Msg("undecodable ring buffer record")
		return
	}
	if s.mergeRecord(&r) {
		s.dispatch(r, emit)
	}
}

// dispatch holds a pending tree's record, settles it, or delivers it.
func (s *EBPF) dispatch(r record, emit func(*proto.Event)) {
	if r.trackFlags&trackPending != 0 {
		if h := s.held[uint32(r.event.Vigil.Root.Pid)]; h != nil {
			s.hold(h, r.event)
			return
		}
		if !s.settlePending(r) {
			return
		}
	}
	s.deliver(r.event, emit)
}

// deliver emits an agent tree's event; a root's exit ends its verdict.
func (s *EBPF) deliver(e *proto.Event, emit func(*proto.Event)) {
	if e.Event.Action == proto.ActionExit && e.Process.Pid == e.Vigil.Root.Pid {
		delete(s.confirmed, uint32(e.Process.Pid))
	}
	emit(e)
}

// verdict is user space's decision on a pending root, for the process it was made for.
type verdict struct {
	agent uint32
	start uint64 // the root's start, CLOCK_BOOTTIME ns
}

// settlePending decides a pending interpreter tree from its root's exec argv: confirmed
// trees get their agent id in the kernel map; anything else stops being followed. Returns
// whether the record belongs to an agent tree.
//
// A verdict belongs to one process, (pid, start), not to a pid. The ring lags the kernel, so
// by the time a root's exec is judged the root may have exited and its pid been taken by
// another process with its own kernel entry under the same pid. The verdict is applied only
// to the entries whose root start is the judged root's (confirm, reject): an agent root
// reusing a rejected interpreter's pid would else be rejected with it and all its events
// lost, and a process reusing a confirmed root's pid would inherit the agent's trust. In
// user space too, a confirmed verdict is dropped when the root's pid shows up with another
// start (its exit record was lost), and the new process is judged afresh.
func (s *EBPF) settlePending(r record) bool {
	e := r.event
	root := uint32(e.Vigil.Root.Pid)
	isRoot := e.Process.Pid == e.Vigil.Root.Pid
	if v, ok := s.confirmed[root]; ok {
		if !isRoot || sensor.SameStart(v.start, e.Process.StartBootNs) {
			setAgent(e, s.opts.Catalog.NameOf(v.agent))
			return true
		}
		delete(s.confirmed, root) // a verdict on an earlier process with this pid
	}
	if e.Event.Action != proto.ActionExec || !isRoot {
		// Only the root's exec carries the argv that decides, and it comes first in the ring:
		// this tree was rejected.
		return false
	}
	start := e.Process.StartBootNs
	exe := e.Process.Executable
	v, agent := tree.Judge(s.opts.Catalog, nil, nil, tree.Image{Path: exe}, e.Process.Args)
	if v != tree.Agent && exe != "" && !s.opts.Catalog.IsInterpreter(filepath.Base(exe)) {
		// Not an interpreter: the kernel held it for its size, perhaps a copy of an agent
		// binary. Its records wait for the hash (holdCopy).
		s.holdCopy(root, start, e)
		return false
	}
	if v != tree.Agent {
		s.reject(root, start)
		return false
	}
	id := s.opts.Catalog.ID(agent)
	s.confirmed[root] = verdict{agent: id, start: start}
	s.confirm(root, start, id)
	setAgent(e, agent)
	return true
}

func setAgent(e *proto.Event, name string) {
	if e.GenAI == nil {
		e.GenAI = &proto.GenAI{}
	}
	e.GenAI.Agent = &proto.GenAIAgent{Name: name}
}

// confirm makes a pending root and the children it forked meanwhile a real agent tree.
func (s *EBPF) confirm(root uint32, start uint64, agent uint32) {
	updateTree(s.objs.Tracked, root, start, func(pid uint32, e *bpf.VigilTrackEntry) {
		e.Agent = agent
		e.Flags &^= trackPending
		s.objs.Tracked.Update(pid, *e, ebpf.UpdateExist)
	})
}

// reject marks a pending root as not an agent (the kernel then ignores it and does not
// follow its forks) and forgets the children it forked meanwhile.
func (s *EBPF) reject(root uint32, start uint64) {
	updateTree(s.objs.Tracked, root, start, func(pid uint32, e *bpf.VigilTrackEntry) {
		if pid == root {
			e.Flags |= trackRejected
			s.objs.Tracked.Update(pid, *e, ebpf.UpdateExist)
			return
		}
		s.objs.Tracked.Delete(pid)
	})
}

// updateTree calls fn for the root entry first, then every entry in its tree: the entries
// whose root is (root, start). An entry of a later process that took the root's pid, or of
// its tree, has another root start and is left alone; a start of 0 (unknown) matches any.
func updateTree(tracked *ebpf.Map, root uint32, start uint64, fn func(pid uint32, e *bpf.VigilTrackEntry)) {
	var entry bpf.VigilTrackEntry
	if err := tracked.Lookup(root, &entry); err == nil && entry.Root == root && sensor.SameStart(entry.RootStart, start) {
		fn(root, &entry)
	}
	var pid uint32
	iter := tracked.Iterate()
	var members []uint32
	for iter.Next(&pid, &entry) {
		if entry.Root == root && pid != root && sensor.SameStart(entry.RootStart, start) {
			members = append(members, pid)
		}
	}
	for _, pid := range members {
		if err := tracked.Lookup(pid, &entry); err == nil && sensor.SameStart(entry.RootStart, start) {
			fn(pid, &entry)
		}
	}
}

// Lost implements sensor.Source: the kernel's per-CPU drop counters summed per kind, plus
// records user space could not decode.
func (s *EBPF) Lost() map[string]uint64 {
	lost := map[string]uint64{}
	for kind, name := range dropKindNames {
		var perCPU []uint64
		if err := s.objs.Drops.Lookup(uint32(kind), &perCPU); err != nil {
			continue
		}
		var sum uint64
		for _, n := range perCPU {
			sum += n
		}
		if sum > 0 {
			lost[name] += sum
		}
	}
	if n := s.decodeFails.Load(); n > 0 {
		lost["decode"] = n
	}
	if n := s.heldDrops.Load(); n > 0 {
		lost["copy_held"] = n
	}
	if n := s.merges.unnamed.Load(); n > 0 {
		lost["open_merged_unnamed"] = n
	}
	return lost
}

var _ sensor.RingSource = (*EBPF)(nil)

// Ring implements sensor.RingSource: the bytes written by the kernel and not yet read, and
// the ring's size. Two atomic loads of the ring's positions, safe beside Run; zeros once
// the source is closed.
func (s *EBPF) Ring() (pending, size int) {
	s.readerMu.RLock()
	defer s.readerMu.RUnlock()
	if s.reader == nil || s.readerClosed {
		return 0, 0
	}
	return s.reader.AvailableBytes(), s.reader.BufferSize()
}

// Close detaches the probes and frees the kernel objects.
func (s *EBPF) Close() error {
	var errs []error
	if s.reader != nil {
		s.readerMu.Lock()
		errs = append(errs, s.reader.Close())
		s.readerClosed = true
		s.readerMu.Unlock()
	}
	// Detaching a tracepoint waits for an RCU grace period (~60 ms each here); closing the
	// links one by one made shutdown take most of a second.
	linkErrs := make([]error, len(s.links))
	var wg sync.WaitGroup
	for i, l := range s.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			linkErrs[i] = l.Close()
		}()
	}
	wg.Wait()
	errs = append(errs, linkErrs...)
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}
