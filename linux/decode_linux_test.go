package linux

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// recordsDir holds real ring-buffer records captured by TestCaptureRecords.
const recordsDir = "testdata/records"

func testDecoder() *decoder {
	return &decoder{bootOffset: 1_700_000_000 * time.Second, agentName: sensor.DefaultCatalog().NameOf}
}

func loadExpected(t testing.TB) []expectedRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(recordsDir, "expected.json"))
	if err != nil {
		t.Fatalf("captured records missing (regenerate: %s=$PWD/linux/testdata/records go test -run TestCaptureRecords ./linux/): %v", captureEnv, err)
	}
	var exp []expectedRecord
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

func TestDecodeCapturedRecords(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		// Their system call numbers and open flags are x86-64's, which the decoder reads as
		// this architecture's.
		testenv.Skipf(t, "the records in %s were captured on x86-64, this is %s", recordsDir, runtime.GOARCH)
	}
	exp := loadExpected(t)
	listed := map[string]bool{}
	kinds := map[string]int{}
	for _, x := range exp {
		listed[x.File] = true
		t.Run(strings.TrimSuffix(x.File, ".bin"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(recordsDir, x.File))
			if err != nil {
				t.Fatal(err)
			}
			r, err := testDecoder().decode(raw)
			if err != nil {
				t.Fatalf("decode %s (%s): %v", x.File, x.What, err)
			}
			e := r.event
			got, _ := json.Marshal(viewOf(e))
			want, _ := json.Marshal(x.Want)
			if !bytes.Equal(got, want) {
				t.Errorf("%s (%s) decodes to\n%s\nwant\n%s", x.File, x.What, got, want)
			}
			kinds[e.Event.Action]++
			if e.Process.Pid == 0 || e.Process.Parent == nil || e.Process.Parent.Pid == 0 || e.Vigil.Root == nil || e.Vigil.Root.Pid == 0 {
				t.Errorf("pid/ppid/root must be non-zero: %+v root %+v", e.Process, e.Vigil.Root)
			}
			if e.Timestamp.IsZero() || e.Process.Start == nil || e.Process.StartBootNs == 0 || e.User == nil {
				t.Errorf("header fields missing: ts %v start %v user %+v", e.Timestamp, e.Process.Start, e.User)
			}
			if e.Vigil.Source != "ebpf" || e.Vigil.Schema != proto.SchemaVersion || e.Event.Dataset != "vigil.kernel" {
				t.Errorf("vigil meta = %+v dataset %q", e.Vigil, e.Event.Dataset)
			}
			for _, p := range []string{e.Process.Executable, e.Process.WorkingDirectory} {
				if p != "" && !filepath.IsAbs(p) && !(e.Vigil.Exe != nil && e.Vigil.Exe.Memfd && p == e.Process.Executable) {
					t.Errorf("process path %q is not absolute", p)
				}
			}
			// A failed io_uring open has no path at all (the kernel's copy is gone).
			noPath := e.File != nil && e.File.Path == "" && e.Vigil.Syscall == proto.SyscallIOUring && e.Event.Outcome == proto.OutcomeFailure
			if e.File != nil && !noPath && !filepath.IsAbs(e.File.Path) && !slices.Contains(e.Vigil.Truncated, "file.path") {
				t.Errorf("file.path %q is not absolute", e.File.Path)
			}
			if r.agentID == 0 || r.trackFlags&trackPending != 0 {
				t.Errorf("agent id %d flags %d: want a confirmed agent tree", r.agentID, r.trackFlags)
			}
		})
	}
	for _, k := range []string{proto.ActionExec, proto.ActionFork, proto.ActionExit, proto.ActionOpen, proto.ActionConnect, proto.ActionSend} {
		if kinds[k] == 0 {
			t.Errorf("no captured %s record", k)
		}
	}
	files, _ := filepath.Glob(filepath.Join(recordsDir, "*.bin"))
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not described in expected.json", f)
		}
	}
}

// The committed records carry nothing but what the decoder reads: no environment value
// other than the allowlisted join keys, no stale scratch bytes.
func TestCapturedRecordsHoldNoOtherEnvironment(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(recordsDir, "*.bin"))
	if len(files) == 0 {
		t.Fatal("no captured records")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{envMarker, "marker-", "PATH=", "/usr/bin:/bin"} {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("%s contains %q", f, s)
			}
		}
		if !bytes.Equal(scrubRecord(raw), raw) {
			t.Errorf("%s holds bytes past its reported lengths: not scrubbed", f)
		}
	}
}

// Hand-built records.

func header(kind uint32) bpf.VigilEventHeader {
	h := bpf.VigilEventHeader{Ts: 2e9, StartNs: 1e9, Kind: kind, Pid: 200, Tid: 201, Ppid: 100, Root: 100, Agent: 1, Uid: 1000, Gid: 1001}
	copy(h.Comm[:], "claude")
	return h
}

func rawOf[T any](v *T) []byte { return bytes.Clone(structBytes(v)) }

func execRecord(argv string, exe, cwd string) *bpf.VigilExecEvent {
	x := &bpf.VigilExecEvent{Hdr: header(kindExec)}
	x.ArgvLen = uint32(copy(x.Argv[:], argv))
	x.ExeLen = uint32(copy(x.Exe[:], exe))
	x.CwdLen = uint32(copy(x.Cwd[:], cwd))
	x.FilenameLen = uint32(copy(x.Filename[:], "/bin/x\x00"))
	return x
}

