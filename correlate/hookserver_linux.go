package correlate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/internal/owned"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

const (
	// hookReadTimeout bounds one connection: reading the frame and writing the ack.
	hookReadTimeout = 2 * time.Second
	// hookMaxConns bounds the connections served at once, across uids; more wait for a slot.
	hookMaxConns = 64
	// hookServedPerUID bounds one uid's connections served at once; its others wait for one
	// of its own slots (at most the read timeout), and past hookAdmittedPerUID in all they are
	// closed at once (the client counts them as undelivered). So idle or slow connections of
	// one user (another account on the laptop) cannot delay another user's hooks: 80 idle
	// connections of uid 65534 delayed the agent's hooks by up to 1.9 s.
	hookServedPerUID   = 8
	hookAdmittedPerUID = 512
)

// HookServer receives hook frames on a unix socket.
//
// The socket is mode 0666 so that hooks running as any user can connect. That is safe
// because nothing in a frame is trusted to say who sent it: the sender is the pid and uid
// the kernel reports for the connection (SO_PEERCRED), and the correlator binds a hook's
// events to a session only when that pid is the agent's own hook invocation (HookTrust
// judges it from the process table). A user can at most
// send well-formed lies about their own processes, which the kernel view does not confirm,
// or garbage, which is counted and dropped. Frames are bounded (MaxHookFrameBytes), reads
// have a deadline and concurrent connections are capped, so a connection cannot hold memory
// or a goroutine for long.
type HookServer struct {
	path           string
	undeliveredDir string
	deliver        func(HookBatch)
	// undelivered totals, per uid, the hooks taken from the undelivered directory.
	undeliveredMu sync.Mutex
	undelivered   map[int]uint64
	// perUID is each uid's gate (uidGate), under perUIDMu.
	perUIDMu    sync.Mutex
	perUID      map[int]*uidGate
	senderStart func(pid int) (uint64, error)
	log         zerolog.Logger
	ln          *net.UnixListener
	readTimeout time.Duration

	accepted, malformed, tooLarge, timedOut, refused, events atomic.Uint64
	perAgent                                                 map[string]*atomic.Uint64

	closeOnce sync.Once
	// lock is the socket's lock file, held while the server lives (lockSocket).
	lock *os.File
}

// HookOption configures a HookServer.
type HookOption func(*HookServer)

// WithUndeliveredDir sets the undelivered-count directory (default DefaultUndeliveredDir);
// "" disables it.
func WithUndeliveredDir(dir string) HookOption {
	return func(s *HookServer) { s.undeliveredDir = dir }
}

// WithSenderStart names each hook sender by pid and start time, as OTLP senders are: start
// reads a live process's start time (ns since boot); a pid alone could be taken over by
// another process once the sender exits.
func WithSenderStart(start func(pid int) (uint64, error)) HookOption {
	return func(s *HookServer) { s.senderStart = start }
}

