package linux

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
)

// Kernel truth for egress (issue 9, part 3): a connect is reported with the address the
// kernel used, whatever another thread did to the caller's buffer meanwhile; io_uring
// requests no probe reports are counted.

const (
	egressHelperArg = "vigil-egress-helper"
	raceConnects    = 5000
)

// TestEgressHelperProcess runs only as a child of the tests below. Mode "race": one thread
// connects a UDP socket raceConnects times to the address in a shared buffer while another
// flips the buffer's port between two values; after each connect getpeername says which
// port the kernel really connected to ('a' or 'b'). Mode "uring-mkdir": one mkdirat through
// io_uring.
func TestEgressHelperProcess(t *testing.T) {
	args := flag.Args()
	if len(args) < 2 || args[0] != egressHelperArg {
		t.Skip("helper process of the egress tests")
	}
	switch args[1] {
	case "uring-mkdir":
		ring, err := newIORing()
		if err != nil {
			helperFail("io_uring", err)
		}
		if res := ring.mkdirat(unix.AT_FDCWD, args[2]); res != 0 {
			helperFail("io_uring mkdirat", unix.Errno(-res))
		}
		ring.close()
		os.Exit(0)
	case "race":
	default:
		helperFail("mode", fmt.Errorf("unknown %q", args[1]))
	}
	portA, _ := strconv.Atoi(args[2])
	portB, _ := strconv.Atoi(args[3])
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		helperFail("socket", err)
	}
	// Outside the Go heap: the race on it is the point.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		helperFail("mmap", err)
	}
	copy(buf, rawSockaddrInet4([4]byte{127, 0, 0, 1}, portA))
	// The port as sin_port holds it (network order), written with one 16-bit store so that
	// the kernel never copies half of one port and half of the other.
	ports := [2]uint16{uint16(buf[2]) | uint16(buf[3])<<8, uint16(portB>>8) | uint16(portB&0xff)<<8}
	port := (*uint16)(unsafe.Pointer(&buf[2]))

	var stop atomic.Bool
	flipped := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(flipped)
		for i := 0; !stop.Load(); i++ {
			*port = ports[i&1]
		}
	}()
	runtime.LockOSThread()
	fmt.Printf("tid=%d\n", unix.Gettid())
	got := make([]byte, 0, raceConnects)
	for range raceConnects {
		if _, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), unix.SizeofSockaddrInet4); errno != 0 {
			helperFail("connect", errno)
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			helperFail("getpeername", err)
		}
		switch peer.(*unix.SockaddrInet4).Port {
		case portA:
			got = append(got, 'a')
		case portB:
			got = append(got, 'b')
		default:
			got = append(got, '?')
		}
	}
	stop.Store(true)
	<-flipped
	fmt.Printf("connected=%s\n", got)
	os.Exit(0)
}

// runEgressHelper runs TestEgressHelperProcess in a tracked tree.
func runEgressHelper(t *testing.T, args ...string) map[string]string {
	t.Helper()
	return runTrackedHelper(t, "TestEgressHelperProcess", append([]string{egressHelperArg}, args...)...)
}

