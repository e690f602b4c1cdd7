package linux

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"
)

// auditRecord is one audited syscall, reassembled from the kernel's records that share its
// serial: SYSCALL, then EXECVE, CWD, PATH and SOCKADDR as the syscall has them.
type auditRecord struct {
	time    time.Time
	serial  uint32
	syscall string // name, from the syscall number and the record's arch
	// hasResult: the syscall returned (exit_group never does: its record has no result).
	hasResult bool
	success   bool
	exit      int64 // the return value, or -errno
	args      [4]uint64
	pid, ppid int
	uid, gid  uint32
	comm, exe string
	cwd       string
	argc      int
	argv      []string
	paths     []auditPath
	sockaddr  []byte
}

// auditPath is a PATH record: a name the syscall looked up, as the kernel copied it.
type auditPath struct {
	name     string
	inode    uint64
	dev      uint64 // st_dev encoding (unix.Mkdev)
	nametype string
}

// Audit record types Vigil reads (linux/audit.h); the rest of a group is ignored.
const (
	recSyscall  = auparse.AUDIT_SYSCALL
	recPath     = auparse.AUDIT_PATH
	recCwd      = auparse.AUDIT_CWD
	recExecve   = auparse.AUDIT_EXECVE
	recSockaddr = auparse.AUDIT_SOCKADDR
)

// auditArchSyscalls names the syscalls Vigil's rules select, per audit arch token
// (AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64): a record carries only the number.
var auditArchSyscalls = map[string]map[int]string{
	"c000003e": {59: "execve", 322: "execveat", 2: "open", 257: "openat", 437: "openat2", 85: "creat", 42: "connect",
		56: "clone", 435: "clone3", 57: "fork", 58: "vfork", 231: "exit_group", 60: "exit"},
	"c00000b7": {221: "execve", 281: "execveat", 56: "openat", 437: "openat2", 203: "connect",
		220: "clone", 435: "clone3", 94: "exit_group", 93: "exit"},
}

// errNoSyscall, errOtherSyscall and errNotKept mark groups that are no event of Vigil's:
// records of no syscall (configuration changes), syscalls no rule of Vigil's selects
// (another rule set's, or the sendto that carried Vigil's own rule change), and syscalls
// the caller's keep refused.
var (
	errNoSyscall    = errors.New("no SYSCALL record")
	errOtherSyscall = errors.New("a syscall Vigil's rules do not select")
	errNotKept      = errors.New("a syscall of no followed process")
)

// decodeAuditGroup turns the records of one serial into an auditRecord. The SYSCALL record
// is decoded first; keep (nil: keep all) then decides from it whether the rest is worth
// decoding. Records of types it does not read are skipped; a malformed field of a type it
// reads is an error naming it.
func decodeAuditGroup(msgs []*auparse.AuditMessage, keep func(*auditRecord) bool) (*auditRecord, error) {
	r := &auditRecord{}
	i := slices.IndexFunc(msgs, func(m *auparse.AuditMessage) bool { return m.RecordType == recSyscall })
	if i < 0 {
		return nil, errNoSyscall
	}
	m := msgs[i]
	fields, err := auditFields(m.RawData)
	if err != nil {
		return nil, fmt.Errorf("audit SYSCALL record %d: %w", m.Sequence, err)
	}
	if err := r.syscallFields(fields); errors.Is(err, errOtherSyscall) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("audit SYSCALL record %d: %w", m.Sequence, err)
	}
	r.time, r.serial = m.Timestamp, m.Sequence
	if keep != nil && !keep(r) {
		return nil, errNotKept
	}
	var execve []map[string]string
	for _, m := range msgs {
		switch m.RecordType {
		case recPath, recCwd, recExecve, recSockaddr:
		default:
			continue
		}
		fields, err := auditFields(m.RawData)
		if err != nil {
			return nil, fmt.Errorf("audit %v record %d: %w", m.RecordType, m.Sequence, err)
		}
		switch m.RecordType {
		case recPath:
			p, err := pathFields(fields)
			if err != nil {
				return nil, fmt.Errorf("audit PATH record %d: %w", m.Sequence, err)
			}
			r.paths = append(r.paths, p)
		case recCwd:
			if r.cwd, err = untrustedString(fields["cwd"]); err != nil {
				return nil, fmt.Errorf("audit CWD record %d: cwd: %w", m.Sequence, err)
			}
		case recExecve:
			execve = append(execve, fields)
		case recSockaddr:
			if r.sockaddr, err = hex.DecodeString(fields["saddr"]); err != nil {
				return nil, fmt.Errorf("audit SOCKADDR record %d: saddr: %w", m.Sequence, err)
			}
		}
	}
	if len(execve) > 0 {
		if err := r.execveArgs(execve); err != nil {
			return nil, fmt.Errorf("audit EXECVE record %d: %w", r.serial, err)
		}
	}
	return r, nil
}