// openRecord is a failed open (or one whose descriptor was gone): the caller's path.
func openRecord(ret int32, path string) *bpf.VigilOpenEvent {
	x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: ret, Dfd: -100}
	x.PathLen = uint32(copy(x.Path[:], path))
	return x
}

// fileRecord is a successful open: the path walked from the opened file, leaf first, and
// the record cut right after it, as the kernel sends it.
func fileRecord(ret int32, walk string) []byte {
	x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: ret, Dfd: -100, WalkKind: walkFile}
	x.WalkLen = uint32(copy(x.Walk[:], walk))
	return rawOf(x)[:openMinSize+len(walk)]
}

// pseudoRecord is a successful open of a file of a kernel-internal mount: its name only.
func pseudoRecord(name string) []byte {
	x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: 3, Dfd: -100, WalkKind: walkPseudo}
	x.WalkLen = uint32(copy(x.Walk[:], name))
	return rawOf(x)[:openMinSize+len(name)]
}

// mutateRecord is a mutation of relative paths against the cwd /w (walked, leaf first).
func mutateRecord(op uint32, ret int32, path, path2 string) *bpf.VigilMutateEvent {
	x := &bpf.VigilMutateEvent{Hdr: header(kindMutate), Ret: ret, Op: op, Uid: ^uint32(0), Gid: ^uint32(0)}
	x.PathLen = uint32(copy(x.Path[:], path+"\x00"))
	x.WalkKind, x.WalkLen = walkCwd, uint32(copy(x.Walk[:], "w\x00"))
	if path2 != "" {
		x.Path2Len = uint32(copy(x.Path2[:], path2+"\x00"))
		x.Walk2Kind, x.Walk2Len = walkCwd, uint32(copy(x.Walk2[:], "w\x00"))
	}
	return x
}

func TestDecodeMutateShapes(t *testing.T) {
	size := int64(4096)
	for _, c := range []struct {
		name       string
		x          *bpf.VigilMutateEvent
		edit       func(x *bpf.VigilMutateEvent)
		action     string
		file       proto.File
		source     string // vigil.rename.source
		pathSource string
		setid      bool
		trunc      []string
		errno      int
	}{
		{"rename exchange", mutateRecord(1, 0, "b", "/abs/a"), func(x *bpf.VigilMutateEvent) { x.Flags = 2 },
			proto.ActionRename, proto.File{Path: "/w/b", Flags: "RENAME_EXCHANGE"}, "/abs/a", proto.PathSourceCaller, false, nil, 0},
		{"rename onto a dirfd, unknown flag bits in hex", mutateRecord(1, 0, "b", "a"), func(x *bpf.VigilMutateEvent) {
			x.Flags, x.WalkKind = 1|0x80, walkDirfd
		}, proto.ActionRename, proto.File{Path: "/w/b", Flags: "RENAME_NOREPLACE|0x80"}, "/w/a", proto.PathSourceCaller, false, nil, 0},
		{"unlinkat AT_REMOVEDIR failed", mutateRecord(3, -39, "d", ""), func(x *bpf.VigilMutateEvent) { x.Flags = 0x200 },
			proto.ActionRmdir, proto.File{Path: "/w/d"}, "", proto.PathSourceCaller, false, nil, 39},
		{"link with a truncated source walk", mutateRecord(4, 0, "new", "old"), func(x *bpf.VigilMutateEvent) {
			x.Truncated = truncWalk2
			x.Flags = 0x400
		}, proto.ActionLink, proto.File{Path: "/w/new", TargetPath: "…/w/old", Flags: "AT_SYMLINK_FOLLOW"}, "", proto.PathSourceCaller, false, []string{"file.target_path"}, 0},
		{"symlink: a relative target stays as given", mutateRecord(5, 0, "l", "../t"), nil,
			proto.ActionSymlink, proto.File{Path: "/w/l", TargetPath: "../t"}, "", proto.PathSourceCaller, false, nil, 0},
		{"fchmod: the file walked, setgid", mutateRecord(6, 0, "", ""), func(x *bpf.VigilMutateEvent) {
			x.PathLen, x.WalkKind, x.WalkLen = 0, walkFile, uint32(copy(x.Walk[:], "f\x00w\x00"))
			x.Mode = 0o102755 // file type bits are not part of the mode
		}, proto.ActionChmod, proto.File{Path: "/w/f", Mode: "2755"}, "", proto.PathSourceKernel, true, nil, 0},
		{"chown, group unchanged", mutateRecord(7, 0, "f", ""), func(x *bpf.VigilMutateEvent) { x.Uid = 0 },
			proto.ActionChown, proto.File{Path: "/w/f", UID: "0"}, "", proto.PathSourceCaller, false, nil, 0},
		{"truncate with a truncated caller path", mutateRecord(8, -1, "f", ""), func(x *bpf.VigilMutateEvent) {
			x.Length, x.Truncated = 4096, truncPath
		}, proto.ActionTruncate, proto.File{Path: "/w/f", Size: &size}, "", proto.PathSourceCaller, false, []string{"file.path"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.edit != nil {
				c.edit(c.x)
			}
			r, err := testDecoder().decode(rawOf(c.x))
			if err != nil {
				t.Fatal(err)
			}
			e := r.event
			src := ""
			if e.Vigil.Rename != nil {
				src = e.Vigil.Rename.Source
			}
			got, _ := json.Marshal(e.File)
			want, _ := json.Marshal(c.file)
			if e.Event.Action != c.action || e.Event.Category != "file" || !bytes.Equal(got, want) || src != c.source ||
				e.Vigil.PathSource != c.pathSource || e.Vigil.Setid != c.setid || !slices.Equal(e.Vigil.Truncated, c.trunc) || e.Vigil.Errno != c.errno {
				t.Errorf("got %s %s source %q path_source %s setid %v truncated %v errno %d; want %s %s %q %s %v %v %d",
					e.Event.Action, got, src, e.Vigil.PathSource, e.Vigil.Setid, e.Vigil.Truncated, e.Vigil.Errno,
					c.action, want, c.source, c.pathSource, c.setid, c.trunc, c.errno)
			}
		})
	}
	// A short mutate record and an unknown operation are errors, never events.
	x := mutateRecord(9, 0, "f", "")
	if _, err := testDecoder().decode(rawOf(x)); err == nil {
		t.Error("unknown mutate operation decoded")
	}
	x.Op = 2
	if _, err := testDecoder().decode(rawOf(x)[:mutateSize-1]); !errors.Is(err, errShortRecord) {
		t.Errorf("short mutate record: %v", err)
	}
}

