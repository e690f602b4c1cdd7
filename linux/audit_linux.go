package linux

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// The audit source: the kernel's audit subsystem, for kernels that refuse eBPF. Audit cannot
// follow a process tree in the kernel, so the tree is followed in user space (sensor/tree)
// and the rules are scoped as tightly as audit allows:
//
//   - execve and execveat of every process (but the sensor), successful ones only: an agent
//     root can start anywhere, and only its exec says so;
//   - opens, connects, forks and exit_group of every process of an agent root's user
//     (uid=U, AuditScopeUser), and of each followed process, by two rules per process:
//     pid=P and ppid=P (the ppid rule covers a new child from its first instant, before
//     user space has read its fork and added the child's own rules), and of each installed
//     agent executable (exe=PATH).
//
// What it cannot see is documented in docs/schema.md ("The audit source").

// AuditOptions configure the audit source.
type AuditOptions struct {
	Catalog *sensor.Catalog
	// ProcRoot is where /proc is mounted.
	ProcRoot string
	// StatePath keeps the audit settings to restore, so that a run killed with SIGKILL is
	// undone by the next start. It lives under /run: a reboot resets both.
	StatePath string
	// PollInterval bounds how long a record waits in the socket and how often exits that
	// audit did not report (a process killed by a signal) are looked for.
	PollInterval time.Duration
	// Scope is AuditScopeTree or AuditScopeUser (sensor/default.yaml, kernel.audit_scope).
	Scope string
	Log   zerolog.Logger
}

// Audit scopes: what the opens, connects, forks and exits are audited of.
const (
	// AuditScopeTree: each followed process only, by pid and ppid rules added as the tree
	// grows. Cheap for the rest of the machine, but a process forked by a child whose own
	// rules are not in place yet is seen only from then on.
	AuditScopeTree = "tree"
	// AuditScopeUser (the default): besides, every process of the user an agent root runs
	// as, from its first instant; user space keeps the tree's. Complete, at the cost of
	// auditing that user's other processes too.
	AuditScopeUser = "user"
)

// DefaultAuditStatePath is where the audit source keeps the settings it restores.
const DefaultAuditStatePath = "/run/vigil/audit-state.json"

// Audit is the Linux source built on the audit subsystem.
type Audit struct {
	opts    AuditOptions
	ctl     *auditControl
	sock    *auditSocket
	client  *libaudit.AuditClient // drives sock: SetPID, Receive
	tracker *tree.Tracker
	copies  *copies
	// installed are the agent executables on disk, audited by path from the start.
	installed []sensor.ExeIdentity
	started   sensor.Started
	offset    time.Duration // wall clock minus boot clock, for process start times

	// users are the uids whose rule is installed (AuditScopeUser).
	users map[uint32]bool
	// scoped are the processes whose own rules are installed; suspects were found dead by
	// the last sweep; swept had their exit written by a sweep, at that time. Only Run
	// touches them.
	scoped   map[int]bool
	suspects map[int]procStat
	swept    map[int]time.Time
	// emit is Run's: record groups are handed over inside Run.
	emit func(*proto.Event)

	mu         sync.Mutex
	lost       map[string]uint64
	kernelLost uint32 // the kernel's lost counter when last read
}

