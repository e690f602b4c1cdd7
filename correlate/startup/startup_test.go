package startup_test

import (
	"bufio"
	"os"
	"testing"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/proto"
)

// testdata/claude-bash.jsonl holds kernel lines of the bench/e2e scenario claude/filetools as
// vigil run wrote them, in write order: Claude Code's `bash -c env` (which execs env), a
// `bash -c 'source <snapshot> … && eval …'` with a forked subshell, a `sh ./script` and a `cat`
// it started.
func TestObserveRealLines(t *testing.T) {
	want := map[uint64]startup.Kind{
		// bash -c env: its libraries after the exec, /dev/tty (read_write: the loader's window
		// ends, and it is no read), libc's locale data, then the shell's rc files.
		1358: startup.Loader, 1359: startup.Loader, 1360: startup.Loader,
		1362: startup.Locale, 1363: startup.Locale, 1364: startup.Locale, 1365: startup.Locale, 1366: startup.Locale,
		1390: startup.Shell, 1391: startup.Shell,
		// bash execs env in place: the exec starts a new window, and env is no shell.
		1393: startup.Loader, 1394: startup.Loader, 1395: startup.Locale, 1396: startup.Locale,
		// bash -c 'source <snapshot> …': the snapshot and its `< /dev/null` are read before
		// the first fork; writes to /dev/null are not reads.
		1620: startup.Loader, 1621: startup.Loader, 1622: startup.Loader,
		1652: startup.Shell, 1653: startup.Shell, 1655: startup.Shell,
		// The forked subshell (1657) has no exec of its own: only its message catalogue is
		// start-up. The fork ended bash's window: its `< /dev/null` (1670) is the command's.
		1660: startup.Locale,
		1665: startup.Locale,
		// sh ./.e2e/vmark_0_3_ runs a script (its program is the script): reading the script
		// is the command.
		1673: startup.Loader, 1674: startup.Loader,
		// After bash forked (1671), its directory reads are the command's.
		// cat: libraries, locale, then the files it was asked to print.
		1765: startup.Loader, 1767: startup.Loader, 1769: startup.Locale, 1771: startup.Locale, 1816: startup.Locale,
	}
	f, err := os.Open("testdata/claude-bash.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := startup.New(0)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	seen := map[uint64]bool{}
	for sc.Scan() {
		var e proto.Event
		if err := proto.UnmarshalJSON(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		seq := e.Event.Sequence
		seen[seq] = true
		if got := tr.Observe(&e); got != want[seq] {
			path := ""
			if e.File != nil {
				path = e.File.Path
			}
			t.Errorf("line %d (%s %s %s) kind %q, want %q", seq, e.Process.Name, e.Event.Action, path, got, want[seq])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for seq := range want {
		if !seen[seq] {
			t.Errorf("line %d is not in the sample", seq)
		}
	}
	// Every process that exec'd in the sample exited.
	if st := tr.Stats(); st.Processes != 0 || st.Evicted != 0 {
		t.Errorf("stats %+v after every process exited", st)
	}
}

// line is a kernel line of process ent.
type line struct {
	action, ent, path, access string
	failed                    bool
	exe                       string
	args                      []string
}

func (l line) event() *proto.Event {
	e := &proto.Event{
		Event:   proto.EventMeta{Action: l.action, Kind: "event", Dataset: "vigil.kernel"},
		Process: &proto.Process{Pid: 1, EntityID: l.ent, Executable: l.exe, Args: l.args},
	}
	if l.failed {
		e.Event.Outcome = proto.OutcomeFailure
	}
	switch l.action {
	case proto.ActionOpen:
		e.File = &proto.File{Path: l.path, Access: l.access}
		if l.access == "write" {
			e.File.Flags = "O_WRONLY|O_CREAT|O_TRUNC"
		}
	case proto.ActionFork:
		// The line is the child's (entity "child of <parent>"); the parent forked.
		e.Process.Parent = &proto.ParentProcess{EntityID: l.ent}
		e.Process.EntityID = "child of " + l.ent
	}
	return e
}

func exec(ent, exe string, args ...string) line {
	return line{action: proto.ActionExec, ent: ent, exe: exe, args: args}
}
func read(ent, path string) line {
	return line{action: proto.ActionOpen, ent: ent, path: path, access: "read"}
}

func TestObserveOrder(t *testing.T) {
	type step struct {
		l    line
		want startup.Kind
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a library opened after the program's first own open is a dlopen", []step{
			{exec("p", "/usr/bin/python3", "python3", "app.py"), ""},
			{read("p", "/etc/ld.so.cache"), startup.Loader},
			{read("p", "/lib/libpython3.12.so.1.0"), startup.Loader},
			{read("p", "/home/u/app.py"), ""},
			{read("p", "/home/u/venv/lib/_ssl.cpython-312-x86_64-linux-gnu.so"), ""},
		}},
		{"a failed probe is the loader's, a library written is not read", []step{
			{exec("p", "/usr/bin/ld-user"), ""},
			{line{action: proto.ActionOpen, ent: "p", path: "/usr/lib/glibc-hwcaps/x86-64-v3/libc.so.6", access: "read", failed: true}, startup.Loader},
			{line{action: proto.ActionOpen, ent: "p", path: "/tmp/libevil.so", access: "write"}, ""},
			{read("p", "/usr/lib/libc.so.6"), ""},
		}},
		{"file kinds: .so and .so.N, the loader's cache; not .sock, .so.bak or .json", []step{
			{exec("p", "/bin/true"), ""},
			{read("p", "/etc/ld.so.preload"), startup.Loader},
			{read("p", "/lib/ld-linux-x86-64.so.2"), startup.Loader},
			{read("p", "/lib/libfoo.so"), startup.Loader},
			{read("p", "/run/x.sock"), ""},
			{exec("p", "/bin/true"), ""},
			{read("p", "/lib/libfoo.so.bak"), ""},
			{exec("p", "/bin/true"), ""},
			{read("p", "/lib/.so"), ""},
		}},
		{"a process whose exec was not seen: locale only", []step{
			{read("q", "/lib/libc.so.6"), ""},
			{read("q", "/usr/share/locale/de/LC_MESSAGES/git.mo"), startup.Locale},
			{read("q", "/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so"), startup.Locale},
			{read("q", "/usr/lib/locale"), ""},
			{read("q", "/home/u/locale.json"), ""},
			{line{action: proto.ActionOpen, ent: "q", path: "/usr/lib/locale/C.utf8/LC_CTYPE", access: "read_write"}, ""},
		}},
		{"a shell's window ends at its first fork", []step{
			{exec("s", "/usr/bin/bash", "bash", "-c", "-l", "make"), ""},
			{read("s", "/etc/profile"), startup.Shell},
			{read("s", "/home/u/.claude/shell-snapshots/snapshot-bash-1.sh"), startup.Shell},
			{line{action: proto.ActionOpen, ent: "s", path: "/home/u/out", access: "write"}, ""},
			{read("s", "/home/u/.bashrc"), startup.Shell},
			{line{action: proto.ActionFork, ent: "s"}, ""},
			{read("s", "/home/u/Makefile"), ""},
		}},
		{"a shell's window ends at its first connect", []step{
			{exec("s", "/bin/zsh", "zsh"), ""},
			{read("s", "/etc/zshrc"), startup.Shell},
			{line{action: proto.ActionConnect, ent: "s"}, ""},
			{read("s", "/home/u/notes"), ""},
		}},
		{"an exec ends the shell, a failed exec does not", []step{
			{exec("s", "/bin/dash", "sh", "-c", "cat x"), ""},
			{line{action: proto.ActionExec, ent: "s", exe: "/usr/bin/cat", args: []string{"cat", "x"}, failed: true}, ""},
			{read("s", "/etc/profile"), startup.Shell},
			{exec("s", "/usr/bin/cat", "cat", "x"), ""},
			{read("s", "/home/u/x"), ""},
		}},
		{"exit forgets the process", []step{
			{exec("s", "/bin/bash", "bash"), ""},
			{line{action: proto.ActionExit, ent: "s"}, ""},
			{read("s", "/etc/bash.bashrc"), ""},
		}},
		{"lines that are not the kernel's", []step{
			{exec("s", "/bin/bash", "bash"), ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := startup.New(8)
			for i, s := range tt.steps {
				if got := tr.Observe(s.l.event()); got != s.want {
					t.Errorf("step %d (%s %s): %q, want %q", i, s.l.action, s.l.path, got, s.want)
				}
			}
		})
	}
	tr := startup.New(8)
	e := exec("s", "/bin/bash", "bash").event()
	e.Event.Dataset = proto.DatasetAgent
	tr.Observe(e)
	if got := tr.Observe(read("s", "/etc/bash.bashrc").event()); got != "" || tr.Stats().Processes != 0 {
		t.Errorf("an agent line was taken for an exec: %q, %+v", got, tr.Stats())
	}
	if tr.Observe(nil) != "" {
		t.Error("nil line classified")
	}
}

// A shell is a shell the way rules.Program names programs: one running a script file is that
// script.
func TestShellIsProgram(t *testing.T) {
	shells := map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "fish": true}
	for _, args := range [][]string{
		{"bash"}, {"-bash"}, {"bash", "-c", "make"}, {"bash", "-l", "-c", "make"}, {"sh", "-s", "--", "x"},
		{"sh", "./build.sh"}, {"bash", "-x", "deploy.sh", "prod"}, {"zsh", "-i"}, {"fish", "-"},
		{"python3", "-c", "x"}, {"bash-completion"}, {"ksh", "-e", "script"},
	} {
		for _, exe := range []string{"", "/usr/bin/" + args[0]} {
			wantShell := shells[rules.Program(exe, args)]
			tr := startup.New(1)
			tr.Observe(exec("p", exe, args...).event())
			got := tr.Observe(read("p", "/etc/profile").event()) == startup.Shell
			if got != wantShell {
				t.Errorf("exec %q %q: shell %v, rules.Program says %q", exe, args, got, rules.Program(exe, args))
			}
		}
	}
}

func TestEviction(t *testing.T) {
	tr := startup.New(2)
	tr.Observe(exec("a", "/bin/bash", "bash").event())
	tr.Observe(exec("b", "/bin/bash", "bash").event())
	// a was seen last: b is the least recently seen when c comes.
	if got := tr.Observe(read("a", "/etc/bash.bashrc").event()); got != startup.Shell {
		t.Fatalf("a: %q", got)
	}
	tr.Observe(exec("c", "/bin/bash", "bash").event())
	if st := tr.Stats(); st.Processes != 2 || st.Evicted != 1 {
		t.Errorf("stats %+v, want 2 processes and 1 evicted", st)
	}
	for ent, want := range map[string]startup.Kind{"a": startup.Shell, "b": "", "c": startup.Shell} {
		if got := tr.Observe(read(ent, "/etc/bash.bashrc").event()); got != want {
			t.Errorf("%s after the eviction: %q, want %q", ent, got, want)
		}
	}
}