// connectRecord is a connect(2) exit record with the kernel's copy of addr.
func connectRecord(ret int32, addr []byte) *bpf.VigilConnectEvent {
	x := &bpf.VigilConnectEvent{Hdr: header(kindConnect), Ret: ret, Fd: 3, NetFlags: netResult | netKernelAddr, Syscall: unix.SYS_CONNECT}
	x.Addrlen = uint32(copy(x.Addr[:], addr))
	return x
}

func TestDecodeShortAndBadRecords(t *testing.T) {
	h := header(kindFork)
	hdr := rawOf(&h)
	withKind := func(kind uint32, size int) []byte {
		b := make([]byte, size)
		h := header(kind)
		copy(b, structBytes(&h))
		return b
	}
	abs := fileRecord(3, "passwd\x00etc\x00")
	failed := rawOf(openRecord(-2, "/etc/passwd\x00"))
	cases := []struct {
		name  string
		raw   []byte
		short bool // the error wraps errShortRecord
	}{
		{"empty", nil, true},
		{"truncated header", hdr[:headerSize-1], true},
		{"one byte", hdr[:1], true},
		{"truncated exec", withKind(kindExec, execSize-1), true},
		{"exec header only", withKind(kindExec, headerSize), true},
		{"truncated exit", withKind(kindExit, exitSize-1), true},
		{"truncated connect", withKind(kindConnect, connectSize-1), true},
		{"open header only", withKind(kindOpen, headerSize), true},
		{"open cut before its path", abs[:openMinSize-1], true},
		{"open cut in its walk", abs[:openMinSize+5], true},
		{"open cut one byte before the walk's end", abs[:len(abs)-1], true},
		{"failed open cut after the walk buffer", failed[:openMinSize+len(bpf.VigilOpenEvent{}.Walk)], true},
		{"failed open cut one byte short", failed[:len(failed)-1], true},
		{"unknown kind", withKind(42, 8192), false},
		{"kind zero", withKind(0, 8192), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := testDecoder().decode(c.raw)
			if err == nil {
				t.Fatalf("decoded %d bytes to %+v, want an error", len(c.raw), r.event)
			}
			if got := errors.Is(err, errShortRecord); got != c.short {
				t.Errorf("errors.Is(%v, errShortRecord) = %v, want %v", err, got, c.short)
			}
			if r.event != nil {
				t.Errorf("an error came with an event")
			}
		})
	}
}

