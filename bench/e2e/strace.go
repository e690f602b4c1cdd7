package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// straceArgs run the independent recorder: strace following every fork of the agent, with a
// seccomp filter so that only the recorded system calls stop the tracee (the rest run at
// full speed), wall-clock microsecond timestamps, and -y so that a returned descriptor
// carries the kernel's path of the opened file.
func straceArgs(out string) []string {
	return []string{"-f", "-q", "-ttt", "-y", "-s", "4096", "--seccomp-bpf",
		"-e", "trace=execve,execveat,open,openat,openat2,creat,connect,sendto,sendmsg,sendmmsg,clone,clone3,fork,vfork," +
			"rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat,symlink,symlinkat," +
			"chmod,fchmod,fchmodat,chown,fchown,lchown,fchownat,truncate,ftruncate",
		"-e", "signal=none", "-o", out, "--"}
}

// Kinds of recorded events, named like Vigil's event.action values they are compared with
// (file mutations take their action's name: rename, unlink, rmdir, link, symlink, chmod,
// chown, truncate).
const (
	sysExec = "exec"
	// sysExecFailed is an execve that returned an error (a shell trying each PATH entry):
	// Vigil records executions at the kernel's exec event, which only a success reaches.
	sysExecFailed = "exec_failed"
	sysOpen       = "open"
	sysConnect    = "connect"
	// sysSend is a datagram sent to a named destination (sendto, sendmsg, sendmmsg with an
	// address); sends on connected sockets name none and are not recorded.
	sysSend = "send"
	sysFork = "fork"
	sysExit = "exit"
)

// SysEvent is one system call (or exit) the independent recorder saw, as strace printed it.
type SysEvent struct {
	Line int
	Tid  int
	Time time.Time
	Kind string
	// Path is the file named by the call (exec, open) as the caller gave it; Dir the path of
	// the directory it was relative to (AT_FDCWD or a dirfd, from -y); FDPath the kernel's
	// path of the descriptor an open returned.
	Path, Dir, FDPath string
	Args              []string // exec: argv
	Peer              string   // connect, send: ip:port, or unix:path
	Failed            bool
	Errno             string
	Child             int  // fork: the new task
	Thread            bool // fork: the new task is a thread of the caller (CLONE_THREAD)
	Signal            string
	peers             []string // send: the destination of each datagram the call sent
}

// StraceLog is a parsed strace -f output: the events in file order and the lines that could
// not be read (each with its line number), which are reported, never dropped silently.
type StraceLog struct {
	Events []SysEvent
	Bad    []error
}

// parseStrace reads strace -f -ttt -y output. A line it cannot read is recorded in Bad and
// the rest are still read.
func parseStrace(r io.Reader) (StraceLog, error) {
	var out StraceLog
	pending := map[int]string{} // tid → text of its <unfinished ...> call
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		ev, ok, err := parseStraceLine(sc.Text(), pending)
		if err != nil {
			out.Bad = append(out.Bad, fmt.Errorf("strace line %d: %w", n, err))
			continue
		}
		if !ok {
			continue
		}
		ev.Line = n
		if ev.Kind != sysSend {
			out.Events = append(out.Events, ev)
			continue
		}
		// One event per datagram with a destination (sendmmsg sends several).
		for _, peer := range ev.peers {
			one := ev
			one.Peer, one.peers = peer, nil
			out.Events = append(out.Events, one)
		}
	}
	return out, sc.Err()
}

var errUnknownLine = errors.New("not a strace -f -ttt line")

// parseStraceLine parses one line; ok is false for lines that record nothing (an unfinished
// call waiting for its resumption, signals, system calls that are not recorded).
func parseStraceLine(line string, pending map[int]string) (SysEvent, bool, error) {
	var ev SysEvent
	pidStr, rest, ok := strings.Cut(line, " ")
	if !ok {
		return ev, false, errUnknownLine
	}
	tid, err := strconv.Atoi(pidStr)
	if err != nil || tid <= 0 {
		return ev, false, fmt.Errorf("task id %q: %w", pidStr, errUnknownLine)
	}
	rest = strings.TrimLeft(rest, " ")
	tsStr, body, ok := strings.Cut(rest, " ")
	if !ok {
		return ev, false, errUnknownLine
	}
	ts, err := parseEpoch(tsStr)
	if err != nil {
		return ev, false, err
	}
	ev.Tid, ev.Time = tid, ts
	switch {
	case strings.HasPrefix(body, "+++ "):
		ev.Kind = sysExit
		if sig, ok := strings.CutPrefix(body, "+++ killed by "); ok {
			ev.Signal, _, _ = strings.Cut(sig, " ")
		}
		return ev, strings.HasPrefix(body, "+++ exited with ") || ev.Signal != "", nil
	case strings.HasPrefix(body, "--- "), strings.HasPrefix(body, "<... ") && strings.Contains(body, " resumed> <unfinished ...>"):
		return ev, false, nil
	case strings.HasSuffix(body, " <unfinished ...>"):
		pending[tid] = strings.TrimSuffix(body, " <unfinished ...>")
		return ev, false, nil
	case strings.HasPrefix(body, "<... "):
		_, after, ok := strings.Cut(body, " resumed>")
		start, had := pending[tid]
		if !ok || !had {
			return ev, false, fmt.Errorf("resumption without its start: %q", clipLine(body))
		}
		delete(pending, tid)
		body = start + after
	}
	ok, err = parseCall(&ev, body)
	return ev, ok, err
}

