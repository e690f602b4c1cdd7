package linux

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/prometheus/procfs"
)

// ErrPeerNotFound is wrapped by PeerResolver.PidOf when no TCP socket has the requested
// addresses (the client already closed it, or it lives in another network namespace) or no
// process holds the socket any more.
var ErrPeerNotFound = errors.New("peer socket not found")

// PeerResolver finds the process at the other end of a loopback TCP connection accepted by
// Vigil's OTLP receiver: the agent that sent the telemetry (research/agents/README.md §3,
// "PID mapping"). It implements sensor.PeerResolver.
type PeerResolver struct {
	// ProcRoot is the proc mount to read, "/proc" when empty. Its net/tcp and net/tcp6 are
	// those of the calling process's network namespace, the one the receiver listens in.
	ProcRoot string
}

// PidOf returns the thread-group id of the process owning the client end of the connection
// the server sees with local address local and peer address remote. The client socket is
// the one whose local address is the server's remote and whose remote address is the
// server's local; its inode is read from net/tcp or net/tcp6 (IPv4 peers may appear there as
// ::ffff:a.b.c.d), then /proc/*/fd is scanned for socket:[inode], stopping at the first
// process holding it. Processes that exit during the scan are skipped. When several
// processes share the socket (an inherited descriptor), which one is returned is unspecified.
func (r PeerResolver) PidOf(local, remote netip.AddrPort) (int, error) {
	pid, _, err := r.PeerOf(local, remote)
	return pid, err
}

// StartOf returns the start time of a live process (ns since boot, clock-tick resolution),
// from /proc/<pid>/stat: with the pid it names one process.
func (r PeerResolver) StartOf(pid int) (uint64, error) {
	root := r.ProcRoot
	if root == "" {
		root = "/proc"
	}
	return procStartBootNs(root, pid)
}

// PeerOf is PidOf with the owner's start time (ns since boot, clock-tick resolution, from
// /proc/<pid>/stat), so the pair names one process: a pid alone can be reused once the
// sender exits, and whoever takes it must not inherit the sender's trust. The start time
// is read before and after the owner's descriptors are scanned and must not change, so the
// process found holding the socket is the one the start time belongs to.
func (r PeerResolver) PeerOf(local, remote netip.AddrPort) (int, uint64, error) {
	root := r.ProcRoot
	if root == "" {
		root = "/proc"
	}
	inode, uid, err := socketInode(root, local, remote)
	if err != nil {
		return 0, 0, err
	}
	pid, start, err := socketOwner(root, inode, uid)
	if err != nil {
		return 0, 0, fmt.Errorf("peer %s → %s: %w", remote, local, err)
	}
	return pid, start, nil
}

// procStartBootNs reads the start time of root/<pid> from its stat file: field 22,
// starttime, in clock ticks since boot, converted to ns.
func procStartBootNs(root string, pid int) (uint64, error) {
	st, err := readProcStat(root, pid)
	return st.start, err
}

// socketInode finds the client socket of the connection (server local, server remote) in
// net/tcp and net/tcp6 and returns its inode and owner uid.
func socketInode(root string, local, remote netip.AddrPort) (uint64, uint32, error) {
	fs, err := procfs.NewFS(root)
	if err != nil {
		return 0, 0, fmt.Errorf("peer lookup: open %s: %w", root, err)
	}
	wantLocal := netip.AddrPortFrom(remote.Addr().Unmap().WithZone(""), remote.Port())
	wantRemote := netip.AddrPortFrom(local.Addr().Unmap().WithZone(""), local.Port())
	tables := []struct {
		name string
		read func() (procfs.NetTCP, error)
	}{{"net/tcp", fs.NetTCP}, {"net/tcp6", fs.NetTCP6}}
	for _, tab := range tables {
		lines, err := tab.read()
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel or namespace
		}
		if err != nil {
			return 0, 0, fmt.Errorf("peer lookup: read %s: %w", filepath.Join(root, tab.name), err)
		}
		for _, l := range lines {
			// TIME_WAIT and other orphaned sockets keep their line with inode 0: nobody owns them.
			if l.Inode == 0 || l.LocalPort != uint64(wantLocal.Port()) || l.RemPort != uint64(wantRemote.Port()) {
				continue
			}
			if ipAddr(l.LocalAddr) == wantLocal.Addr() && ipAddr(l.RemAddr) == wantRemote.Addr() {
				return l.Inode, uint32(l.UID), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("peer lookup: no socket %s → %s in %s/net/tcp{,6}: %w", remote, local, root, ErrPeerNotFound)
}

// ipAddr converts a procfs address, unmapping IPv4-in-IPv6.
func ipAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// socketOwner scans root/<pid>/fd for a link to socket:[inode]. Processes owned by uid (the
// socket's creator) are searched first: they almost always hold it, and checking a process's
// owner costs one stat where its descriptors cost one readlink each.
func socketOwner(root string, inode uint64, uid uint32) (int, uint64, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return 0, 0, fmt.Errorf("scan %s: %w", root, err)
	}
	target := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	var others []int
	unreadable := 0
	gone := func(err error) bool { return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) }
	// search returns the pid's start time when it holds the socket, 0 when not.
	search := func(pid int) (uint64, error) {
		before, err := procStartBootNs(root, pid)
		if err != nil {
			if gone(err) {
				return 0, nil
			}
			return 0, fmt.Errorf("read start of pid %d: %w", pid, err)
		}
		found, err := holdsSocket(filepath.Join(root, strconv.Itoa(pid), "fd"), target)
		switch {
		case err == nil:
		case gone(err):
			return 0, nil // exited during the scan
		case errors.Is(err, os.ErrPermission):
			unreadable++
			return 0, nil
		default:
			return 0, fmt.Errorf("scan fds of pid %d: %w", pid, err)
		}
		if !found {
			return 0, nil
		}
		// The same process throughout: a pid reused during the scan is not the owner.
		if after, err := procStartBootNs(root, pid); err != nil || after != before || before == 0 {
			return 0, nil
		}
		return before, nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // exited
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid != uid {
			others = append(others, pid)
			continue
		}
		if start, err := search(pid); err != nil {
			return 0, 0, err
		} else if start != 0 {
			return pid, start, nil
		}
	}
	for _, pid := range others {
		if start, err := search(pid); err != nil {
			return 0, 0, err
		} else if start != 0 {
			return pid, start, nil
		}
	}
	if unreadable > 0 {
		return 0, 0, fmt.Errorf("no process holds %s (%d processes' fds unreadable): %w", target, unreadable, ErrPeerNotFound)
	}
	return 0, 0, fmt.Errorf("no process holds %s: %w", target, ErrPeerNotFound)
}

// holdsSocket reports whether one of the links in fdDir is target.
func holdsSocket(fdDir, target string) (bool, error) {
	d, err := os.Open(fdDir)
	if err != nil {
		return false, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false, err
	}
	for _, n := range names {
		link, err := os.Readlink(filepath.Join(fdDir, n))
		if err != nil {
			continue // closed meanwhile
		}
		if link == target {
			return true, nil
		}
	}
	return false, nil
}