func TestDecodeOpenShapes(t *testing.T) {
	tests := []struct {
		name      string
		raw       []byte
		path      string
		source    string
		truncated []string
	}{
		// The kernel sends a successful open's record up to the end of its walk.
		{"opened file, cut right after the walk", fileRecord(3, "passwd\x00etc\x00"), "/etc/passwd", proto.PathSourceKernel, nil},
		{"opened file, full record", func() []byte {
			x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: 3, WalkKind: walkFile}
			x.WalkLen = uint32(copy(x.Walk[:], "passwd\x00etc\x00"))
			copy(x.Path[:], "/proc/self/root/etc//passwd\x00") // never read for a walked file
			return rawOf(x)
		}(), "/etc/passwd", proto.PathSourceKernel, nil},
		{"opened file without NULs", fileRecord(3, "file\x00dir"), "/dir/file", proto.PathSourceKernel, nil},
		{"opened file at the root (walk_len 0)", fileRecord(3, ""), "/", proto.PathSourceKernel, nil},
		{"opened file deeper than the walk bound", func() []byte {
			x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: 3, WalkKind: walkFile, Truncated: truncWalk}
			x.WalkLen = uint32(copy(x.Walk[:], "secret\x00deep\x00"))
			return rawOf(x)[:openMinSize+int(x.WalkLen)]
		}(), "…/deep/secret", proto.PathSourceKernel, []string{"file.path"}},
		{"a pipe opened through /dev/fd/63", pseudoRecord("pipefs:[10634590]\x00"), "pipe:[10634590]", proto.PathSourceKernel, nil},
		{"a socket", pseudoRecord("sockfs:[42]\x00"), "socket:[42]", proto.PathSourceKernel, nil},
		{"an anon inode", pseudoRecord("[eventfd]\x00"), "[eventfd]", proto.PathSourceKernel, nil},
		{"a memfd", pseudoRecord("memfd:payload\x00"), "memfd:payload", proto.PathSourceKernel, nil},
		{"failed absolute open", rawOf(openRecord(-13, "/root/.ssh/id_rsa\x00")), "/root/.ssh/id_rsa", proto.PathSourceCaller, nil},
		{"path unreadable (path_len 0)", rawOf(openRecord(-14, "")), "", proto.PathSourceCaller, nil},
		{"descriptor gone at exit: the caller's string", rawOf(openRecord(3, "/etc/passwd")), "/etc/passwd", proto.PathSourceCaller, nil},
		{"failed relative open at /", func() []byte {
			x := openRecord(-2, "./missing\x00")
			x.WalkKind = walkCwd // walk_len 0: the cwd is the root
			return rawOf(x)
		}(), "/missing", proto.PathSourceCaller, nil},
		{"failed relative open in a deep cwd", func() []byte {
			x := openRecord(-2, "a/b\x00")
			x.WalkKind, x.WalkLen = walkCwd, uint32(copy(x.Walk[:], "work\x00home\x00"))
			return rawOf(x)
		}(), "/home/work/a/b", proto.PathSourceCaller, nil},
		{"failed relative open under a dirfd", func() []byte {
			x := openRecord(-2, "b\x00")
			x.Dfd = 5
			x.WalkKind, x.WalkLen = walkDirfd, uint32(copy(x.Walk[:], "dir\x00etc\x00"))
			return rawOf(x)
		}(), "/etc/dir/b", proto.PathSourceCaller, nil},
		{"failed relative open in a cwd deeper than the bound", func() []byte {
			x := openRecord(-2, "x\x00")
			x.Truncated = truncWalk
			x.WalkKind, x.WalkLen = walkCwd, uint32(copy(x.Walk[:], "c\x00b\x00"))
			return rawOf(x)
		}(), "…/b/c/x", proto.PathSourceCaller, []string{"file.path"}},
		{"failed absolute open: a cwd walk is not applied", func() []byte {
			x := openRecord(-2, "/abs\x00")
			x.WalkKind, x.WalkLen = walkCwd, uint32(copy(x.Walk[:], "cwd\x00"))
			return rawOf(x)
		}(), "/abs", proto.PathSourceCaller, nil},
		{"lengths past the buffers", func() []byte {
			x := openRecord(3, "")
			for i := range x.Path {
				x.Path[i] = 'p'
			}
			for i := range x.Walk {
				x.Walk[i] = 'w'
			}
			x.PathLen, x.WalkLen, x.WalkKind, x.Truncated = ^uint32(0), ^uint32(0), walkFile, truncPath|truncWalk
			return rawOf(x)
		}(), "…/" + strings.Repeat("w", len(bpf.VigilOpenEvent{}.Walk)), proto.PathSourceKernel, []string{"file.path"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := testDecoder().decode(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			e := r.event
			if e.File == nil || e.File.Path != tc.path {
				t.Fatalf("file = %+v, want path %q", e.File, tc.path)
			}
			if e.Vigil.PathSource != tc.source {
				t.Errorf("path_source = %q, want %q", e.Vigil.PathSource, tc.source)
			}
			if !slices.Equal(e.Vigil.Truncated, tc.truncated) {
				t.Errorf("truncated = %q, want %q", e.Vigil.Truncated, tc.truncated)
			}
		})
	}
	// A walk longer than the record but clamped to the buffer: an error, not a panic.
	x := &bpf.VigilOpenEvent{Hdr: header(kindOpen), Ret: 3, WalkKind: walkFile, WalkLen: ^uint32(0)}
	if _, err := testDecoder().decode(rawOf(x)[:openMinSize+3]); !errors.Is(err, errShortRecord) {
		t.Errorf("huge walk_len in a short record: err = %v", err)
	}
}

