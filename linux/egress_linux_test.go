package linux

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
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
	fail := func(step string, err error) {
		fmt.Printf("helper: %s: %v\n", step, err)
		os.Exit(2)
	}
	switch args[1] {
	case "uring-mkdir":
		ring, err := newIORing()
		if err != nil {
			fail("io_uring", err)
		}
		if res := ring.mkdirat(unix.AT_FDCWD, args[2]); res != 0 {
			fail("io_uring mkdirat", unix.Errno(-res))
		}
		ring.close()
		os.Exit(0)
	case "race":
	default:
		fail("mode", fmt.Errorf("unknown %q", args[1]))
	}
	portA, _ := strconv.Atoi(args[2])
	portB, _ := strconv.Atoi(args[3])
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		fail("socket", err)
	}
	// Outside the Go heap: the race on it is the point.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fail("mmap", err)
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
			fail("connect", errno)
		}
		peer, err := unix.Getpeername(fd)
		if err != nil {
			fail("getpeername", err)
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

// runEgressHelper runs the helper under an agent shell, so that it is in a tracked tree,
// and returns its key=value lines.
func runEgressHelper(t *testing.T, args ...string) map[string]string {
	t.Helper()
	shell, _ := agentShell(t, "claude")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", fmt.Sprintf("%s -test.run='^TestEgressHelperProcess$' -- %s %s", self, egressHelperArg, strings.Join(args, " ")))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%.2000s", err, out)
	}
	said := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			said[k] = v
		}
	}
	return said
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
	var events []*proto.Event
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		events = events[:0]
		for _, e := range c.snapshot() {
			if e.Event.Action == proto.ActionConnect && e.Process.Thread != nil && e.Process.Thread.ID == tid && e.Destination != nil &&
				(e.Destination.Port == portA || e.Destination.Port == portB) {
				events = append(events, e)
			}
		}
		if len(events) >= raceConnects {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
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