// NewAudit checks privileges, takes over the audit configuration (saving what it finds),
// installs the exec rule and follows the agent trees already running. Everything that can
// fail does so here, with the step that failed.
func NewAudit(opts AuditOptions) (*Audit, error) {
	begin := time.Now()
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.StatePath == "" {
		opts.StatePath = DefaultAuditStatePath
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	switch opts.Scope {
	case "":
		opts.Scope = AuditScopeUser
	case AuditScopeUser, AuditScopeTree:
	default:
		return nil, fmt.Errorf("audit scope %q: want %s or %s", opts.Scope, AuditScopeUser, AuditScopeTree)
	}
	if err := checkAuditPrivileges(); err != nil {
		return nil, err
	}
	bootID, err := ReadBootID(opts.ProcRoot)
	if err != nil {
		return nil, err
	}
	offset, err := BootTimeOffset()
	if err != nil {
		return nil, err
	}
	installed := opts.Catalog.ResolvePaths()
	s := &Audit{opts: opts, offset: offset, installed: installed, copies: newCopies(opts.ProcRoot, installed),
		users: map[uint32]bool{}, scoped: map[int]bool{}, suspects: map[int]procStat{}, swept: map[int]time.Time{},
		lost: map[string]uint64{}}
	s.tracker = tree.New(tree.Options{Catalog: opts.Catalog, Installed: installed, CopyOf: s.copyOf})
	if s.ctl, err = openAuditControl(opts.StatePath); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.seed(); err != nil {
		s.Close()
		return nil, err
	}
	s.started = sensor.Started{Seeded: s.started.Seeded, BootID: bootID, Ready: time.Since(begin), Peers: PeerResolver{ProcRoot: opts.ProcRoot}}
	return s, nil
}

// open connects the record socket (as the audit daemon, or beside a running one), enables
// auditing and installs the exec rule.
func (s *Audit) open() error {
	groups := uint32(0) // unicast: the kernel sends the records to the registered daemon
	if s.ctl.otherDaemon != 0 {
		// Another daemon (auditd) receives the records; Vigil listens on the multicast group
		// beside it and leaves its registration alone.
		s.opts.Log.Warn().Int("audit_daemon_pid", s.ctl.otherDaemon).
			Msg("another audit daemon is registered: listening beside it on the multicast group; its log also gets the records of Vigil's rules (key " + AuditKey + ")")
		groups = libaudit.NetlinkGroupReadLog
	}
	sock, err := openAuditSocket(groups)
	if err != nil {
		return err
	}
	s.sock, s.client = sock, &libaudit.AuditClient{Netlink: sock}
	if s.ctl.otherDaemon == 0 {
		if err := s.client.SetPID(libaudit.WaitForReply); err != nil {
			return fmt.Errorf("register as the audit daemon: %w", err)
		}
	}
	if err := s.ctl.enable(); err != nil {
		return err
	}
	status, err := s.ctl.status()
	if err != nil {
		return err
	}
	s.kernelLost = status.Lost
	if err := s.ctl.add(fmt.Sprintf("-a always,exit -F arch=%s -S execve,execveat -F success=1 -F pid!=%d", auditArch(), os.Getpid())); err != nil {
		return err
	}
	// An installed agent executable is audited from its first instant, before its exec is
	// read and its own rules are added (its loader's opens, an early connect).
	for _, x := range s.installed {
		if strings.ContainsAny(x.Path, " \t\"'") {
			continue // auditctl syntax cannot carry it; the pid rules still follow it
		}
		if err := s.ctl.add(fmt.Sprintf("-a always,exit -F arch=%s -S %s -F exe=%s", auditArch(), scopedSyscalls, x.Path)); err != nil {
			return err
		}
	}
	return nil
}

// scopedSyscalls are the syscalls audited for each followed process, those the machine's
// syscall table has (arm64 has no open, creat, fork or vfork).
var scopedSyscalls = func() string {
	have := map[string]bool{}
	for _, name := range auditArchSyscalls[auditArchToken[runtime.GOARCH]] {
		have[name] = true
	}
	var names []string
	for _, name := range []string{"open", "openat", "openat2", "creat", "connect", "clone", "clone3", "fork", "vfork", "exit_group"} {
		if have[name] {
			names = append(names, name)
		}
	}
	return strings.Join(names, ",")
}()

// auditArchToken is the arch field of the machine's own records (AUDIT_ARCH_*, as hex).
var auditArchToken = map[string]string{"amd64": "c000003e", "arm64": "c00000b7"}

// seed follows the agent trees running before the rules were in place, as the eBPF source
// does: two walks, so a child forked during the first is found by the second.
func (s *Audit) seed() error {
	seen := map[int]bool{}
	for pass := 0; pass < 2; pass++ {
		procs, _, err := Bootstrap(s.opts.ProcRoot, s.opts.Catalog, os.Getpid())
		if err != nil {
			return fmt.Errorf("bootstrap running agent trees: %w", err)
		}
		var fresh []sensor.ProcessInfo
		for _, p := range procs {
			if !seen[p.Pid] {
				seen[p.Pid] = true
				fresh = append(fresh, p)
			}
		}
		s.tracker.Seed(procs)
		for _, p := range fresh {
			if err := s.scope(p.Pid); err != nil {
				return err
			}
			if p.Pid == p.RootPid {
				if err := s.scopeUser(uint32(p.UID)); err != nil {
					return err
				}
			}
		}
		s.started.Seeded = append(s.started.Seeded, fresh...)
	}
	return nil
}

// scope installs the rules that audit pid's own syscalls and its new children's.
func (s *Audit) scope(pid int) error {
	if s.scoped[pid] {
		return nil
	}
	for _, field := range []string{"pid", "ppid"} {
		if err := s.ctl.add(s.scopedRule(field, pid)); err != nil {
			return err
		}
	}
	s.scoped[pid] = true
	return nil
}

// scopeUser installs, under AuditScopeUser, the rule that audits every process of uid, an
// agent root's user. It stays until the source stops.
func (s *Audit) scopeUser(uid uint32) error {
	if s.opts.Scope != AuditScopeUser || s.users[uid] {
		return nil
	}
	if err := s.ctl.add(fmt.Sprintf("-a always,exit -F arch=%s -S %s -F uid=%d -F pid!=%d", auditArch(), scopedSyscalls, uid, os.Getpid())); err != nil {
		return err
	}
	s.users[uid] = true
	return nil
}

// unscope removes pid's rules once it has exited.
func (s *Audit) unscope(pid int) {
	if !s.scoped[pid] {
		return
	}
	delete(s.scoped, pid)
	for _, field := range []string{"pid", "ppid"} {
		if err := s.ctl.remove(s.scopedRule(field, pid)); err != nil {
			s.opts.Log.Warn().Err(err).Int("pid", pid).Msg("remove audit rule")
		}
	}
}

func (s *Audit) scopedRule(field string, pid int) string {
	return fmt.Sprintf("-a always,exit -F arch=%s -S %s -F %s=%d", auditArch(), scopedSyscalls, field, pid)
}

// Name implements sensor.Source.
func (s *Audit) Name() string { return "audit" }

// Started implements sensor.Source.
func (s *Audit) Started() sensor.Started { return s.started }

// Run reads audit records until ctx is cancelled, then drains what is queued.
func (s *Audit) Run(ctx context.Context, emit func(*proto.Event)) error {
	s.emit = emit
	groups := newAuditGroups(auditGroupTimeout, s.handleGroup)
	const checkEvery = 250 * time.Millisecond
	lastCheck := time.Now()
	for {
		stopping := ctx.Err() != nil
		if _, err := s.sock.wait(s.opts.PollInterval); err != nil {
			return err
		}
		if err := s.drain(groups); err != nil {
			return err
		}
		if stopping {
			groups.expire(time.Time{})
			s.checkKernel(groups)
			return nil
		}
		if now := time.Now(); now.Sub(lastCheck) >= checkEvery {
			lastCheck = now
			groups.expire(now)
			s.sweepExits()
			s.checkKernel(groups)
		}
	}
}

// auditGroupTimeout bounds how long the records of an event wait for their EOE.
const auditGroupTimeout = 500 * time.Millisecond

// drain reads every message queued in the socket into groups.
func (s *Audit) drain(groups *auditGroups) error {
	for {
		msg, err := s.client.Receive(true)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil
		case errors.Is(err, unix.ENOBUFS):
			// The socket overflowed: the kernel dropped records it had queued for it.
			s.count("audit_socket", 1)
			continue
		case err != nil:
			return fmt.Errorf("receive audit record: %w", err)
		}
		if msg.Type < auparse.AUDIT_USER_AUTH || msg.Type > auparse.AUDIT_LAST_USER_MSG2 {
			continue // netlink control messages (acks), not records
		}
		m, err := auparse.Parse(msg.Type, string(msg.Data))
		if err != nil {
			s.count("decode", 1)
			s.opts.Log.Warn().Err(err).Stringer("type", msg.Type).Msg("undecodable audit record header")
			continue
		}
		groups.push(m, time.Now())
	}
}