func TestDecodeExecShapes(t *testing.T) {
	t.Run("empty arguments", func(t *testing.T) {
		x := execRecord("a\x00\x00b\x00\x00", "x\x00bin\x00", "")
		x.Argc = 4
		r, err := testDecoder().decode(rawOf(x))
		if err != nil {
			t.Fatal(err)
		}
		e := r.event
		if want := []string{"a", "", "b", ""}; !slices.Equal(e.Process.Args, want) || e.Process.ArgsCount != 4 {
			t.Errorf("args = %q (%d), want %q", e.Process.Args, e.Process.ArgsCount, want)
		}
		if e.Process.Executable != "/bin/x" || e.Process.WorkingDirectory != "/" {
			t.Errorf("executable %q cwd %q", e.Process.Executable, e.Process.WorkingDirectory)
		}
		if e.Vigil.Join != nil || e.Process.Thread != nil || e.GenAI == nil || e.GenAI.Agent.Name == "" {
			t.Errorf("join %+v thread %+v genai %+v", e.Vigil.Join, e.Process.Thread, e.GenAI)
		}
		if e.User.ID != "1000" || e.User.Group.ID != "1001" || e.Process.Name != "claude" {
			t.Errorf("user %+v name %q", e.User, e.Process.Name)
		}
	})
	t.Run("executed file's identity", func(t *testing.T) {
		cases := []struct {
			name       string
			flags      uint32
			exe        string
			executable string
			memfd      bool
			deleted    bool
		}{
			{"a file with a path", 0, "true\x00bin\x00usr\x00", "/usr/bin/true", false, false},
			{"a deleted file keeps its last path", exeUnlinked, "payload\x00tmp\x00", "/tmp/payload", false, true},
			{"a memfd is named as the kernel names it", exeUnlinked | exeInternal, "memfd:payload\x00", "memfd:payload", true, false},
			{"another file of an internal mount", exeUnlinked | exeInternal, "dev/zero\x00", "dev/zero", false, true},
		}
		for _, c := range cases {
			x := execRecord("x\x00", c.exe, "")
			copy(x.Filename[:], "/proc/self/fd/3\x00")
			// 8:1 in the kernel's dev_t, 1700000000.5 s.
			x.ExeFlags, x.ExeDev, x.ExeIno, x.ExeCtimeSec, x.ExeCtimeNsec = c.flags, 8<<20|1, 4242, 1_700_000_000, 500_000_000
			r, err := testDecoder().decode(rawOf(x))
			if err != nil {
				t.Fatal(err)
			}
			e := r.event
			want := proto.Exe{Dev: unix.Mkdev(8, 1), Ino: 4242, Ctime: "2023-11-14T22:13:20.500000000Z", Memfd: c.memfd, Deleted: c.deleted}
			if e.Process.Executable != c.executable || e.Vigil.Exe == nil || *e.Vigil.Exe != want {
				t.Errorf("%s: executable %q exe %+v, want %q %+v", c.name, e.Process.Executable, e.Vigil.Exe, c.executable, want)
			}
		}
	})
	t.Run("walks without NUL terminators", func(t *testing.T) {
		x := execRecord("sh\x00", "sh\x00bin\x00usr", "b\x00a")
		r, err := testDecoder().decode(rawOf(x))
		if err != nil {
			t.Fatal(err)
		}
		if e := r.event; e.Process.Executable != "/usr/bin/sh" || e.Process.WorkingDirectory != "/a/b" {
			t.Errorf("executable %q cwd %q", e.Process.Executable, e.Process.WorkingDirectory)
		}
	})
	t.Run("failed exe walk falls back to the filename", func(t *testing.T) {
		x := execRecord("x\x00", "", "")
		r, err := testDecoder().decode(rawOf(x))
		if err != nil {
			t.Fatal(err)
		}
		if r.event.Process.Executable != "/bin/x" {
			t.Errorf("executable %q", r.event.Process.Executable)
		}
	})
	t.Run("lengths past the buffers", func(t *testing.T) {
		x := execRecord("", "", "")
		for _, b := range [][]byte{x.Filename[:], x.Argv[:], x.Exe[:], x.Cwd[:]} {
			for i := range b {
				b[i] = 'z'
			}
		}
		for i := range x.Env {
			for j := range x.Env[i] {
				x.Env[i][j] = 'e'
			}
		}
		x.ArgvLen, x.FilenameLen, x.ExeLen, x.CwdLen, x.Argc = ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)
		x.EnvFound, x.Truncated = ^uint32(0), ^uint32(0)
		r, err := testDecoder().decode(rawOf(x))
		if err != nil {
			t.Fatal(err)
		}
		e := r.event
		if len(e.Process.Args) != 1 || len(e.Process.Args[0]) != len(x.Argv) {
			t.Errorf("args not clamped to the buffer: %d args", len(e.Process.Args))
		}
		// Truncated walks start with "…/" instead of "/".
		if len(e.Process.Executable) != len(x.Exe)+len(truncatedRoot)+1 || len(e.Process.WorkingDirectory) != len(x.Cwd)+len(truncatedRoot)+1 {
			t.Errorf("walks not clamped: %d %d", len(e.Process.Executable), len(e.Process.WorkingDirectory))
		}
		if e.Vigil.Join == nil || len(e.Vigil.Join.TraceParent) != len(x.Env[0]) || e.Vigil.Join.Markers["claude-code"] == "" {
			t.Errorf("join keys = %+v", e.Vigil.Join)
		}
		want := []string{"process.args", "process.executable", "process.working_directory", "file.path"}
		if !slices.Equal(e.Vigil.Truncated, want) {
			t.Errorf("truncated = %q, want %q", e.Vigil.Truncated, want)
		}
	})
	t.Run("pending flags and unknown agent", func(t *testing.T) {
		x := execRecord("node\x00cli.js\x00", "node\x00", "")
		x.Hdr.Agent, x.Hdr.TrackFlags = 0, trackPending
		r, err := testDecoder().decode(rawOf(x))
		if err != nil {
			t.Fatal(err)
		}
		if r.trackFlags != trackPending || r.agentID != 0 || r.event.GenAI != nil {
			t.Errorf("flags %d agent %d genai %+v", r.trackFlags, r.agentID, r.event.GenAI)
		}
	})
}

