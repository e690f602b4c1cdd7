package linux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/internal/testenv"
)

// The receiver identifies senders by pid and start time when its resolver can (it can).
var _ correlate.PeerIdentityResolver = PeerResolver{}

const peerHelperEnv = "VIGIL_TEST_PEER_HELPER"

// TestPeerHelperProcess is not a test: TestPeerChildProcess re-executes the test binary with
// this test selected; it dials the address in the environment, says so, and holds the
// connection until its stdin closes.
func TestPeerHelperProcess(t *testing.T) {
	addr := os.Getenv(peerHelperEnv)
	if addr == "" {
		t.Skip("helper process for TestPeerChildProcess")
	}
	if strings.HasPrefix(addr, "http://") {
		// Post a sample to the receiver and exit.
		body, err := os.ReadFile(os.Getenv(peerHelperEnv + "_FILE"))
		if err == nil {
			var resp *http.Response
			if resp, err = http.Post(addr, correlate.ContentTypeJSON, bytes.NewReader(body)); err == nil {
				resp.Body.Close()
				fmt.Printf("STATUS %d\n", resp.StatusCode)
				return
			}
		}
		fmt.Printf("ERR %v\n", err)
		os.Exit(1)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("CONNECTED %s\n", c.LocalAddr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	c.Close()
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// accept returns the next connection of l with the addresses the server sees.
func accept(t *testing.T, l net.Listener) (net.Conn, netip.AddrPort, netip.AddrPort) {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, addrPort(t, c.LocalAddr()), addrPort(t, c.RemoteAddr())
}

func TestPeerChildProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerHelperProcess$")
	cmd.Env = append(os.Environ(), peerHelperEnv+"="+l.Addr().String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	_, local, remote := accept(t, l)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "CONNECTED ") {
		t.Fatalf("helper: %q %v", line, err)
	}
	if got := strings.TrimSpace(strings.TrimPrefix(line, "CONNECTED ")); got != remote.String() {
		t.Fatalf("helper dialed from %s, server sees %s", got, remote)
	}

	pid, err := PeerResolver{}.PidOf(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	if pid != cmd.Process.Pid {
		t.Errorf("PidOf = %d, want the child %d (test is %d)", pid, cmd.Process.Pid, os.Getpid())
	}
	// PeerOf names the child by pid and start time, the start the kernel reports for it.
	_, start, err := PeerResolver{}.PeerOf(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := procfs.NewProc(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	st, err := proc.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if want := st.Starttime * nsPerClockTick; start == 0 || start != want {
		t.Errorf("PeerOf start %d, /proc says %d", start, want)
	}
}

// selfConn makes a connection from this process to a listener on addr.
func selfConn(t *testing.T, network, addr string) (client net.Conn, local, remote netip.AddrPort) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		testenv.Skipf(t, "listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { l.Close() })
	client, err = net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	_, local, remote = accept(t, l)
	return client, local, remote
}

func TestPeerSelf(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			_, local, remote := selfConn(t, tc.network, tc.addr)
			pid, err := PeerResolver{ProcRoot: "/proc"}.PidOf(local, remote)
			if err != nil {
				t.Fatal(err)
			}
			if pid != os.Getpid() {
				t.Errorf("PidOf = %d, want %d", pid, os.Getpid())
			}
			// Swapped, the addresses name the server's accepted end, also held by this process.
			if pid, err := (PeerResolver{}).PidOf(remote, local); err != nil || pid != os.Getpid() {
				t.Errorf("swapped: %d %v", pid, err)
			}
		})
	}
}

func TestPeerVanished(t *testing.T) {
	client, local, remote := selfConn(t, "tcp4", "127.0.0.1:0")
	client.Close()
	// The client end goes to TIME_WAIT (inode 0) or disappears; either way nobody owns it.
	var err error
	for range 50 {
		if _, err = (PeerResolver{}).PidOf(local, remote); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, ErrPeerNotFound) {
		t.Fatalf("PidOf after close: %v, want ErrPeerNotFound", err)
	}
	// A port nobody uses.
	_, err = PeerResolver{}.PidOf(netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"))
	if !errors.Is(err, ErrPeerNotFound) {
		t.Fatalf("unused ports: %v, want ErrPeerNotFound", err)
	}
}

// TestPeerFakeProc checks the parts a live system does not reliably show: an IPv4 client
// listed in net/tcp6 as ::ffff:127.0.0.1, owner-uid ordering, unreadable and vanished
// processes, and a socket nobody holds.
func TestPeerFakeProc(t *testing.T) {
	root := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(pid, fd int, target string) {
		t.Helper()
		dir := filepath.Join(root, fmt.Sprint(pid), "fd")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, fmt.Sprint(fd))); err != nil {
			t.Fatal(err)
		}
	}
	const header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	write("net/tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"+
		// 127.0.0.1:4318 → 127.0.0.1:40000, the server end: must not match.
		"   0: 0100007F:10DE 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 20 4 0 10 -1\n")
	write("net/tcp6", header+
		// ::ffff:127.0.0.1:40000 → ::ffff:127.0.0.1:4318, the client end, inode 222.
		"   0: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:10DE 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 20 4 0 10 -1\n"+
		// [::1]:40001 → [::1]:4318 in TIME_WAIT: inode 0.
		"   1: 00000000000000000000000001000000:9C41 00000000000000000000000001000000:10DE 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 0 10 -1\n"+
		// [::1]:40002 → [::1]:4318, inode 333 held by nobody.
		"   2: 00000000000000000000000001000000:9C42 00000000000000000000000001000000:10DE 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 0 10 -1\n")
	// stat: comm may hold ") " itself; starttime (field 22) is 4242 ticks for pid 20.
	stat := func(pid int, comm string, start uint64) {
		write(fmt.Sprintf("%d/stat", pid), fmt.Sprintf("%d (%s) S 1 %d %d 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 %d 1000 100 18446744073709551615\n", pid, comm, pid, pid, start))
	}
	stat(10, "otelcol", 7)
	stat(20, "odd) name (x", 4242)
	link(10, 0, "/dev/null")
	link(10, 1, "socket:[111]")
	link(20, 5, "pipe:[9]")
	link(20, 7, "socket:[222]")
	write("self", "not a pid")
	if err := os.MkdirAll(filepath.Join(root, "30"), 0o755); err != nil { // no fd dir: vanished
		t.Fatal(err)
	}

	r := PeerResolver{ProcRoot: root}
	server := netip.MustParseAddrPort("127.0.0.1:4318")
	pid, err := r.PidOf(server, netip.MustParseAddrPort("127.0.0.1:40000"))
	if err != nil || pid != 20 {
		t.Errorf("v4-mapped: %d %v, want 20", pid, err)
	}
	if pid, start, err := r.PeerOf(server, netip.MustParseAddrPort("127.0.0.1:40000")); err != nil || pid != 20 || start != 4242*nsPerClockTick {
		t.Errorf("PeerOf: %d %d %v, want 20 %d", pid, start, err, 4242*nsPerClockTick)
	}
	// The server may see the peer mapped too (a dual-stack listener).
	pid, err = r.PidOf(netip.MustParseAddrPort("[::ffff:127.0.0.1]:4318"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:40000"))
	if err != nil || pid != 20 {
		t.Errorf("mapped both sides: %d %v, want 20", pid, err)
	}
	v6 := netip.MustParseAddrPort("[::1]:4318")
	if _, err := r.PidOf(v6, netip.MustParseAddrPort("[::1]:40001")); !errors.Is(err, ErrPeerNotFound) {
		t.Errorf("TIME_WAIT: %v", err)
	}
	if _, err := r.PidOf(v6, netip.MustParseAddrPort("[::1]:40002")); !errors.Is(err, ErrPeerNotFound) || !strings.Contains(err.Error(), "socket:[333]") {
		t.Errorf("unowned: %v", err)
	}
	if _, err := (PeerResolver{ProcRoot: filepath.Join(root, "missing")}).PidOf(v6, v6); err == nil || errors.Is(err, ErrPeerNotFound) {
		t.Errorf("missing proc root: %v", err)
	}
}

// TestPeerReceiver runs the OTLP receiver with this resolver: a child process's HTTP export
// and this process's own HTTP and gRPC exports are attributed to the right pids.
func TestPeerReceiver(t *testing.T) {
	var mu sync.Mutex
	var batches []correlate.Batch
	r, err := correlate.NewReceiver(correlate.ReceiverOptions{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Resolver: PeerResolver{},
		Deliver: func(b correlate.Batch) { mu.Lock(); batches = append(batches, b); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	take := func() []correlate.Batch {
		mu.Lock()
		defer mu.Unlock()
		b := batches
		batches = nil
		return b
	}
	const sample = "../correlate/testdata/claude/0006_logs.json"

	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerHelperProcess$")
	cmd.Env = append(os.Environ(), peerHelperEnv+"=http://"+r.HTTPAddr()+"/v1/logs", peerHelperEnv+"_FILE="+sample)
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "STATUS 200") {
		t.Fatalf("child: %v %s", err, out)
	}
	if b := take(); len(b) != 1 || b[0].SenderPid != cmd.Process.Pid || b[0].Transport != correlate.TransportOTLPHTTP {
		t.Fatalf("child batch %+v, want pid %d", b, cmd.Process.Pid)
	}

	body, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+r.HTTPAddr()+"/v1/logs", correlate.ContentTypeJSON, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b := take(); len(b) != 1 || b[0].SenderPid != os.Getpid() {
		t.Fatalf("own HTTP batch %+v, want pid %d", b, os.Getpid())
	} else if self, err := procStartBootNs("/proc", os.Getpid()); err != nil || b[0].SenderStartBootNs != self {
		t.Errorf("own HTTP batch start %d, want this process's %d (%v)", b[0].SenderStartBootNs, self, err)
	}

	req, err := correlate.DecodeLogs(body, correlate.ContentTypeJSON)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := collogspb.NewLogsServiceClient(cc).Export(ctx, proto.Clone(req).(*collogspb.ExportLogsServiceRequest)); err != nil {
		t.Fatal(err)
	}
	if b := take(); len(b) != 1 || b[0].SenderPid != os.Getpid() || b[0].Transport != correlate.TransportOTLPGRPC {
		t.Fatalf("own gRPC batch %+v, want pid %d", b, os.Getpid())
	}
	if st := r.Stats(); st.PeersResolved != 3 || st.PeersUnresolved != 0 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkPeerPidOf measures one lookup on this machine: a full net/tcp read and a scan of
// /proc up to this process.
func BenchmarkPeerPidOf(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	local := netip.MustParseAddrPort(s.LocalAddr().String())
	remote := netip.MustParseAddrPort(s.RemoteAddr().String())
	for b.Loop() {
		if _, err := (PeerResolver{}).PidOf(local, remote); err != nil {
			b.Fatal(err)
		}
	}
}
