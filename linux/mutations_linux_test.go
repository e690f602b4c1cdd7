package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/proto"
)

// mutationScript is what a tool shell does to files in dir (its working directory): the
// coreutils commands use the *at calls (renameat2, unlinkat, symlinkat, linkat, fchmodat,
// fchownat, ftruncate), sed -i an editor's atomic save (a temp file renamed onto the target),
// and python the plain calls (rename, unlink, link, symlink, chmod, fchmod, fchmodat2, chown,
// lchown, truncate), so that every exit program's argument positions are exercised.
func mutationScript(dir, home string) string {
	py := strings.Join([]string{
		"import os",
		"open('p1','w').write('x')",
		"os.rename('p1','p2')",
		"os.link('p2','p3')",
		"os.symlink('p2','p4')",
		"os.chmod('p2',0o2750)",
		"fd=os.open('p2',os.O_RDONLY); os.fchmod(fd,0o640); os.close(fd)",
		"import ctypes; ctypes.CDLL(None).syscall(452,-100,b'p2',0o644,0x100)", // fchmodat2 (ENOSYS before 6.6)
		"os.chown('p2',-1,4321)",
		"os.lchown('p4',2345,-1)",
		"os.truncate('p2',7)",
		"os.unlink('p3')",
	}, "; ")
	return strings.Join([]string{
		"set -e",
		"echo x > payload",
		"mv payload " + filepath.Join(home, ".profile"),
		"echo x > gone; rm gone",
		"rm missing 2>/dev/null || true",
		"mkdir d; rmdir d",
		"ln -s /etc link",
		"echo x > target; ln target hard",
		"echo x > suid; chmod u+s suid",
		"chown 1234:5678 suid",
		"echo hello > trunc; truncate -s 0 trunc",
		"echo x > edited; sed -i s/x/y/ edited",
		"python3 -c \"" + py + "\"",
	}, "\n")
}

