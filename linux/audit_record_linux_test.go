package linux

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"
)

// readAuditCapture reads testdata/audit_records.txt: records the kernel sent to a
// go-libaudit client on this machine kind ("<type> <body>" per line, as received), for a
// bash tree (exec, opens, connect, clones, exit_group) and a Python script (a file name
// with a blank, creat, openat2, IPv6 and unix connects, an exec with an 18,000-byte
// argument split over EXECVE records). Groups are returned by serial.
func readAuditCapture(t testing.TB) map[uint32][]*auparse.AuditMessage {
	t.Helper()
	f, err := os.Open("testdata/audit_records.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	groups := map[uint32][]*auparse.AuditMessage{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		typ, body, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(typ)
		if err != nil {
			t.Fatalf("capture line %q: %v", sc.Text(), err)
		}
		m, err := auparse.Parse(auparse.AuditMessageType(n), body)
		if err != nil {
			t.Fatalf("capture line %q: %v", sc.Text(), err)
		}
		groups[m.Sequence] = append(groups[m.Sequence], m)
	}
	return groups
}

func TestDecodeAuditGroupRealRecords(t *testing.T) {
	groups := readAuditCapture(t)
	decode := func(t *testing.T, serial uint32) *auditRecord {
		t.Helper()
		r, err := decodeAuditGroup(groups[serial], nil)
		if err != nil {
			t.Fatalf("serial %d: %v", serial, err)
		}
		return r
	}
	t.Run("execve with a hex argument", func(t *testing.T) {
		r := decode(t, 3)
		if r.syscall != "execve" || !r.success || r.pid != 6747 || r.ppid != 6740 || r.exe != "/usr/bin/bash" || r.comm != "bash" {
			t.Fatalf("%+v", r)
		}
		if r.argc != 3 || len(r.argv) != 3 || r.argv[0] != "bash" || !strings.HasPrefix(r.argv[2], "cat /etc/hostname >/dev/null; exec 3<>") {
			t.Fatalf("argv %q (argc %d)", r.argv, r.argc)
		}
		if r.cwd != "/tmp/auprobe" || len(r.paths) != 2 || r.paths[0].name != "/usr/bin/bash" || r.paths[0].inode != 246999 ||
			r.paths[0].dev != unix.Mkdev(0xfe, 0) {
			t.Fatalf("cwd %q paths %+v", r.cwd, r.paths)
		}
	})
	t.Run("failed openat", func(t *testing.T) {
		r := decode(t, 8)
		if r.syscall != "openat" || r.success || r.exit != -2 || int32(r.args[0]) != unix.AT_FDCWD || r.args[2] != 0x80000 ||
			r.paths[0].name != "/usr/lib/locale/locale-archive" || r.paths[0].nametype != "UNKNOWN" || r.paths[0].inode != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("clone of a process", func(t *testing.T) {
		r := decode(t, 36)
		if r.syscall != "clone" || r.exit != 6748 || r.args[0]&unix.CLONE_THREAD != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("connect to IPv4", func(t *testing.T) {
		r := decode(t, 38)
		if r.syscall != "connect" || !r.success || len(r.sockaddr) != 16 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("exit_group has no result", func(t *testing.T) {
		r := decode(t, 43)
		if r.syscall != "exit_group" || r.hasResult || r.args[0] != 3 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("creating open of a name with a blank (hex)", func(t *testing.T) {
		r := decode(t, 1805)
		if got := openTarget(r.paths); got.name != "/tmp/vigil probe file" || got.nametype != "CREATE" {
			t.Fatalf("target %+v of %+v", got, r.paths)
		}
	})
	t.Run("creat and openat2", func(t *testing.T) {
		if r := decode(t, 1806); r.syscall != "creat" || openTarget(r.paths).name != "/tmp/vigil-probe-creat" {
			t.Fatalf("%+v", r)
		}
		if r := decode(t, 1807); r.syscall != "openat2" || openTarget(r.paths).name != "/etc/hostname" || r.exit != 4 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("refused IPv6 and missing unix socket", func(t *testing.T) {
		if r := decode(t, 1808); r.exit != -int64(unix.ECONNREFUSED) || len(r.sockaddr) != 28 {
			t.Fatalf("%+v", r)
		}
		if r := decode(t, 1809); r.exit != -int64(unix.ENOENT) || r.sockaddr[0] != unix.AF_UNIX {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("an argument split over EXECVE records", func(t *testing.T) {
		r := decode(t, 1810)
		if r.argc != 3 || len(r.argv) != 3 || r.argv[1] != strings.Repeat("x", 9000) || r.argv[2] != "two words" {
			t.Fatalf("argc %d, %d args, lengths %d", r.argc, len(r.argv), len(r.argv[1]))
		}
	})
	t.Run("keep decides from the SYSCALL record", func(t *testing.T) {
		var asked *auditRecord
		_, err := decodeAuditGroup(groups[3], func(r *auditRecord) bool { asked = r; return false })
		if err != errNotKept || asked == nil || asked.pid != 6747 || asked.syscall != "execve" || asked.argv != nil || asked.paths != nil {
			t.Fatalf("err %v, keep saw %+v: want the SYSCALL fields only, then errNotKept", err, asked)
		}
	})
	t.Run("a syscall of no rule of Vigil's", func(t *testing.T) {
		m, _ := auparse.Parse(auparse.AUDIT_SYSCALL, `audit(1796442674.479:99): arch=c000003e syscall=44 success=yes exit=40 a0=3 a1=0 a2=0 a3=0 items=0 ppid=1 pid=2 uid=0 gid=0 comm="vigil" exe="/usr/bin/vigil"`)
		if _, err := decodeAuditGroup([]*auparse.AuditMessage{m}, nil); err != errOtherSyscall {
			t.Fatalf("err = %v, want errOtherSyscall", err)
		}
	})
}

func TestDecodeAuditGroupErrors(t *testing.T) {
	for name, body := range map[string]string{
		"bad pid":      `arch=c000003e syscall=2 success=yes exit=3 a0=0 a1=0 a2=0 a3=0 pid=x ppid=1 uid=0 gid=0 comm="a" exe="/a"`,
		"bad comm":     `arch=c000003e syscall=2 success=yes exit=3 a0=0 a1=0 a2=0 a3=0 pid=2 ppid=1 uid=0 gid=0 comm=zz exe="/a"`,
		"unknown arch": `arch=40000003 syscall=2 success=yes exit=3 a0=0 a1=0 a2=0 a3=0 pid=2 ppid=1 uid=0 gid=0 comm="a" exe="/a"`,
		"bad exit":     `arch=c000003e syscall=2 success=yes exit=? a0=0 a1=0 a2=0 a3=0 pid=2 ppid=1 uid=0 gid=0 comm="a" exe="/a"`,
	} {
		m, err := auparse.Parse(auparse.AUDIT_SYSCALL, "audit(1796442674.479:7): "+body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeAuditGroup([]*auparse.AuditMessage{m}, nil); err == nil || err == errOtherSyscall {
			t.Errorf("%s: err = %v, want a decode error", name, err)
		}
	}
}

// FuzzDecodeAuditGroup: no input makes the decoder panic, and what it accepts is a syscall
// record of Vigil's.
func FuzzDecodeAuditGroup(f *testing.F) {
	for _, msgs := range readAuditCapture(f) {
		var b strings.Builder
		for _, m := range msgs {
			b.WriteString(strconv.Itoa(int(m.RecordType)) + " " + m.RawData + "\n")
		}
		f.Add(b.String())
	}
	f.Fuzz(func(t *testing.T, capture string) {
		var msgs []*auparse.AuditMessage
		for _, line := range strings.Split(capture, "\n") {
			typ, body, _ := strings.Cut(line, " ")
			n, err := strconv.Atoi(typ)
			if err != nil {
				continue
			}
			if m, err := auparse.Parse(auparse.AuditMessageType(n), body); err == nil {
				msgs = append(msgs, m)
			}
		}
		r, err := decodeAuditGroup(msgs, nil)
		if err == nil && (r.syscall == "" || len(r.argv) > maxAuditArgs) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
