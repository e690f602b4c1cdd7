package linux

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A minimal io_uring for the tests' helper processes: one request at a time, submitted and
// waited for, so that a tracked process can open, connect and send the way io_uring
// programs do, without the system calls of those names.

const (
	ioringOpSendmsg = 9
	ioringOpConnect = 16
	ioringOpOpenat  = 18
	ioringOpMkdirat = 37

	ioringOffSQRing         = 0
	ioringOffSQEs           = 0x10000000
	ioringEnterGetEvents    = 1
	ioringFeatSingleMmap    = 1
	ioringSetupSize         = 120
	ioringSQEntries         = 4
	ioringSQESize           = 64
	ioringCQESize           = 16
	ioringCQOffsetInParams  = 80 // struct io_uring_params.cq_off
	ioringSQOffsetInParams  = 40 // struct io_uring_params.sq_off
	ioringFeaturesInParams  = 20
	ioringSQEntriesInParams = 0
	ioringCQEntriesInParams = 4
)

// ioSQE is struct io_uring_sqe (64 bytes).
type ioSQE struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64 // addr2: a connect's address length
	Addr        uint64
	Len         uint32
	OpFlags     uint32 // open_flags, msg_flags
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	FileIndex   uint32
	Addr3       uint64
	_           uint64
}

type ioRing struct {
	fd                     int
	ring, sqes             []byte
	sqHead, sqTail, sqMask *uint32
	sqArray                unsafe.Pointer
	cqHead, cqTail, cqMask *uint32
	cqes                   unsafe.Pointer
}

func newIORing() (*ioRing, error) {
	var params [ioringSetupSize]byte
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, ioringSQEntries, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	u32 := func(off int) uint32 { return *(*uint32)(unsafe.Pointer(&params[off])) }
	if u32(ioringFeaturesInParams)&ioringFeatSingleMmap == 0 {
		return nil, fmt.Errorf("io_uring: kernel lacks IORING_FEAT_SINGLE_MMAP")
	}
	sq, cq := ioringSQOffsetInParams, ioringCQOffsetInParams
	size := max(int(u32(sq+24))+int(u32(ioringSQEntriesInParams))*4, int(u32(cq+20))+int(u32(ioringCQEntriesInParams))*ioringCQESize)
	r := &ioRing{fd: int(fd)}
	var err error
	if r.ring, err = unix.Mmap(r.fd, ioringOffSQRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("mmap io_uring rings: %w", err)
	}
	if r.sqes, err = unix.Mmap(r.fd, ioringOffSQEs, int(u32(ioringSQEntriesInParams))*ioringSQESize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, fmt.Errorf("mmap io_uring sqes: %w", err)
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&r.ring[off]) }
	r.sqHead, r.sqTail, r.sqMask = (*uint32)(at(u32(sq))), (*uint32)(at(u32(sq+4))), (*uint32)(at(u32(sq+8)))
	r.sqArray = at(u32(sq + 24))
	r.cqHead, r.cqTail, r.cqMask = (*uint32)(at(u32(cq))), (*uint32)(at(u32(cq+4))), (*uint32)(at(u32(cq+8)))
	r.cqes = at(u32(cq + 20))
	return r, nil
}

// do submits one request and waits for its completion: the request's result (a descriptor,
// 0, or -errno). Whatever sqe points to must stay alive until it returns.
func (r *ioRing) do(sqe ioSQE) int32 {
	tail := atomic.LoadUint32(r.sqTail)
	idx := tail & *r.sqMask
	*(*ioSQE)(unsafe.Pointer(&r.sqes[idx*ioringSQESize])) = sqe
	*(*uint32)(unsafe.Add(r.sqArray, 4*idx)) = idx
	atomic.StoreUint32(r.sqTail, tail+1)
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 1, ioringEnterGetEvents, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -int32(errno)
		}
		break
	}
	head := atomic.LoadUint32(r.cqHead)
	for head == atomic.LoadUint32(r.cqTail) {
		runtime.Gosched()
	}
	res := *(*int32)(unsafe.Add(r.cqes, ioringCQESize*int(head&*r.cqMask)+8))
	atomic.StoreUint32(r.cqHead, head+1)
	return res
}

func (r *ioRing) close() {
	unix.Munmap(r.sqes)
	unix.Munmap(r.ring)
	unix.Close(r.fd)
}

// openat opens path (relative to dirfd) through the ring.
func (r *ioRing) openat(dirfd int, path string, flags int) int32 {
	p, _ := unix.BytePtrFromString(path)
	res := r.do(ioSQE{Opcode: ioringOpOpenat, Fd: int32(dirfd), Addr: uint64(uintptr(unsafe.Pointer(p))), OpFlags: uint32(flags)})
	runtime.KeepAlive(p)
	return res
}

// connect connects fd to the raw sockaddr through the ring.
func (r *ioRing) connect(fd int, sa []byte) int32 {
	res := r.do(ioSQE{Opcode: ioringOpConnect, Fd: int32(fd), Addr: uint64(uintptr(unsafe.Pointer(&sa[0]))), Off: uint64(len(sa))})
	runtime.KeepAlive(sa)
	return res
}

// sendmsg sends payload on fd to the raw sockaddr through the ring.
func (r *ioRing) sendmsg(fd int, sa, payload []byte) int32 {
	iov := unix.Iovec{Base: &payload[0], Len: uint64(len(payload))}
	msg := unix.Msghdr{Name: &sa[0], Namelen: uint32(len(sa)), Iov: &iov, Iovlen: 1}
	res := r.do(ioSQE{Opcode: ioringOpSendmsg, Fd: int32(fd), Addr: uint64(uintptr(unsafe.Pointer(&msg))), Len: 1})
	runtime.KeepAlive(sa)
	runtime.KeepAlive(payload)
	runtime.KeepAlive(&msg)
	return res
}

// mkdirat makes a directory through the ring: a file change no probe reports, counted.
func (r *ioRing) mkdirat(dirfd int, path string) int32 {
	p, _ := unix.BytePtrFromString(path)
	res := r.do(ioSQE{Opcode: ioringOpMkdirat, Fd: int32(dirfd), Addr: uint64(uintptr(unsafe.Pointer(p))), Len: 0o755})
	runtime.KeepAlive(p)
	return res
}

// rawSockaddrInet4 is a struct sockaddr_in for addr:port.
func rawSockaddrInet4(addr [4]byte, port int) []byte {
	b := make([]byte, unix.SizeofSockaddrInet4)
	b[0], b[1] = unix.AF_INET, 0
	b[2], b[3] = byte(port>>8), byte(port)
	copy(b[4:8], addr[:])
	return b
}