// checkKernel turns increases of the kernel's lost counter (records dropped because the
// backlog was full or the rate limit hit) into lost counts, with the serials that never
// arrived.
func (s *Audit) checkKernel(groups *auditGroups) {
	status, err := s.ctl.status()
	if err != nil {
		s.opts.Log.Warn().Err(err).Msg("read audit status")
		return
	}
	if d := status.Lost - s.kernelLost; d > 0 {
		s.count("audit_kernel", uint64(d))
	}
	s.kernelLost = status.Lost
	s.setCount("track_full", s.tracker.Full())
	s.setCount("audit_sequence", groups.lost)
}

func (s *Audit) count(kind string, n uint64) {
	s.mu.Lock()
	s.lost[kind] += n
	s.mu.Unlock()
}

func (s *Audit) setCount(kind string, n uint64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.lost[kind] = n
	s.mu.Unlock()
}

// Lost implements sensor.Source: the kernel's lost records, sequence gaps, socket overflows,
// undecodable records, processes not followed, and execs whose join keys could not be read.
func (s *Audit) Lost() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.lost)
}

// Close deletes Vigil's rules, restores the audit settings and unregisters.
func (s *Audit) Close() error {
	var errs []error
	if s.ctl != nil {
		errs = append(errs, s.ctl.Close())
	}
	if s.client != nil {
		errs = append(errs, s.client.Close()) // unsets the audit pid if it set it; closes sock
	}
	return errors.Join(errs...)
}