func TestDecodeConnectShapes(t *testing.T) {
	inet := func(port int, ip ...byte) []byte {
		return append([]byte{unix.AF_INET, 0, byte(port >> 8), byte(port)}, ip...)
	}
	inet6 := func(port int, ip ...byte) []byte {
		b := append([]byte{unix.AF_INET6, 0, byte(port >> 8), byte(port), 0, 0, 0, 0}, ip...)
		return append(b, 0, 0, 0, 0) // scope id
	}
	mapped := append(make([]byte, 10), 0xff, 0xff, 10, 0, 0, 1)
	tests := []struct {
		name    string
		ret     int32
		addr    []byte
		addrlen uint32 // 0: len(addr)
		network string
		dest    *proto.Destination
		outcome string
		errno   int
	}{
		{"ipv4", 0, append(inet(443, 93, 184, 216, 34), make([]byte, 8)...), 0, "ipv4", &proto.Destination{IP: "93.184.216.34", Port: 443}, proto.OutcomeSuccess, 0},
		{"ipv4 cut short", 0, inet(443, 1, 2), 0, "ipv4", &proto.Destination{}, proto.OutcomeSuccess, 0},
		{"ipv4-mapped ipv6", -int32(unix.ECONNREFUSED), inet6(80, mapped...), 0, "ipv6", &proto.Destination{IP: "10.0.0.1", Port: 80}, proto.OutcomeFailure, int(unix.ECONNREFUSED)},
		{"einprogress", -einprogress, inet(80, 127, 0, 0, 1), 0, "ipv4", &proto.Destination{IP: "127.0.0.1", Port: 80}, proto.OutcomeUnknown, einprogress},
		{"unix path without NUL", 0, append([]byte{unix.AF_UNIX, 0}, "/run/x.sock"...), 0, "unix", &proto.Destination{Address: "/run/x.sock"}, proto.OutcomeSuccess, 0},
		{"abstract with trailing NULs", 0, append([]byte{unix.AF_UNIX, 0, 0}, "name\x00\x00"...), 0, "unix", &proto.Destination{Address: "@name"}, proto.OutcomeSuccess, 0},
		{"unnamed unix", 0, []byte{unix.AF_UNIX, 0}, 0, "unix", &proto.Destination{}, proto.OutcomeSuccess, 0},
		{"addrlen past the buffer", 0, append([]byte{unix.AF_UNIX, 0}, bytes.Repeat([]byte{'u'}, 110)...), ^uint32(0), "unix", &proto.Destination{Address: strings.Repeat("u", 110)}, proto.OutcomeSuccess, 0},
		{"addrlen 1", 0, []byte{unix.AF_INET, 0, 1, 2}, 1, "", nil, proto.OutcomeSuccess, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := connectRecord(tc.ret, tc.addr)
			if tc.addrlen != 0 {
				x.Addrlen = tc.addrlen
			}
			r, err := testDecoder().decode(rawOf(x))
			if err != nil {
				t.Fatal(err)
			}
			e := r.event
			network := ""
			if e.Network != nil {
				network = e.Network.Type
			}
			if network != tc.network || !reflect.DeepEqual(e.Destination, tc.dest) {
				t.Errorf("network %q destination %+v, want %q %+v", network, e.Destination, tc.network, tc.dest)
			}
			if e.Event.Outcome != tc.outcome || e.Vigil.Errno != tc.errno {
				t.Errorf("outcome %q errno %d, want %q %d", e.Event.Outcome, e.Vigil.Errno, tc.outcome, tc.errno)
			}
			if e.Process.Thread == nil || e.Process.Thread.ID != 201 {
				t.Errorf("thread = %+v, want 201", e.Process.Thread)
			}
		})
	}
}

// TestDecodeNetworkSources: where a network line's address came from, which call made it,
// and that a record a hook took before the call completed claims no outcome.
func TestDecodeNetworkSources(t *testing.T) {
	addr := []byte{unix.AF_INET, 0, 0, 53, 127, 0, 0, 53}
	tests := []struct {
		name                         string
		kind, flags                  uint32
		syscall, ret                 int32
		action, outcome, source, via string
	}{
		{"connect, kernel address", kindConnect, netResult | netKernelAddr, unix.SYS_CONNECT, 0, proto.ActionConnect, proto.OutcomeSuccess, proto.AddressSourceKernel, "connect"},
		{"connect, caller's address (no hook ran)", kindConnect, netResult, unix.SYS_CONNECT, -int32(unix.EAFNOSUPPORT), proto.ActionConnect, proto.OutcomeFailure, proto.AddressSourceCaller, "connect"},
		{"TCP Fast Open: a connect made by sendto", kindConnect, netKernelAddr, unix.SYS_SENDTO, 0, proto.ActionConnect, proto.OutcomeUnknown, proto.AddressSourceKernel, "sendto"},
		{"io_uring connect in io_uring_enter", kindConnect, netKernelAddr | netIOUring, unix.SYS_IO_URING_ENTER, 0, proto.ActionConnect, proto.OutcomeUnknown, proto.AddressSourceKernel, proto.SyscallIOUring},
		{"sendto", kindSend, netKernelAddr, unix.SYS_SENDTO, 0, proto.ActionSend, proto.OutcomeUnknown, proto.AddressSourceKernel, "sendto"},
		{"sendmsg", kindSend, netKernelAddr, unix.SYS_SENDMSG, 0, proto.ActionSend, proto.OutcomeUnknown, proto.AddressSourceKernel, "sendmsg"},
		{"sendmmsg", kindSend, netKernelAddr, unix.SYS_SENDMMSG, 0, proto.ActionSend, proto.OutcomeUnknown, proto.AddressSourceKernel, "sendmmsg"},
		{"send by an io worker", kindSend, netKernelAddr | netIOUring, -1, 0, proto.ActionSend, proto.OutcomeUnknown, proto.AddressSourceKernel, proto.SyscallIOUring},
		{"a system call no network line names", kindSend, netKernelAddr, unix.SYS_WRITE, 0, proto.ActionSend, proto.OutcomeUnknown, proto.AddressSourceKernel, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := &bpf.VigilConnectEvent{Hdr: header(tc.kind), Ret: tc.ret, NetFlags: tc.flags, Syscall: tc.syscall}
			x.Addrlen = uint32(copy(x.Addr[:], addr))
			r, err := testDecoder().decode(rawOf(x))
			if err != nil {
				t.Fatal(err)
			}
			e := r.event
			if e.Event.Action != tc.action || e.Event.Outcome != tc.outcome || e.Vigil.AddressSource != tc.source || e.Vigil.Syscall != tc.via {
				t.Errorf("action %q outcome %q address_source %q syscall %q, want %q %q %q %q",
					e.Event.Action, e.Event.Outcome, e.Vigil.AddressSource, e.Vigil.Syscall, tc.action, tc.outcome, tc.source, tc.via)
			}
			if e.Destination == nil || e.Destination.IP != "127.0.0.53" || e.Destination.Port != 53 {
				t.Errorf("destination %+v, want 127.0.0.53:53", e.Destination)
			}
		})
	}
}