func clipLine(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func parseEpoch(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(s, ".")
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp %q: want seconds.micros", s)
	}
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	micros, err2 := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want seconds.micros", s)
	}
	return time.Unix(secs, micros*1000), nil
}

// parseCall fills ev from "name(args) = result"; ok is false for calls it does not record.
func parseCall(ev *SysEvent, body string) (bool, error) {
	name, args, ok := strings.Cut(body, "(")
	if !ok {
		return false, fmt.Errorf("no call in %q", clipLine(body))
	}
	i := strings.LastIndex(args, ") = ")
	if i < 0 {
		if strings.HasSuffix(args, ") = ?") || strings.HasSuffix(args, ")") {
			return false, nil // the task vanished inside the call (exit_group, a killed exec)
		}
		return false, fmt.Errorf("no result in %q", clipLine(body))
	}
	args, result := args[:i], args[i+len(") = "):]
	ret, fdPath, errno, err := parseResult(result)
	if err != nil {
		return false, err
	}
	ev.Failed, ev.Errno = ret < 0, errno
	switch name {
	case "execve", "execveat":
		ev.Kind = sysExec
		if ev.Failed {
			ev.Kind = sysExecFailed
		}
		strs := quotedStrings(args)
		if len(strs) == 0 {
			return false, fmt.Errorf("%s without a file name", name)
		}
		ev.Path = strs[0]
		if b := strings.Index(args, "["); b >= 0 {
			if e := strings.Index(args[b:], "]"); e >= 0 {
				ev.Args = quotedStrings(args[b : b+e])
			}
		}
	case "open", "openat", "openat2", "creat":
		ev.Kind = sysOpen
		strs := quotedStrings(args)
		if len(strs) == 0 {
			return false, fmt.Errorf("%s without a path", name)
		}
		ev.Path, ev.FDPath = strs[0], fdPath
		if name == "openat" || name == "openat2" {
			ev.Dir = fdAnnotation(args)
		}
	case "connect":
		ev.Kind = sysConnect
		ev.Peer = parsePeer(args)
	case "sendto", "sendmsg", "sendmmsg":
		ev.Kind = sysSend
		ev.peers = sendPeers(name, args, ret)
		return len(ev.peers) > 0, nil
	case "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat":
		// Vigil names the new name (the destination, the link) as file.path: the last string.
		ev.Kind = strings.TrimSuffix(strings.TrimSuffix(name, "at2"), "at")
		strs := quotedStrings(args)
		if len(strs) < 2 {
			return false, fmt.Errorf("%s without two paths", name)
		}
		ev.Path = strs[len(strs)-1]
	case "unlink", "unlinkat", "rmdir", "chmod", "fchmodat", "chown", "lchown", "fchownat", "truncate",
		"fchmod", "fchown", "ftruncate":
		ev.Kind = mutationKind(name, args)
		if name == "fchmod" || name == "fchown" || name == "ftruncate" {
			ev.Path = fdAnnotation(args) // by descriptor: the file's path from -y
			break
		}
		strs := quotedStrings(args)
		if len(strs) == 0 {
			return false, fmt.Errorf("%s without a path", name)
		}
		ev.Path = strs[0]
	case "clone", "clone3", "fork", "vfork":
		if ret <= 0 {
			return false, nil // failed, or the child's own view (0)
		}
		ev.Kind, ev.Child = sysFork, int(ret)
		ev.Thread = strings.Contains(args, "CLONE_THREAD")
	default:
		return false, nil
	}
	return true, nil
}

