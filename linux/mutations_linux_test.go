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
// coreutils commands use the *at calls (renameat2, unlinkat, symlinkat, linkat), rmdir its
// own, sed -i an editor's atomic save (a temp file renamed onto the target), and python the
// plain calls (rename, unlink, link, symlink), so that every exit program's argument
// positions are exercised.
func mutationScript(dir, home string) string {
	py := strings.Join([]string{
		"import os",
		"open('p1','w').write('x')",
		"os.rename('p1','p2')",
		"os.link('p2','p3')",
		"os.symlink('p2','p4')",
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
