package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// worker runs one kind of operation. The loops call the system calls directly, without
// allocating: the measurement is the kernel path (and the probes on it), not Go's
// garbage collector or netpoller.
type worker struct {
	// eventsPerOp is what Vigil records per operation of a tracked loop, by event.action.
	eventsPerOp map[string]int
	// loop runs n operations; it is safe for concurrent use (the throughput mode runs it from
	// several threads at once).
	loop func(n int) error
	// target is the file the open work opens (its JSONL lines are the ones counted).
	target  string
	cleanup []func()
}

func (w *worker) close() {
	for i := len(w.cleanup) - 1; i >= 0; i-- {
		w.cleanup[i]()
	}
}

func newWorker(work string) (*worker, error) {
	w := &worker{}
	var err error
	switch work {
	case "open":
		err = w.setupOpen()
	case "forkexec":
		err = w.setupForkExec()
	case "connect":
		err = w.setupConnect()
	case "sendto":
		err = w.setupSendto()
	default:
		return nil, fmt.Errorf("unknown -work %q (want open, forkexec, connect or sendto)", work)
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// setupOpen: openat(O_RDONLY) + close of a file in a fresh temp dir, by absolute path so a
// tracked open is recorded without a path walk (the common case for agents' tools).
func (w *worker) setupOpen() error {
	dir, err := os.MkdirTemp("", "vigil-loadgen-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	w.cleanup = append(w.cleanup, func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "target")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		return fmt.Errorf("create target file: %w", err)
	}
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return fmt.Errorf("target path: %w", err)
	}
	w.eventsPerOp = map[string]int{"open": 1}
	w.target = path
	w.loop = func(n int) error {
		for i := 0; i < n; i++ {
			fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(p)),
				syscall.O_RDONLY|syscall.O_CLOEXEC, 0, 0, 0)
			if errno != 0 {
				return fmt.Errorf("openat %s: %w", path, errno)
			}
			syscall.Close(int(fd))
		}
		return nil
	}
	return nil
}

// atFDCWD is AT_FDCWD (-100) as the raw openat argument register.
const atFDCWD = ^uintptr(99)

// setupForkExec: fork + exec of /bin/true + wait4. syscall.ForkExec is a vfork-style clone
// followed by execve, what a shell or an agent's tool runner does. The child inherits the
// environment (Vigil scans it at exec for join keys) and gets /dev/null as stdio.
//
// Tracked, one operation is 5 events: fork, exec, exit, and the two opens of the dynamic
// loader in /bin/true (/etc/ld.so.cache and libc.so.6, as Debian's /bin/true is dynamically
// linked).
func (w *worker) setupForkExec() error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	w.cleanup = append(w.cleanup, func() { null.Close() })
	fd := null.Fd()
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{fd, fd, fd}}
	argv := []string{"/bin/true"}
	w.eventsPerOp = map[string]int{"fork": 1, "exec": 1, "exit": 1, "open": 2}
	w.loop = func(n int) error {
		for i := 0; i < n; i++ {
			pid, err := syscall.ForkExec(argv[0], argv, attr)
			if err != nil {
				return fmt.Errorf("fork+exec %s: %w", argv[0], err)
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
				return fmt.Errorf("wait4 %d: %w", pid, err)
			}
			if !ws.Exited() || ws.ExitStatus() != 0 {
				return fmt.Errorf("%s exited with status %v", argv[0], ws)
			}
		}
		return nil
	}
	return nil
}

// setupConnect: socket + blocking connect to this process's own 127.0.0.1 listener + accept,
// then close both ends with SO_LINGER 0 (an RST instead of TIME_WAIT, so a long loop does not
// exhaust ephemeral ports). One connect event per operation.
func (w *worker) setupConnect() error {
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("listener socket: %w", err)
	}
	w.cleanup = append(w.cleanup, func() { syscall.Close(lfd) })
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	if err := syscall.Listen(lfd, 128); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sa, err := syscall.Getsockname(lfd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	addr, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		return errors.New("listener address is not IPv4")
	}
	linger := &syscall.Linger{Onoff: 1, Linger: 0}
	w.eventsPerOp = map[string]int{"connect": 1}
	w.loop = func(n int) error {
		for i := 0; i < n; i++ {
			c, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("socket: %w", err)
			}
			if err := syscall.Connect(c, addr); err != nil {
				syscall.Close(c)
				return fmt.Errorf("connect 127.0.0.1:%d: %w", addr.Port, err)
			}
			s, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(lfd), 0, 0, syscall.SOCK_CLOEXEC, 0, 0)
			if errno != 0 {
				syscall.Close(c)
				return fmt.Errorf("accept: %w", errno)
			}
			for _, fd := range []int{c, int(s)} {
				if err := syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, linger); err != nil {
					return fmt.Errorf("set SO_LINGER: %w", err)
				}
				syscall.Close(fd)
			}
		}
		return nil
	}
	return nil
}

// setupSendto: sendto of a one-byte datagram to this process's own 127.0.0.1 UDP socket,
// without connect (each send names its destination, as a DNS client without connect does),
// and a recvfrom that drains it. One send event per operation.
func (w *worker) setupSendto() error {
	rfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("receiver socket: %w", err)
	}
	w.cleanup = append(w.cleanup, func() { syscall.Close(rfd) })
	if err := syscall.Bind(rfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	sa, err := syscall.Getsockname(rfd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	addr, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		return errors.New("receiver address is not IPv4")
	}
	sfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sender socket: %w", err)
	}
	w.cleanup = append(w.cleanup, func() { syscall.Close(sfd) })
	w.eventsPerOp = map[string]int{"send": 1}
	payload, buf := []byte{'q'}, make([]byte, 16)
	w.loop = func(n int) error {
		for i := 0; i < n; i++ {
			if err := syscall.Sendto(sfd, payload, 0, addr); err != nil {
				return fmt.Errorf("sendto 127.0.0.1:%d: %w", addr.Port, err)
			}
			if _, _, err := syscall.Recvfrom(rfd, buf, 0); err != nil {
				return fmt.Errorf("recvfrom: %w", err)
			}
		}
		return nil
	}
	return nil
}
