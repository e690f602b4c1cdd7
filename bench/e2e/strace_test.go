package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Lines from real strace runs of the agents (testdata/strace-claude-bash.txt and the runs in
// /var/tmp/vigil-e2e), one per shape the parser reads.
func TestParseStraceLine(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       SysEvent
		ok         bool
	}{
		{"exec", `29250 1796408485.017498 execve("./.e2e/vmark_0_1_", ["./.e2e/vmark_0_1_"], 0x55fc4ac315b0 /* 30 vars */) = 0`,
			SysEvent{Tid: 29250, Kind: sysExec, Path: "./.e2e/vmark_0_1_", Args: []string{"./.e2e/vmark_0_1_"}}, true},
		{"exec failed", `29205 1796408484.612907 execve("/usr/local/bin/sh", ["sh", "-c", "sleep 1; cat \"$0.bg\" >/dev/null", "./.e2e/vmark_0_0_"], 0x7ffd34a51320 /* 30 vars */) = -1 ENOENT (No such file or directory)`,
			SysEvent{Tid: 29205, Kind: sysExecFailed, Path: "/usr/local/bin/sh", Args: []string{"sh", "-c", `sleep 1; cat "$0.bg" >/dev/null`, "./.e2e/vmark_0_0_"}, Failed: true, Errno: "ENOENT"}, true},
		{"openat relative", `29251 1796408485.022260 openat(AT_FDCWD</var/tmp/vigil-e2e/claude-pipeline/repo>, "./.e2e/vmark_0_1_.txt", O_RDONLY) = 3</var/tmp/vigil-e2e/claude-pipeline/repo/.e2e/vmark_0_1_.txt>`,
			SysEvent{Tid: 29251, Kind: sysOpen, Path: "./.e2e/vmark_0_1_.txt", Dir: "/var/tmp/vigil-e2e/claude-pipeline/repo", FDPath: "/var/tmp/vigil-e2e/claude-pipeline/repo/.e2e/vmark_0_1_.txt"}, true},
		{"open failed", `10833 1796408273.267001 openat(AT_FDCWD</tmp/st>, "/nonexist", O_RDONLY) = -1 ENOENT (No such file or directory)`,
			SysEvent{Tid: 10833, Kind: sysOpen, Path: "/nonexist", Dir: "/tmp/st", Failed: true, Errno: "ENOENT"}, true},
		{"escaped non-ASCII path and descriptor path", `27396 1796412800.313367 openat(AT_FDCWD</var/tmp/vigil-e2e/claude-twoprompts/repo>, "/etc/ssl/certs/NetLock_Arany_=Class_Gold=_F\305\221tan\303\272s\303\255tv\303\241ny.pem", O_RDONLY) = 16</usr/share/ca-certificates/mozilla/NetLock_Arany_=Class_Gold=_F\305\221tan\303\272s\303\255tv\303\241ny.crt>`,
			SysEvent{Tid: 27396, Kind: sysOpen, Path: "/etc/ssl/certs/NetLock_Arany_=Class_Gold=_Főtanúsítvány.pem", Dir: "/var/tmp/vigil-e2e/claude-twoprompts/repo",
				FDPath: "/usr/share/ca-certificates/mozilla/NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt"}, true},
		{"open", `29004 1796408483.270303 open("/proc/sys/vm/overcommit_memory", O_RDONLY) = 4</proc/sys/vm/overcommit_memory>`,
			SysEvent{Tid: 29004, Kind: sysOpen, Path: "/proc/sys/vm/overcommit_memory", FDPath: "/proc/sys/vm/overcommit_memory"}, true},
		{"connect inet", `29061 1796408483.749487 connect(18<socket:[44948]>, {sa_family=AF_INET, sin_port=htons(8765), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress)`,
			SysEvent{Tid: 29061, Kind: sysConnect, Peer: "127.0.0.1:8765", Failed: true, Errno: "EINPROGRESS"}, true},
		{"connect unix", `29112 1796408483.943544 connect(4<socket:[45011]>, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)`,
			SysEvent{Tid: 29112, Kind: sysConnect, Peer: "unix:/var/run/nscd/socket", Failed: true, Errno: "ENOENT"}, true},
		{"connect inet6", `7 1796408483.1 connect(5<socket:[1]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0`,
			SysEvent{Tid: 7, Kind: sysConnect, Peer: "[::1]:443"}, true},
		{"sendto inet", `5 1796418050.564774 sendto(3<socket:[11035417]>, "q", 1, 0, {sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("127.0.0.1")}, 16) = 1`,
			SysEvent{Tid: 5, Kind: sysSend, peers: []string{"127.0.0.1:5353"}}, true},
		{"sendmsg inet", `5 1796418050.565324 sendmsg(3<socket:[11035417]>, {msg_name={sa_family=AF_INET, sin_port=htons(5354), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=16, msg_iov=[{iov_base="q", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 1`,
			SysEvent{Tid: 5, Kind: sysSend, peers: []string{"127.0.0.1:5354"}}, true},
		{"sendto unix failed", `5 1796418050.565466 sendto(4<socket:[11035423]>, "q", 1, 0, {sa_family=AF_UNIX, sun_path="/tmp/nonexistent.sock"}, 24) = -1 ENOENT (No such file or directory)`,
			SysEvent{Tid: 5, Kind: sysSend, peers: []string{"unix:/tmp/nonexistent.sock"}, Failed: true, Errno: "ENOENT"}, true},
		{"sendto on a connected socket: no destination, not recorded", `5 1796418050.565602 sendto(3<socket:[11035417]>, "x", 1, 0, NULL, 0) = 1`,
			SysEvent{Tid: 5, Kind: sysSend}, false},
		{"sendto inet6", `5 1796418050.565695 sendto(5<socket:[11035425]>, "q", 1, 0, {sa_family=AF_INET6, sin6_port=htons(5356), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 1`,
			SysEvent{Tid: 5, Kind: sysSend, peers: []string{"[::1]:5356"}}, true},
		{"sendmmsg of two", sendmmsgLine, SysEvent{Tid: 6, Kind: sysSend, peers: []string{"127.0.0.1:5357", "127.0.0.1:5358"}}, true},
		{"thread", `10813 1796408273.219402 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7fea5801d990, parent_tid=0x7fea5801d990, exit_signal=0, stack=0x7fea5781d000, stack_size=0x7ffe80, tls=0x7fea5801d6c0} => {parent_tid=[10815]}, 88) = 10815`,
			SysEvent{Tid: 10813, Kind: sysFork, Child: 10815, Thread: true}, true},
		{"fork", `10813 1796408273.244430 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7fea5849af50) = 10829`,
			SysEvent{Tid: 10813, Kind: sysFork, Child: 10829}, true},
		{"rename", `11303 1796414301.853965 rename("/var/tmp/vigil-e2e/claude-filetools/home/.claude.json.tmp.11303.55d236e474a8", "/var/tmp/vigil-e2e/claude-filetools/home/.claude.json") = 0`,
			SysEvent{Tid: 11303, Kind: "rename", Path: "/var/tmp/vigil-e2e/claude-filetools/home/.claude.json"}, true},
		{"rmdir", `11303 1796414301.860276 rmdir("/var/tmp/vigil-e2e/claude-filetools/home/.claude.json.lock") = 0`,
			SysEvent{Tid: 11303, Kind: "rmdir", Path: "/var/tmp/vigil-e2e/claude-filetools/home/.claude.json.lock"}, true},
		{"unlinkat a directory", `31 1796408483.1 unlinkat(AT_FDCWD</r>, "d", AT_REMOVEDIR) = -1 ENOTEMPTY (Directory not empty)`,
			SysEvent{Tid: 31, Kind: "rmdir", Path: "d", Failed: true, Errno: "ENOTEMPTY"}, true},
		{"symlink", `12148 1796414317.602621 symlink("/var/cache/vigil-e2e/npm/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex", "/var/tmp/vigil-e2e/codex-filetools/home/.codex/tmp/arg0-linux/codex-arg0D9BKkq/apply_patch") = 0`,
			SysEvent{Tid: 12148, Kind: "symlink", Path: "/var/tmp/vigil-e2e/codex-filetools/home/.codex/tmp/arg0-linux/codex-arg0D9BKkq/apply_patch"}, true},
		{"fchmod by descriptor", `10807 1796414293.358819 fchmod(15</var/tmp/vigil-e2e/claude-background/home/.claude.json.tmp.10807.12da2d036eb7>, 0600) = 0`,
			SysEvent{Tid: 10807, Kind: "chmod", Path: "/var/tmp/vigil-e2e/claude-background/home/.claude.json.tmp.10807.12da2d036eb7"}, true},
		{"fchown by descriptor", `12188 1796414317.666362 fchown(11</var/tmp/vigil-e2e/codex-filetools/home/.codex/state_5.sqlite-journal>, 0, 0) = 0`,
			SysEvent{Tid: 12188, Kind: "chown", Path: "/var/tmp/vigil-e2e/codex-filetools/home/.codex/state_5.sqlite-journal"}, true},
		{"ftruncate", `11303 1796414301.857746 ftruncate(16</var/tmp/vigil-e2e/claude-filetools/home/.claude/backups/.claude.json.backup.1796414301857>, 50) = 0`,
			SysEvent{Tid: 11303, Kind: "truncate", Path: "/var/tmp/vigil-e2e/claude-filetools/home/.claude/backups/.claude.json.backup.1796414301857"}, true},
		{"exit", `29062 1796408483.771846 +++ exited with 1 +++`, SysEvent{Tid: 29062, Kind: sysExit}, true},
		{"killed", `30001 1796408483.771846 +++ killed by SIGKILL +++`, SysEvent{Tid: 30001, Kind: sysExit, Signal: "SIGKILL"}, true},
		{"signal", `29004 1796408483.771846 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---`, SysEvent{}, false},
		{"unrecorded call", `29004 1796408483.771846 read(3, "x", 1) = 1`, SysEvent{}, false},
		{"unfinished", `29004 1796408485.000926 vfork( <unfinished ...>`, SysEvent{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseStraceLine(tc.line, map[int]string{})
			if err != nil || ok != tc.ok {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if !ok {
				return
			}
			got.Time = time.Time{}
			if got.Tid != tc.want.Tid || got.Kind != tc.want.Kind || got.Path != tc.want.Path || got.Dir != tc.want.Dir ||
				got.FDPath != tc.want.FDPath || got.Peer != tc.want.Peer || got.Failed != tc.want.Failed || got.Errno != tc.want.Errno ||
				got.Child != tc.want.Child || got.Thread != tc.want.Thread || got.Signal != tc.want.Signal ||
				strings.Join(got.Args, "\x00") != strings.Join(tc.want.Args, "\x00") {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// sendmmsgLine is a real sendmmsg of two datagrams (the second's port changed by hand).
const sendmmsgLine = `6 1796418050.702092 sendmmsg(3<socket:[11035438]>, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5357), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=16, msg_iov=[{iov_base="q", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=1}, {msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5358), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=16, msg_iov=[{iov_base="q", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=1}], 2, 0) = 2`

// A send call is one recorded event per datagram with a destination, for as many as it sent.
func TestParseStraceSendsOnePerDatagram(t *testing.T) {
	log, err := parseStrace(strings.NewReader(sendmmsgLine + "\n" + strings.Replace(sendmmsgLine, ") = 2", ") = 1", 1) + "\n"))
	if err != nil || len(log.Bad) != 0 {
		t.Fatalf("parse: %v %v", err, log.Bad)
	}
	var peers []string
	for _, ev := range log.Events {
		if ev.Kind != sysSend || ev.peers != nil {
			t.Errorf("event %+v: want a send with one peer", ev)
		}
		peers = append(peers, ev.Peer)
	}
	if want := []string{"127.0.0.1:5357", "127.0.0.1:5358", "127.0.0.1:5357"}; strings.Join(peers, " ") != strings.Join(want, " ") {
		t.Errorf("peers %q, want %q", peers, want)
	}
}

func TestParseStraceResumed(t *testing.T) {
	log, err := parseStrace(strings.NewReader(`29004 1796408485.000926 vfork( <unfinished ...>
29248 1796408485.004987 execve("/bin/bash", ["/bin/bash", "-c", "x"], 0x1 /* 30 vars */ <unfinished ...>
29004 1796408485.005196 <... vfork resumed>) = 29248
29248 1796408485.005351 <... execve resumed>) = 0
29256 1796408485.031207 openat(AT_FDCWD</repo>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC <unfinished ...>
29256 1796408485.031262 <... openat resumed>) = 3</etc/ld.so.cache>
`))
	if err != nil || len(log.Bad) != 0 || len(log.Events) != 3 {
		t.Fatalf("events %+v bad %v err %v", log.Events, log.Bad, err)
	}
	// An interrupted call is recorded when it completes, with its start's arguments.
	if e := log.Events[0]; e.Kind != sysFork || e.Tid != 29004 || e.Child != 29248 || e.Thread {
		t.Errorf("vfork: %+v", e)
	}
	if e := log.Events[1]; e.Kind != sysExec || e.Tid != 29248 || e.Path != "/bin/bash" || len(e.Args) != 3 {
		t.Errorf("exec: %+v", e)
	}
	if e := log.Events[2]; e.Kind != sysOpen || e.FDPath != "/etc/ld.so.cache" || e.Dir != "/repo" {
		t.Errorf("open: %+v", e)
	}
}

func TestParseStraceBadLines(t *testing.T) {
	log, err := parseStrace(strings.NewReader("garbage\n" +
		"12 notatime execve(\"/x\", [], 0x1) = 0\n" +
		"13 1796408485.1 <... openat resumed>) = 3</x>\n" +
		"14 1796408485.1 openat(AT_FDCWD</r>, \"a\", O_RDONLY) = x\n" +
		"15 1796408485.2 openat(AT_FDCWD</r>, \"b\", O_RDONLY) = 3</r/b>\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Bad) != 4 || len(log.Events) != 1 || log.Events[0].Path != "b" {
		t.Fatalf("a bad line must be reported and lose nothing else: events %+v bad %v", log.Events, log.Bad)
	}
	if !strings.Contains(log.Bad[0].Error(), "line 1") || !strings.Contains(log.Bad[2].Error(), "resumption without its start") {
		t.Errorf("errors should name the line and the problem: %v", log.Bad)
	}
}

func TestQuotedStrings(t *testing.T) {
	got := quotedStrings(`"a\"b", "c\\d", "\x41\101\n", "end"...`)
	want := []string{`a"b`, `c\d`, "AA\n", "end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q want %q", got, want)
	}
}

func FuzzParseStrace(f *testing.F) {
	b, err := os.ReadFile("testdata/strace-claude-bash.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range strings.SplitN(string(b), "\n", 40) {
		f.Add(l)
	}
	f.Add(`1 1.1 clone3({flags=CLONE_THREAD} => {parent_tid=[2]}, 88) = 2`)
	f.Add(`1 1.1 connect(3, {sa_family=AF_UNIX, sun_path=@"abs\0"}, 5) = 0`)
	f.Fuzz(func(t *testing.T, line string) {
		pending := map[int]string{}
		ev, ok, err := parseStraceLine(line, pending)
		if err != nil && ok {
			t.Fatalf("an error with an event: %+v", ev)
		}
		if ok && (ev.Tid <= 0 || ev.Kind == "") {
			t.Fatalf("an event without a task or a kind: %+v", ev)
		}
	})
}