func TestFileMutationsAreReported(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed for the plain mutation syscalls: %v", err)
	}
	_, c := startSource(t, nil, nil)
	shell, _ := agentShell(t, "claude")
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}

	// The outsider does the same in its own directory first: nothing of it may appear.
	outDir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outDir, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := exec.Command("/bin/bash", "-c", mutationScript(outDir, filepath.Join(outDir, "home")))
	out.Dir = outDir
	if b, err := out.CombinedOutput(); err != nil {
		t.Fatalf("outsider: %v\n%s", err, b)
	}

	cmd := exec.Command(shell, "-c", mutationScript(dir, home))
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("agent tree: %v\n%s", err, b)
	}
	root := cmd.Process.Pid
	p := func(name string) string { return filepath.Join(dir, name) }

	type want struct {
		what, action, path, source string
		errno                      int
		check                      func(e *proto.Event) string
	}
	none := func(*proto.Event) string { return "" }
	for _, w := range []want{
		{"mv payload ~/.profile: renameat2, source and destination", proto.ActionRename, filepath.Join(home, ".profile"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.Vigil.Rename == nil || e.Vigil.Rename.Source != p("payload") {
					return fmt.Sprintf("rename source %+v, want %s", e.Vigil.Rename, p("payload"))
				}
				return ""
			}},
		{"rm: unlinkat", proto.ActionUnlink, p("gone"), proto.PathSourceCaller, 0, none},
		{"rm of a missing file: ENOENT", proto.ActionUnlink, p("missing"), proto.PathSourceCaller, int(unix.ENOENT), none},
		{"rmdir", proto.ActionRmdir, p("d"), proto.PathSourceCaller, 0, none},
		{"ln -s /etc link: symlinkat, the target as given", proto.ActionSymlink, p("link"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.TargetPath != "/etc" {
					return fmt.Sprintf("target %q, want /etc", e.File.TargetPath)
				}
				return ""
			}},
		{"ln target hard: linkat", proto.ActionLink, p("hard"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.TargetPath != p("target") {
					return fmt.Sprintf("target %q, want %s", e.File.TargetPath, p("target"))
				}
				return ""
			}},
		{"chmod u+s: fchmodat, setuid flagged", proto.ActionChmod, p("suid"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.Mode != "4644" || !e.Vigil.Setid {
					return fmt.Sprintf("mode %q setid %v, want 4644 true", e.File.Mode, e.Vigil.Setid)
				}
				return ""
			}},
		{"chown 1234:5678: fchownat", proto.ActionChown, p("suid"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.UID != "1234" || e.File.GID != "5678" {
					return fmt.Sprintf("uid %q gid %q, want 1234 5678", e.File.UID, e.File.GID)
				}
				return ""
			}},
		{"truncate -s 0: ftruncate, the file walked by the kernel", proto.ActionTruncate, p("trunc"), proto.PathSourceKernel, 0,
			func(e *proto.Event) string {
				if e.File.Size == nil || *e.File.Size != 0 {
					return fmt.Sprintf("size %v, want 0", e.File.Size)
				}
				return ""
			}},
		{"sed -i: its temp file renamed onto the target", proto.ActionRename, p("edited"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.Vigil.Rename == nil || !strings.HasPrefix(e.Vigil.Rename.Source, p("sed")) {
					return fmt.Sprintf("rename source %+v, want %s…", e.Vigil.Rename, p("sed"))
				}
				return ""
			}},
		{"python os.rename: rename(2)", proto.ActionRename, p("p2"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.Vigil.Rename == nil || e.Vigil.Rename.Source != p("p1") {
					return fmt.Sprintf("rename source %+v, want %s", e.Vigil.Rename, p("p1"))
				}
				return ""
			}},
		{"python os.link", proto.ActionLink, p("p3"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.TargetPath != p("p2") {
					return fmt.Sprintf("target %q, want %s", e.File.TargetPath, p("p2"))
				}
				return ""
			}},
		{"python os.symlink: symlink(2), a relative target kept as given", proto.ActionSymlink, p("p4"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.TargetPath != "p2" {
					return fmt.Sprintf("target %q, want p2", e.File.TargetPath)
				}
				return ""
			}},
		{"python os.chmod: chmod(2), setgid flagged", proto.ActionChmod, p("p2"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.Mode != "2750" || !e.Vigil.Setid {
					return fmt.Sprintf("mode %q setid %v, want 2750 true", e.File.Mode, e.Vigil.Setid)
				}
				return ""
			}},
		{"python os.fchmod: the file walked by the kernel", proto.ActionChmod, p("p2"), proto.PathSourceKernel, 0,
			func(e *proto.Event) string {
				if e.File.Mode != "0640" || e.Vigil.Setid {
					return fmt.Sprintf("mode %q setid %v, want 0640 false", e.File.Mode, e.Vigil.Setid)
				}
				return ""
			}},
		{"fchmodat2 with AT_SYMLINK_NOFOLLOW (Linux 6.6+)", proto.ActionChmod, p("p2"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if !syscallTracepointExists("sys_exit_fchmodat2") {
					return "" // the kernel has no fchmodat2: any chmod of p2 will do
				}
				if e.File.Mode != "0644" || e.File.Flags != "AT_SYMLINK_NOFOLLOW" {
					return fmt.Sprintf("mode %q flags %q, want 0644 AT_SYMLINK_NOFOLLOW", e.File.Mode, e.File.Flags)
				}
				return ""
			}},
		{"python os.chown: chown(2), owner unchanged", proto.ActionChown, p("p2"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.UID != "" || e.File.GID != "4321" {
					return fmt.Sprintf("uid %q gid %q, want (none) 4321", e.File.UID, e.File.GID)
				}
				return ""
			}},
		{"python os.lchown", proto.ActionChown, p("p4"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.UID != "2345" || e.File.GID != "" || e.File.Flags != "AT_SYMLINK_NOFOLLOW" {
					return fmt.Sprintf("uid %q gid %q flags %q, want 2345 (none) AT_SYMLINK_NOFOLLOW", e.File.UID, e.File.GID, e.File.Flags)
				}
				return ""
			}},
		{"python os.truncate: truncate(2)", proto.ActionTruncate, p("p2"), proto.PathSourceCaller, 0,
			func(e *proto.Event) string {
				if e.File.Size == nil || *e.File.Size != 7 {
					return fmt.Sprintf("size %v, want 7", e.File.Size)
				}
				return ""
			}},
		{"python os.unlink: unlink(2)", proto.ActionUnlink, p("p3"), proto.PathSourceCaller, 0, none},
	} {
		e := c.waitFor(t, w.what, 15*time.Second, func(e *proto.Event) bool {
			return e.Event.Action == w.action && e.File != nil && e.File.Path == w.path && e.Vigil.PathSource == w.source &&
				w.check(e) == "" && e.Vigil.Root != nil && e.Vigil.Root.Pid == root
		})
		outcome := proto.OutcomeSuccess
		if w.errno != 0 {
			outcome = proto.OutcomeFailure
		}
		if e.Event.Outcome != outcome || e.Vigil.Errno != w.errno || e.Event.Category != "file" || len(e.Event.Type) != 1 {
			t.Errorf("%s: outcome %s errno %d category %q type %v; want %s %d file", w.what, e.Event.Outcome, e.Vigil.Errno,
				e.Event.Category, e.Event.Type, outcome, w.errno)
		}
	}
	for _, e := range c.snapshot() {
		if e.File == nil {
			continue
		}
		paths := []string{e.File.Path, e.File.TargetPath}
		if e.Vigil.Rename != nil {
			paths = append(paths, e.Vigil.Rename.Source)
		}
		for _, path := range paths {
			if strings.HasPrefix(path, outDir) {
				t.Errorf("the outsider's %s of %s was recorded", e.Event.Action, path)
			}
		}
	}
}