// auditFields splits a record's body into its key=value fields. The kernel writes a value
// that could contain a blank, a quote or a control byte as hex (audit_log_untrustedstring),
// so the body splits on blanks.
func auditFields(raw string) (map[string]string, error) {
	_, body, ok := strings.Cut(raw, "): ")
	if !ok {
		return nil, errors.New("no audit(...) header")
	}
	fields := map[string]string{}
	for _, kv := range strings.Fields(body) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue // a bare word (the kernel writes none in the types read here)
		}
		fields[k] = v
	}
	return fields, nil
}

// untrustedString decodes a value the kernel wrote with audit_log_untrustedstring: quoted
// as it is, or hex when it holds a blank, quote or control byte. "(null)" is no value.
func untrustedString(v string) (string, error) {
	switch {
	case v == "" || v == "(null)":
		return "", nil
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		return v[1 : len(v)-1], nil
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("neither quoted nor hex: %q", truncateForError(v))
	}
	return string(b), nil
}

func truncateForError(v string) string {
	if len(v) > 40 {
		return v[:40] + "..."
	}
	return v
}

func (r *auditRecord) syscallFields(f map[string]string) error {
	names, ok := auditArchSyscalls[f["arch"]]
	if !ok {
		return fmt.Errorf("arch %q: not a 64-bit arch Vigil audits", f["arch"])
	}
	nr, err := strconv.Atoi(f["syscall"])
	if err != nil {
		return fmt.Errorf("syscall %q: %w", f["syscall"], err)
	}
	if r.syscall, ok = names[nr]; !ok {
		return errOtherSyscall
	}
	if s, ok := f["success"]; ok {
		r.hasResult, r.success = true, s == "yes"
		if r.exit, err = strconv.ParseInt(f["exit"], 10, 64); err != nil {
			return fmt.Errorf("exit %q: %w", f["exit"], err)
		}
	}
	for i := range r.args {
		if r.args[i], err = strconv.ParseUint(f["a"+strconv.Itoa(i)], 16, 64); err != nil {
			return fmt.Errorf("a%d: %w", i, err)
		}
	}
	ids := []struct {
		key string
		dst *int
	}{{"pid", &r.pid}, {"ppid", &r.ppid}}
	for _, id := range ids {
		if *id.dst, err = strconv.Atoi(f[id.key]); err != nil {
			return fmt.Errorf("%s %q: %w", id.key, f[id.key], err)
		}
	}
	for key, dst := range map[string]*uint32{"uid": &r.uid, "gid": &r.gid} {
		v, err := strconv.ParseUint(f[key], 10, 32)
		if err != nil {
			return fmt.Errorf("%s %q: %w", key, f[key], err)
		}
		*dst = uint32(v)
	}
	if r.comm, err = untrustedString(f["comm"]); err != nil {
		return fmt.Errorf("comm: %w", err)
	}
	if r.exe, err = untrustedString(f["exe"]); err != nil {
		return fmt.Errorf("exe: %w", err)
	}
	return nil
}

func pathFields(f map[string]string) (auditPath, error) {
	var p auditPath
	var err error
	if p.name, err = untrustedString(f["name"]); err != nil {
		return p, fmt.Errorf("name: %w", err)
	}
	p.nametype = f["nametype"]
	if v, ok := f["inode"]; ok {
		if p.inode, err = strconv.ParseUint(v, 10, 64); err != nil {
			return p, fmt.Errorf("inode %q: %w", v, err)
		}
	}
	if v, ok := f["dev"]; ok {
		maj, min, ok := strings.Cut(v, ":")
		ma, err1 := strconv.ParseUint(maj, 16, 32)
		mi, err2 := strconv.ParseUint(min, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			return p, fmt.Errorf("dev %q: not major:minor in hex", v)
		}
		p.dev = unix.Mkdev(uint32(ma), uint32(mi))
	}
	return p, nil
}

// maxAuditArgs bounds the argv kept from an EXECVE record, as the eBPF record's slot does.
const maxAuditArgs = 1024

// execveArgs reads argc and the arguments of the EXECVE records. An argument too long for
// one record comes as aN_len and chunks aN[0], aN[1], ..., possibly over several records.
func (r *auditRecord) execveArgs(records []map[string]string) error {
	all := map[string]string{}
	for _, f := range records {
		for k, v := range f {
			all[k] = v
		}
	}
	argc, err := strconv.Atoi(all["argc"])
	if err != nil || argc < 0 {
		return fmt.Errorf("argc %q: not a count", all["argc"])
	}
	r.argc = argc
	for i := 0; i < argc && i < maxAuditArgs; i++ {
		key := "a" + strconv.Itoa(i)
		if v, ok := all[key]; ok {
			s, err := untrustedString(v)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			r.argv = append(r.argv, s)
			continue
		}
		if _, ok := all[key+"_len"]; !ok {
			break // the kernel stopped logging arguments here (its own limit)
		}
		var b strings.Builder
		for j := 0; ; j++ {
			chunk, ok := all[key+"["+strconv.Itoa(j)+"]"]
			if !ok {
				break
			}
			part, err := hex.DecodeString(chunk)
			if err != nil {
				return fmt.Errorf("%s[%d]: %w", key, j, err)
			}
			b.Write(part)
		}
		r.argv = append(r.argv, b.String())
	}
	return nil
}