func TestDecodeForkAndExit(t *testing.T) {
	h := header(kindFork)
	r, err := testDecoder().decode(rawOf(&h))
	if err != nil {
		t.Fatal(err)
	}
	if e := r.event; e.Event.Action != proto.ActionFork || e.Process.Thread != nil || e.Process.ExitCode != nil || e.Process.Parent.Pid != 100 {
		t.Errorf("fork = %+v", e.Process)
	}
	x := bpf.VigilExitEvent{Hdr: header(kindExit), ExitCode: uint32(unix.SIGSEGV) | 0x80}
	r, err = testDecoder().decode(rawOf(&x))
	if err != nil {
		t.Fatal(err)
	}
	if e := r.event; e.Event.Action != proto.ActionExit || e.Process.ExitCode == nil || *e.Process.ExitCode != 139 {
		t.Errorf("exit = %+v", e.Process)
	}
	// Trailing bytes past a fixed-size record are ignored.
	r, err = testDecoder().decode(append(rawOf(&x), 1, 2, 3))
	if err != nil || *r.event.Process.ExitCode != 139 {
		t.Errorf("exit with trailing bytes: %v", err)
	}
}

func TestJoinWalk(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"\x00\x00", "/"},
		{"/\x00", "/"},
		{"passwd\x00etc\x00", "/etc/passwd"},
		{"passwd\x00etc", "/etc/passwd"},           // no terminator
		{"file\x00\x00dir\x00", "/dir/file"},       // an empty component is skipped
		{"file\x00/\x00dir\x00/\x00", "/dir/file"}, // a mount root's "/" is skipped
		{"d e\x00ünï\x00", "/ünï/d e"},             // names are bytes
		{"a\x00b\x00c\x00\x00\x00\x00", "/c/b/a"},  // zero padding
		{strings.Repeat("x", 300), "/" + strings.Repeat("x", 300)},
	}
	for _, tc := range tests {
		if got := joinWalk([]byte(tc.in), false); got != tc.want {
			t.Errorf("joinWalk(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A truncated walk keeps the leaf side and never reads as absolute.
	for in, want := range map[string]string{"": "…/", "passwd\x00etc\x00": "…/etc/passwd", "a\x00/\x00": "…/a"} {
		if got := joinWalk([]byte(in), true); got != want {
			t.Errorf("joinWalk(%q, truncated) = %q, want %q", in, got, want)
		}
	}
}

func TestJoinPath(t *testing.T) {
	tests := []struct{ dir, rel, want string }{
		{"/", "x", "/x"},
		{"/", "./x", "/x"},
		{"/home/u", "a/b", "/home/u/a/b"},
		{"/home/u", "./.env", "/home/u/.env"},
	}
	for _, tc := range tests {
		if got := joinPath(tc.dir, tc.rel); got != tc.want {
			t.Errorf("joinPath(%q, %q) = %q, want %q", tc.dir, tc.rel, got, tc.want)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\x00", []string{""}},
		{"ls\x00", []string{"ls"}},
		{"ls\x00-l\x00", []string{"ls", "-l"}},
		{"git\x00commit\x00-m\x00\x00", []string{"git", "commit", "-m", ""}}, // empty last argument
		{"a\x00\x00\x00b\x00", []string{"a", "", "", "b"}},
		{"echo\x00trunc", []string{"echo", "trunc"}}, // cut mid-argument (TRUNC_ARGV)
		{"a b\x00c\td\x00", []string{"a b", "c\td"}},
	}
	for _, tc := range tests {
		if got := splitArgs([]byte(tc.in)); !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("splitArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOpenFlagsAndAccess(t *testing.T) {
	tests := []struct {
		flags         int
		names, access string
	}{
		{unix.O_RDONLY, "O_RDONLY", "read"},
		{unix.O_WRONLY, "O_WRONLY", "write"},
		{unix.O_RDWR, "O_RDWR", "read_write"},
		{unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC", "write"},
		{unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_APPEND | unix.O_CLOEXEC, "O_WRONLY|O_CREAT|O_EXCL|O_APPEND|O_CLOEXEC", "write"},
		{unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK, "O_RDONLY|O_NONBLOCK|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC", "read"},
		{unix.O_RDWR | unix.O_NOCTTY | unix.O_DSYNC | unix.O_DIRECT | unix.O_NOATIME, "O_RDWR|O_NOCTTY|O_DSYNC|O_DIRECT|O_NOATIME", "read_write"},
		{unix.O_PATH | unix.O_CLOEXEC, "O_RDONLY|O_CLOEXEC|O_PATH", "path"},
		{unix.O_RDWR | unix.O_TMPFILE, "O_RDWR|O_DIRECTORY|O_TMPFILE", "read_write"},
		{unix.O_ACCMODE, "O_ACCMODE", "read"},
	}
	for _, tc := range tests {
		if got := openFlags(uint32(tc.flags)); got != tc.names {
			t.Errorf("openFlags(%#o) = %q, want %q", tc.flags, got, tc.names)
		}
		if got := openAccess(uint32(tc.flags)); got != tc.access {
			t.Errorf("openAccess(%#o) = %q, want %q", tc.flags, got, tc.access)
		}
	}
	if got := openFlags(^uint32(0)); !strings.HasPrefix(got, "O_ACCMODE|O_CREAT|") {
		t.Errorf("openFlags(all bits) = %q", got)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		status uint32
		want   int
	}{
		{0, 0},
		{1 << 8, 1},
		{3 << 8, 3},
		{255 << 8, 255},
		{uint32(unix.SIGKILL), 137},
		{uint32(unix.SIGTERM), 143},
		{uint32(unix.SIGSEGV) | 0x80, 139}, // core dumped
		{uint32(unix.SIGABRT) | 0x80, 134},
	}
	for _, tc := range tests {
		if got := exitCode(tc.status); got != tc.want {
			t.Errorf("exitCode(%#x) = %d, want %d", tc.status, got, tc.want)
		}
	}
}

func TestSetOutcome(t *testing.T) {
	tests := []struct {
		ret     int32
		connect bool
		outcome string
		errno   int
	}{
		{0, false, proto.OutcomeSuccess, 0},
		{7, false, proto.OutcomeSuccess, 0}, // an open's fd
		{0, true, proto.OutcomeSuccess, 0},
		{-int32(unix.ENOENT), false, proto.OutcomeFailure, 2},
		{-int32(unix.EACCES), false, proto.OutcomeFailure, 13},
		{-int32(unix.ECONNREFUSED), true, proto.OutcomeFailure, 111},
		{-einprogress, true, proto.OutcomeUnknown, 115},
		{-einprogress, false, proto.OutcomeFailure, 115}, // only a connect can be in progress
	}
	for _, tc := range tests {
		e := &proto.Event{}
		setOutcome(e, tc.ret, tc.connect)
		if e.Event.Outcome != tc.outcome || e.Vigil.Errno != tc.errno {
			t.Errorf("setOutcome(%d, %v) = %q errno %d, want %q %d", tc.ret, tc.connect, e.Event.Outcome, e.Vigil.Errno, tc.outcome, tc.errno)
		}
	}
	if unix.EINPROGRESS != einprogress {
		t.Errorf("einprogress = %d, unix.EINPROGRESS = %d", einprogress, unix.EINPROGRESS)
	}
}

func TestTruncatedNames(t *testing.T) {
	if got := truncatedNames(0); got != nil {
		t.Errorf("truncatedNames(0) = %q", got)
	}
	if got := truncatedNames(truncPath | truncWalk); !slices.Equal(got, []string{"file.path"}) {
		t.Errorf("truncatedNames(path|walk) = %q", got)
	}
	if got := truncatedNames(truncArgv | truncCwd); !slices.Equal(got, []string{"process.args", "process.working_directory"}) {
		t.Errorf("truncatedNames(argv|cwd) = %q", got)
	}
}

// fuzzSeeds are every captured record and the hand-built shapes.
func fuzzSeeds(f *testing.F) [][]byte {
	files, _ := filepath.Glob(filepath.Join(recordsDir, "*.bin"))
	if len(files) == 0 {
		f.Fatal("no captured records to seed from")
	}
	var seeds [][]byte
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, raw)
	}
	h := header(kindFork)
	abs := fileRecord(3, "passwd\x00etc\x00")
	x := execRecord("a\x00\x00b\x00", "x\x00bin", "b\x00a")
	seeds = append(seeds, rawOf(mutateRecord(1, 0, "dst", "src")), rawOf(mutateRecord(5, 0, "l", "t")))
	seeds = append(seeds, nil, rawOf(&h), abs, abs[:openMinSize+5], rawOf(openRecord(-2, "rel\x00")), rawOf(x),
		rawOf(connectRecord(-einprogress, []byte{unix.AF_UNIX, 0, 0, 'n'})))
	return seeds
}

var validActions = []string{proto.ActionExec, proto.ActionFork, proto.ActionExit, proto.ActionOpen, proto.ActionConnect, proto.ActionSend,
	proto.ActionRename, proto.ActionUnlink, proto.ActionRmdir, proto.ActionLink, proto.ActionSymlink, proto.ActionChmod,
	proto.ActionChown, proto.ActionTruncate}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := testDecoder()
		r, err := d.decode(raw)
		if err != nil {
			if r.event != nil {
				t.Fatalf("error %v came with an event", err)
			}
			if len(raw) < headerSize && !errors.Is(err, errShortRecord) {
				t.Fatalf("%d-byte record: %v does not wrap errShortRecord", len(raw), err)
			}
			return
		}
		e := r.event
		if e == nil || e.Process == nil || !slices.Contains(validActions, e.Event.Action) {
			t.Fatalf("decoded to an invalid event: %+v", e)
		}
		first, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		r2, err := d.decode(raw)
		if err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		second, err := json.Marshal(r2.event)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("decoding is not deterministic:\n%s\n%s", first, second)
		}
	})
}