func TestConnectAddressSurvivesARacingRewrite(t *testing.T) {
	src, c := startSource(t, func(o *Options) { o.RingBufferBytes = 16 << 20 }, nil)
	portA := listenPacket(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	portB := listenPacket(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	said := runEgressHelper(t, "race", strconv.Itoa(portA), strconv.Itoa(portB))
	tid, _ := strconv.Atoi(said["tid"])
	truth := said["connected"]
	if len(truth) != raceConnects {
		t.Fatalf("helper did not report its connects: %q", said)
	}
	if strings.Count(truth, "a") == 0 || strings.Count(truth, "b") == 0 {
		t.Fatalf("the rewrite did not race the connects (a %d, b %d): nothing was tested", strings.Count(truth, "a"), strings.Count(truth, "b"))
	}

	// The connecting thread's connects to either port, in the order the kernel saw them.
	events := c.waitForCount(raceConnects, 30*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionConnect && e.Process.Thread != nil && e.Process.Thread.ID == tid && e.Destination != nil &&
			(e.Destination.Port == portA || e.Destination.Port == portB)
	})
	if len(events) != raceConnects {
		t.Fatalf("%d connect events from thread %d, want %d (lost: %v)", len(events), tid, raceConnects, src.Lost())
	}
	wrong := 0
	for i, e := range events {
		want := map[byte]int{'a': portA, 'b': portB}[truth[i]]
		if e.Destination.Port != want || e.Vigil.AddressSource != proto.AddressSourceKernel || e.Event.Outcome != proto.OutcomeSuccess {
			wrong++
		}
	}
	t.Logf("%d connects (port a %d, port b %d); %d events with another port than the kernel connected to",
		raceConnects, strings.Count(truth, "a"), strings.Count(truth, "b"), wrong)
	if wrong != 0 {
		t.Errorf("%d of %d connect events name a peer other than the kernel's", wrong, raceConnects)
	}
}

// An io_uring request that changes a file (here mkdirat) has no probe: it is counted, so
// that its absence from the output is visible in vigil.lost as io_uring_unseen.
func TestIOURingFileChangesAreCounted(t *testing.T) {
	src, _ := startSource(t, nil, nil)
	dir := canonicalDir(t)
	runEgressHelper(t, "uring-mkdir", dir+"/made-by-io-uring")
	if _, err := os.Stat(dir + "/made-by-io-uring"); err != nil {
		t.Fatalf("the helper's io_uring mkdirat did not happen: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.Lost()["io_uring_unseen"] == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := src.Lost()["io_uring_unseen"]; n != 1 {
		t.Errorf("io_uring_unseen = %d after one io_uring mkdirat, want 1 (lost: %v)", n, src.Lost())
	}
}

// Every way the capture helper names a peer or opens a file without the syscall of its name
// is reported live: addressed sends by sendto, sendmmsg (a line per datagram) and sendmsg on
// inet, inet6 and unix datagram sockets, and io_uring's open, connect and send.
func TestEgressIsReported(t *testing.T) {
	_, c := startSource(t, nil, nil)
	shell, dir := agentShell(t, "claude")
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "read-by-io-uring")
	sock, dgram := filepath.Join(dir, "s.sock"), filepath.Join(dir, "d.sock")
	abstract := fmt.Sprintf("@vigil-egress-%d", os.Getpid())
	listen(t, "unix", sock)
	listen(t, "unix", abstract)
	listenPacket(t, "unixgram", dgram)
	p4 := listen(t, "tcp4", "127.0.0.1:0").Addr().(*net.TCPAddr).Port
	u4 := listenPacket(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).Port
	u6 := listenPacket(t, "udp6", "[::1]:0").LocalAddr().(*net.UDPAddr).Port
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", fmt.Sprintf("%s -test.run='^TestCaptureHelperProcess$' -- %s %s %s %d %d %d %s %s",
		self, helperArg, sock, abstract, p4, u4, u6, dgram, file))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	_, pidText, _ := strings.Cut(string(out), "helper=")
	pid, _ := strconv.Atoi(strings.Fields(pidText)[0])

	lines := func(action, syscall string, match func(*proto.Event) bool) func(*proto.Event) bool {
		return func(e *proto.Event) bool {
			return e.Event.Action == action && e.Process.Pid == pid && e.Vigil.Syscall == syscall && match(e)
		}
	}
	port := func(p int) func(*proto.Event) bool {
		return func(e *proto.Event) bool { return e.Destination != nil && e.Destination.Port == p }
	}
	for _, want := range []struct {
		what             string
		action, syscall  string
		match            func(*proto.Event) bool
		outcome, network string
	}{
		{"sendto 127.0.0.1", proto.ActionSend, "sendto", port(u4), proto.OutcomeUnknown, "ipv4"},
		{"sendmmsg [::1]", proto.ActionSend, "sendmmsg", port(u6), proto.OutcomeUnknown, "ipv6"},
		{"sendmsg to a unix datagram path", proto.ActionSend, "sendmsg", func(e *proto.Event) bool { return e.Destination != nil && e.Destination.Address == dgram }, proto.OutcomeUnknown, "unix"},
		{"io_uring sendmsg", proto.ActionSend, proto.SyscallIOUring, port(u4), proto.OutcomeUnknown, "ipv4"},
		{"io_uring connect", proto.ActionConnect, proto.SyscallIOUring, port(p4), proto.OutcomeUnknown, "ipv4"},
		{"connect", proto.ActionConnect, "connect", port(p4), proto.OutcomeUnknown, "ipv4"}, // non-blocking: EINPROGRESS
		{"io_uring openat", proto.ActionOpen, proto.SyscallIOUring, func(e *proto.Event) bool { return e.File != nil && e.File.Path == file }, proto.OutcomeSuccess, ""},
	} {
		e := c.waitFor(t, want.what, 10*time.Second, lines(want.action, want.syscall, want.match))
		network := ""
		if e.Network != nil {
			network = e.Network.Type
		}
		if e.Event.Outcome != want.outcome || network != want.network {
			t.Errorf("%s: outcome %q network %q, want %q %q", want.what, e.Event.Outcome, network, want.outcome, want.network)
		}
		if want.action != proto.ActionOpen && e.Vigil.AddressSource != proto.AddressSourceKernel {
			t.Errorf("%s: address_source %q, want kernel", want.what, e.Vigil.AddressSource)
		}
		if want.action == proto.ActionOpen && e.Vigil.PathSource != proto.PathSourceKernel {
			t.Errorf("%s: path_source %q, want kernel", want.what, e.Vigil.PathSource)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(filter(c.snapshot(), lines(proto.ActionSend, "sendmmsg", port(u6)))); n != 2 {
		t.Errorf("%d send lines for a sendmmsg of two datagrams, want 2", n)
	}
	failed := filter(c.snapshot(), lines(proto.ActionOpen, proto.SyscallIOUring, func(e *proto.Event) bool { return e.Event.Outcome == proto.OutcomeFailure }))
	if len(failed) != 1 || failed[0].Vigil.Errno != int(unix.ENOENT) {
		t.Errorf("failed io_uring opens: %s, want one with ENOENT", dump(failed))
	}
}