// NewHookServer listens on path ("" for DefaultHookSocket). It creates the socket's
// directory (0755, owned by the caller; an existing one owned by anyone else is refused),
// removes a stale socket left by a previous run (only a socket: any other file there is an
// error), binds the socket with mode 0666, and prepares the undelivered directory. deliver
// is called once per hook call that produced events, from the connection's goroutine, so
// several calls may run at once; it should hand the batch off without blocking for long:
// while hookMaxConns deliveries block, new connections wait for a slot and their clients
// give up after 500 ms (and count the hook as undelivered). Each uid has its own
// hookServedPerUID slots first, so one user's idle connections cannot hold another's back.
func NewHookServer(path string, deliver func(HookBatch), log zerolog.Logger, opts ...HookOption) (*HookServer, error) {
	if path == "" {
		path = DefaultHookSocket
	}
	if deliver == nil {
		return nil, errors.New("hook server: nil deliver function")
	}
	s := &HookServer{
		perUID:         map[int]*uidGate{},
		undelivered:    map[int]uint64{},
		path:           path,
		undeliveredDir: DefaultUndeliveredDir,
		deliver:        deliver,
		log:            log,
		readTimeout:    hookReadTimeout,
		perAgent:       map[string]*atomic.Uint64{},
	}
	// One counter per agent that has hooks (the registry's hook names): the map is fixed, so
	// outside input cannot grow it.
	for _, a := range agents.All() {
		if len(a.HookNames) > 0 {
			s.perAgent[a.Name] = new(atomic.Uint64)
		}
	}
	for _, o := range opts {
		o(s)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hook server: create socket dir: %w", err)
	}
	if err := owned.Dir(dir); err != nil {
		return nil, fmt.Errorf("hook server: socket dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hook server: chmod socket dir: %w", err)
	}
	lock, err := lockSocket(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("hook server: %w", err)
	}
	s.lock = lock
	if err := removeStaleSocket(path); err != nil {
		lock.Close()
		return nil, fmt.Errorf("hook server: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("hook server: listen on %s: %w", path, err)
	}
	s.ln = ln
	if err := os.Chmod(path, 0o666); err != nil {
		s.Close()
		return nil, fmt.Errorf("hook server: chmod socket: %w", err)
	}
	if s.undeliveredDir != "" {
		if err := PrepareUndeliveredDir(s.undeliveredDir); err != nil {
			s.Close()
			return nil, fmt.Errorf("hook server: %w", err)
		}
	}
	return s, nil
}

// lockSocket takes the exclusive lock that makes one server the socket's owner: a second
// instance (another `vigil run` with other ports) is refused before it touches the socket,
// instead of replacing it and deleting it when it exits. The kernel drops the lock when
// its holder dies, so a crashed server never blocks the next.
func lockSocket(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open socket lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another vigil serves this hook socket (it holds %s)", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// removeStaleSocket removes a socket file at path; a missing path is fine, anything else
// there is an error (never delete a file the daemon did not create).
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket path: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("socket path %s exists and is not a socket (%s)", path, fi.Mode().Type())
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// Path is the socket's path.
func (s *HookServer) Path() string { return s.path }

// Serve accepts connections until ctx is done or Close is called, then closes the listener
// (removing the socket file), waits for the connections in flight and returns nil. It
// returns an error only when accepting fails for another reason.
func (s *HookServer) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Closed, lock released, before Serve returns: Close may be running on ctx's goroutine
	// still, and a second Close waits for it (sync.Once).
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	sem := make(chan struct{}, hookMaxConns)
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ECONNABORTED) {
				s.log.Warn().Err(err).Msg("hook server: accept")
				time.Sleep(50 * time.Millisecond)
				continue
			}
			s.Close()
			return fmt.Errorf("hook server: accept: %w", err)
		}
		s.accepted.Add(1)
		pid, uid, err := peerCred(conn)
		if err != nil {
			s.malformed.Add(1)
			s.log.Debug().Err(err).Msg("hook server: peer credentials")
			conn.Close()
			continue
		}
		g := s.admit(uid)
		if g == nil {
			s.refused.Add(1)
			conn.Close()
			continue
		}
		wg.Go(func() {
			defer s.leave(uid, g)
			// One of the uid's own slots, then one of the server's.
			select {
			case g.served <- struct{}{}:
				defer func() { <-g.served }()
			case <-time.After(s.readTimeout):
				s.timedOut.Add(1)
				conn.Close()
				return
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			s.handle(conn, pid, uid)
		})
	}
}

// uidGate is one uid's share of the server: the connections it has admitted, and the slots
// (hookServedPerUID) they take turns on.
type uidGate struct {
	admitted int
	served   chan struct{}
}

// admit counts a connection of uid, or returns nil when uid has hookAdmittedPerUID already.
func (s *HookServer) admit(uid int) *uidGate {
	s.perUIDMu.Lock()
	defer s.perUIDMu.Unlock()
	g := s.perUID[uid]
	if g == nil {
		g = &uidGate{served: make(chan struct{}, hookServedPerUID)}
		s.perUID[uid] = g
	}
	if g.admitted >= hookAdmittedPerUID {
		return nil
	}
	g.admitted++
	return g
}

// leave uncounts a connection of uid; a uid with none left is forgotten.
func (s *HookServer) leave(uid int, g *uidGate) {
	s.perUIDMu.Lock()
	defer s.perUIDMu.Unlock()
	if g.admitted--; g.admitted == 0 {
		delete(s.perUID, uid)
	}
}