// mutationKind is the Vigil action of a file mutation system call.
func mutationKind(name, args string) string {
	switch name {
	case "unlinkat":
		if strings.Contains(args, "AT_REMOVEDIR") {
			return "rmdir"
		}
		return "unlink"
	case "fchmod", "fchmodat":
		return "chmod"
	case "fchown", "lchown", "fchownat":
		return "chown"
	case "ftruncate":
		return "truncate"
	}
	return name
}

// parseResult reads "3</path>", "0", "-1 ENOENT (No such file or directory)", "12345".
func parseResult(s string) (ret int64, fdPath, errno string, err error) {
	num, rest, _ := strings.Cut(s, " ")
	if p := strings.IndexByte(num, '<'); p >= 0 {
		if strings.HasSuffix(num, ">") {
			fdPath = cUnescape(num[p+1 : len(num)-1])
		} else if j := strings.Index(s, ">"); j > p {
			fdPath = cUnescape(s[p+1 : j]) // a path with spaces
		}
		num = num[:p]
	}
	ret, perr := strconv.ParseInt(num, 0, 64)
	if perr != nil {
		return 0, "", "", fmt.Errorf("result %q: %w", clipLine(s), perr)
	}
	if ret < 0 {
		errno, _, _ = strings.Cut(rest, " ")
	}
	return ret, fdPath, errno, nil
}

// fdAnnotation returns the path strace -y printed after the first argument
// (AT_FDCWD</cwd> or 5</dir>), or "".
func fdAnnotation(args string) string {
	first, _, _ := strings.Cut(args, ", ")
	i := strings.IndexByte(first, '<')
	if i < 0 || !strings.HasSuffix(first, ">") {
		return ""
	}
	return cUnescape(first[i+1 : len(first)-1])
}

// parsePeer reads strace's sockaddr: AF_INET/AF_INET6 as ip:port, AF_UNIX as unix:path.
func parsePeer(args string) string {
	switch {
	case strings.Contains(args, "sa_family=AF_INET6"):
		port := between(args, "sin6_port=htons(", ")")
		ip := ""
		if s := quotedStrings(between(args, "inet_pton(AF_INET6, ", ")")); len(s) > 0 {
			ip = s[0]
		}
		return "[" + ip + "]:" + port
	case strings.Contains(args, "sa_family=AF_INET"):
		port := between(args, "sin_port=htons(", ")")
		ip := ""
		if s := quotedStrings(between(args, "inet_addr(", ")")); len(s) > 0 {
			ip = s[0]
		}
		return ip + ":" + port
	case strings.Contains(args, "sa_family=AF_UNIX"):
		p := between(args, "sun_path=", "}")
		abstract := strings.HasPrefix(p, "@")
		if s := quotedStrings(p); len(s) > 0 {
			p = s[0]
		}
		if abstract {
			return "unix:@" + p
		}
		return "unix:" + p
	}
	return ""
}

// sendPeers returns the destination of each datagram a send call named, for as many as it
// sent (a sendmmsg returns how many of its messages went): none for sends on connected
// sockets (sendto's address NULL, msg_name=NULL).
func sendPeers(name, args string, ret int64) []string {
	if name == "sendto" {
		if p := parsePeer(args); p != "" {
			return []string{p}
		}
		return nil
	}
	var peers []string
	parts := strings.Split(args, "msg_name=")
	for i, part := range parts[1:] {
		if name == "sendmmsg" && int64(i) >= ret {
			break
		}
		if p := parsePeer(part); p != "" {
			peers = append(peers, p)
		}
	}
	return peers
}

func between(s, from, to string) string {
	_, after, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, to)
	return v
}

// quotedStrings returns the C string literals in s, unescaped, in order.
func quotedStrings(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		j := i + 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' {
				j++ // an escaped character, a quote among them
			}
		}
		out = append(out, cUnescape(s[i+1:min(j, len(s))]))
		i = j
	}
	return out
}

// cUnescape undoes strace's C escapes (\n, \t, \xNN, \NNN octal, \\, \"), which it also
// writes in the -y paths of descriptors (non-ASCII bytes in octal).
func cUnescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for j := 0; j < len(s); j++ {
		if s[j] != '\\' || j+1 >= len(s) {
			b.WriteByte(s[j])
			continue
		}
		j++
		switch c := s[j]; c {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'x':
			if j+2 < len(s) {
				if v, err := strconv.ParseUint(s[j+1:j+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					j += 2
					continue
				}
			}
			b.WriteByte(c)
		default:
			if c >= '0' && c <= '7' {
				k := j
				for k < len(s) && k < j+3 && s[k] >= '0' && s[k] <= '7' {
					k++
				}
				v, _ := strconv.ParseUint(s[j:k], 8, 8)
				b.WriteByte(byte(v))
				j = k - 1
				continue
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}
