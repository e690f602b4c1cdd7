package linux

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"
)

// auditSocket is the audit netlink socket the source reads records from. go-libaudit's own
// client blocks in recvfrom with no way to wake it, so this one waits with poll (Run can
// stop) and asks for a large receive buffer (a burst of records overflows the default
// ~200 KiB and the kernel drops them with ENOBUFS). It implements
// libaudit.NetlinkSendReceiver, so go-libaudit's AuditClient drives it for SetPID.
type auditSocket struct {
	fd  int
	pid uint32
	seq atomic.Uint32
	buf []byte
}

// auditReceiveBuffer is the socket's receive buffer: ~30k typical records.
const auditReceiveBuffer = 8 << 20

// openAuditSocket opens a NETLINK_AUDIT socket bound to groups (0 for unicast delivery to a
// registered daemon, libaudit.NetlinkGroupReadLog to listen beside another daemon).
func openAuditSocket(groups uint32) (*auditSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("open audit netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind audit netlink socket: %w", err)
	}
	// SO_RCVBUFFORCE passes rmem_max as root; SO_RCVBUF is the fallback, capped by it.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, auditReceiveBuffer); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, auditReceiveBuffer)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read audit socket's port id: %w", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		unix.Close(fd)
		return nil, errors.New("read audit socket's port id: not a netlink address")
	}
	return &auditSocket{fd: fd, pid: nl.Pid, buf: make([]byte, unix.NLMSG_HDRLEN+libaudit.AuditMessageMaxLength)}, nil
}

// wait reports whether a message is ready within timeout.
func (s *auditSocket) wait(timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(timeout.Milliseconds()))
	if err != nil && !errors.Is(err, unix.EINTR) {
		return false, fmt.Errorf("poll audit socket: %w", err)
	}
	return n > 0, nil
}

// Send implements libaudit.NetlinkSender.
func (s *auditSocket) Send(msg syscall.NetlinkMessage) (uint32, error) { return s.send(msg, 0) }

// SendNoWait implements libaudit.NetlinkSender.
func (s *auditSocket) SendNoWait(msg syscall.NetlinkMessage) (uint32, error) {
	return s.send(msg, unix.MSG_DONTWAIT)
}

func (s *auditSocket) send(msg syscall.NetlinkMessage, flags int) (uint32, error) {
	if msg.Header.Pid == 0 {
		msg.Header.Pid = s.pid
	}
	msg.Header.Seq = s.seq.Add(1)
	msg.Header.Len = uint32(unix.NLMSG_HDRLEN + len(msg.Data))
	b := make([]byte, msg.Header.Len)
	*(*syscall.NlMsghdr)(unsafe.Pointer(&b[0])) = msg.Header
	copy(b[unix.NLMSG_HDRLEN:], msg.Data)
	return msg.Header.Seq, unix.Sendto(s.fd, b, flags, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// Receive implements libaudit.NetlinkReceiver. Messages not sent by the kernel (port id 0)
// are refused: another process could otherwise forge audit records.
func (s *auditSocket) Receive(nonBlocking bool, parse libaudit.NetlinkParser) ([]syscall.NetlinkMessage, error) {
	flags := 0
	if nonBlocking {
		flags = unix.MSG_DONTWAIT
	}
	n, from, err := unix.Recvfrom(s.fd, s.buf, flags)
	if err != nil {
		return nil, err
	}
	if n < unix.NLMSG_HDRLEN {
		return nil, fmt.Errorf("audit socket: %d bytes, shorter than a netlink header", n)
	}
	if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
		return nil, errors.New("audit socket: a message not from the kernel")
	}
	return parse(s.buf[:n])
}

// Close implements io.Closer.
func (s *auditSocket) Close() error { return unix.Close(s.fd) }