// Close stops the listener; Serve returns after the connections in flight.
func (s *HookServer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.ln.Close()
		// After the listener has removed the socket: the next owner may then take it.
		err = errors.Join(err, s.lock.Close())
	})
	return err
}

// handle serves one connection: one frame, one ack byte, then adaptation and delivery.
// Nothing here can crash the server: every failure is counted and logged at debug level.
func (s *HookServer) handle(conn *net.UnixConn, pid, uid int) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.readTimeout))
	msg, err := ReadHookFrame(conn)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, ErrHookFrameTooLarge):
			s.tooLarge.Add(1)
		case errors.As(err, &ne) && ne.Timeout():
			s.timedOut.Add(1)
		default:
			s.malformed.Add(1)
		}
		s.log.Debug().Err(err).Int("pid", pid).Int("uid", uid).Msg("hook server: bad frame")
		return
	}
	// The sender is alive here, blocked on the ack: its start time names it with its pid.
	var start uint64
	if s.senderStart != nil && pid > 0 {
		if start, err = s.senderStart(pid); err != nil {
			s.log.Debug().Err(err).Int("pid", pid).Msg("hook server: sender start time")
		}
	}
	// The frame is in: acknowledge before adapting, so the client's deadline covers only
	// the transfer. A failed ack is the client's loss to count, not ours.
	_, _ = conn.Write([]byte{HookAck})
	_ = conn.Close()

	events, err := AdaptHook(msg.Agent, msg.Stdin)
	if err != nil {
		if errors.Is(err, ErrHookTooLarge) {
			s.tooLarge.Add(1)
		} else {
			s.malformed.Add(1)
		}
		s.log.Debug().Err(err).Int("pid", pid).Int("uid", uid).Msg("hook server: adapt")
		return
	}
	for i := range events {
		if c := s.perAgent[events[i].Agent]; c != nil {
			c.Add(1)
		}
	}
	s.events.Add(uint64(len(events)))
	s.deliver(HookBatch{
		Events:            events,
		SenderPid:         pid,
		SenderStartBootNs: start,
		SenderUID:         uid,
		Transport:         TransportHook,
		Argv:              msg.Argv,
		Cwd:               msg.Cwd,
		SentAt:            msg.SentAt,
	})
}

// peerCred returns the connecting process's pid and uid as the kernel recorded them at
// connect(2) (SO_PEERCRED), translated into the daemon's pid namespace (0 if not visible).
func peerCred(conn *net.UnixConn) (pid, uid int, err error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return 0, 0, fmt.Errorf("peer credentials: SO_PEERCRED: %w", serr)
	}
	return int(cred.Pid), int(cred.Uid), nil
}

// Stats returns the counters.
func (s *HookServer) Stats() HookStats {
	st := HookStats{
		Accepted:  s.accepted.Load(),
		Malformed: s.malformed.Load(),
		TooLarge:  s.tooLarge.Load(),
		Refused:   s.refused.Load(),
		TimedOut:  s.timedOut.Load(),
		Events:    s.events.Load(),
		PerAgent:  make(map[string]uint64, len(s.perAgent)),
	}
	for a, c := range s.perAgent {
		st.PerAgent[a] = c.Load()
	}
	return st
}

// UndeliveredCounts returns, per uid, how many hooks that uid's clients could not deliver
// since the server started, hooks recorded while no sensor ran included: it takes what the
// undelivered directory holds (ConsumeUndelivered) and adds it to the totals, so the counts
// only grow and each recorded hook is counted once; the pipeline reports increases as lost
// records of kind "hook".
func (s *HookServer) UndeliveredCounts() (map[int]uint64, error) {
	s.undeliveredMu.Lock()
	defer s.undeliveredMu.Unlock()
	var err error
	if s.undeliveredDir != "" {
		var taken map[int]uint64
		taken, err = ConsumeUndelivered(s.undeliveredDir)
		for uid, n := range taken {
			s.undelivered[uid] += n
		}
	}
	return maps.Clone(s.undelivered), err
}
