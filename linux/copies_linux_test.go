package linux

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// A copy of an agent binary under another name (a new inode, a name the catalog does not
// know) roots that agent's tree once its hash equals the installed file's; a copy changed
// by one byte, same size, is another program and is not followed.
func TestCopiedAgentBinaryIsMatchedByHash(t *testing.T) {
	dir := canonicalDir(t)
	bash, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(dir, "acme-agent")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("acme-agent", bash)
	copied := write("renamed-tool", bash)
	// Same size, one byte of a help text changed: still runs, but not the agent's file.
	i := bytes.Index(bash, []byte("GNU long options:"))
	if i < 0 {
		t.Fatal("no help text in /bin/bash to change")
	}
	changed := bytes.Clone(bash)
	changed[i] = 'X'
	tampered := write("tampered-tool", changed)

	cat := sensor.DefaultCatalog()
	cat.Merge([]sensor.Agent{{Name: "acme", Paths: []string{installed}}}, nil)
	src, c := startSource(t, func(o *Options) { o.Catalog = cat }, nil)

	run := func(exe string) int {
		t.Helper()
		cmd := exec.Command(exe, "-c", "echo pid=$$; read -r x < /etc/hostname")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", exe, err, out)
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(string(out)), "pid="))
		if err != nil {
			t.Fatalf("%s said %q", exe, out)
		}
		return pid
	}
	bad := run(tampered)
	good := run(copied)

	agentOf := func(e *proto.Event) string {
		if e.GenAI == nil || e.GenAI.Agent == nil {
			return ""
		}
		return e.GenAI.Agent.Name
	}
	exe := c.waitFor(t, "exec of the renamed copy", 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionExec && e.Process.Pid == good
	})
	if agentOf(exe) != "acme" || exe.Vigil.Root.Pid != good || exe.Process.Executable != copied {
		t.Errorf("copy's exec: agent %q root %d executable %q, want acme, %d, %s", agentOf(exe), exe.Vigil.Root.Pid, exe.Process.Executable, good, copied)
	}
	open := c.waitFor(t, "the copy's open", 15*time.Second, func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionOpen && e.Process.Pid == good && e.File != nil && e.File.Path == "/etc/hostname"
	})
	if agentOf(open) != "acme" {
		t.Errorf("copy's open: agent %q, want acme", agentOf(open))
	}
	// Both verdicts applied (one hash at a time, in either order); then none of the tampered
	// copy's records may have come through.
	for deadline := time.Now().Add(15 * time.Second); src.copies.rejected.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range c.snapshot() {
		if e.Process != nil && e.Process.Pid == bad {
			t.Errorf("a record of the tampered copy: %s %s", e.Event.Action, agentOf(e))
		}
	}
	// rejected may count other same-size execs on the host too (copies of bash).
	if src.copies.confirmed.Load() != 1 || src.copies.rejected.Load() == 0 {
		t.Errorf("copies confirmed %d rejected %d: want the copy confirmed and the tampered one rejected", src.copies.confirmed.Load(), src.copies.rejected.Load())
	}
	if n := src.Lost()["copy_held"]; n != 0 {
		t.Errorf("%d held records lost", n)
	}
}

// The verdict itself, without the kernel: by size, then by hash, only of the file with the
// exec's identity.
func TestCopiesAgentOf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	installed := write("agent", "the agent's program")
	exeOf := func(p string) *proto.Exe {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		id, ok := sensor.FileIDOfInfo(fi)
		if !ok {
			t.Fatal("no identity")
		}
		return &proto.Exe{Dev: id.Dev, Ino: id.Ino, Ctime: id.Ctime}
	}
	c := newCopies(t.TempDir(), []sensor.ExeIdentity{{Agent: "acme", Path: installed, Size: int64(len("the agent's program"))},
		{Agent: "gone", Path: filepath.Join(dir, "missing"), Size: 5}})
	if got := c.sizes(); len(got) != 1 || got[0] != int64(len("the agent's program")) {
		t.Fatalf("sizes %v: want only the installed file's", got)
	}
	copied := write("copy", "the agent's program")
	other := exeOf(write("other", "another program!!!!"))
	for _, tc := range []struct {
		name string
		exe  *proto.Exe
		path string
		want string
	}{
		{"a copy", exeOf(copied), copied, "acme"},
		{"the installed file itself", exeOf(installed), installed, "acme"},
		{"same size, other bytes", other, filepath.Join(dir, "other"), ""},
		{"another size", exeOf(write("short", "x")), filepath.Join(dir, "short"), ""},
		{"the path now holds another file than the exec's", other, copied, ""},
		{"no identity", nil, copied, ""},
		{"nothing at the path", exeOf(copied), filepath.Join(dir, "nothing"), ""},
	} {
		if got := c.agentOf(0, tc.exe, tc.path); got != tc.want {
			t.Errorf("%s: agent %q, want %q", tc.name, got, tc.want)
		}
	}
}
