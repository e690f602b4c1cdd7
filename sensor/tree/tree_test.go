package tree

import (
	"testing"

	"github.com/vigil-sensor/vigil/sensor"
)

// installedClaude is an installed claude.exe as Catalog.ResolvePaths would report it.
var installedClaude = sensor.ExeIdentity{Dev: 8, Ino: 4242, Agent: "claude-code", Path: "/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", Size: 200 << 20}

func TestJudge(t *testing.T) {
	cat := sensor.DefaultCatalog()
	installed := map[[2]uint64]string{{installedClaude.Dev, installedClaude.Ino}: "claude-code"}
	sizes := map[int64]bool{installedClaude.Size: true}
	tests := []struct {
		name    string
		img     Image
		argv    []string
		verdict Verdict
		agent   string
	}{
		{"binary name", Image{Filename: "/usr/local/bin/codex", Path: "/usr/local/bin/codex"}, []string{"codex"}, Agent, "codex"},
		{"launcher symlink: requested name", Image{Filename: "/usr/local/bin/claude", Path: "/opt/x/claude.exe"}, nil, Agent, "claude-code"},
		{"renamed installed file: identity", Image{Filename: "/tmp/x", Path: "/tmp/x", Dev: 8, Ino: 4242}, nil, Agent, "claude-code"},
		{"run file's own name (shebang)", Image{Filename: "/tmp/run", Path: "/usr/bin/claude.exe"}, nil, Agent, "claude-code"},
		{"install path glob", Image{Filename: "/tmp/v", Path: "/root/.local/share/claude/versions/2.1.3"}, nil, Agent, "claude-code"},
		{"interpreter running an agent script", Image{Filename: "/usr/bin/node", Path: "/usr/bin/node"},
			[]string{"node", "/usr/local/lib/node_modules/@openai/codex/bin/codex.js", "exec"}, Agent, "codex"},
		{"interpreter through env (requested name)", Image{Filename: "/usr/bin/python3", Path: "/usr/bin/python3.11"},
			[]string{"python3", "-m", "aider"}, Agent, "aider"},
		{"interpreter running anything else", Image{Filename: "/usr/bin/node", Path: "/usr/bin/node"}, []string{"node", "server.js"}, NotAgent, ""},
		{"interpreter with inline code", Image{Filename: "/usr/bin/node", Path: "/usr/bin/node"}, []string{"node", "-e", "codex"}, NotAgent, ""},
		{"argv[0] is not identity", Image{Filename: "/usr/bin/sleep", Path: "/usr/bin/sleep"}, []string{"claude"}, NotAgent, ""},
		{"a file of an installed agent's size", Image{Filename: "/tmp/y", Path: "/tmp/y", Size: 200 << 20}, nil, MaybeCopy, ""},
		{"other size", Image{Filename: "/tmp/y", Path: "/tmp/y", Size: 12}, nil, NotAgent, ""},
		{"unknown image", Image{Size: -1}, []string{"claude"}, NotAgent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, agent := Judge(cat, installed, sizes, tc.img, tc.argv)
			if v != tc.verdict || agent != tc.agent {
				t.Errorf("Judge = (%v, %q), want (%v, %q)", v, agent, tc.verdict, tc.agent)
			}
		})
	}
}

func TestTrackerFollowsTrees(t *testing.T) {
	tr := New(Options{Catalog: sensor.DefaultCatalog()})
	root := Proc{Pid: 100, Start: 1e9}
	shell := Proc{Pid: 101, Start: 2e9}
	other := Proc{Pid: 200, Start: 3e9}

	if _, ok := tr.Exec(other, Image{Filename: "/usr/bin/bash", Path: "/usr/bin/bash"}, []string{"bash"}); ok {
		t.Fatal("bash outside any tree was followed")
	}
	m, ok := tr.Exec(root, Image{Filename: "/usr/local/bin/codex", Path: "/usr/local/bin/codex"}, []string{"codex"})
	if !ok || m.Root != root || m.Agent != "codex" {
		t.Fatalf("agent exec: %+v %v", m, ok)
	}
	if m, ok = tr.Fork(root, shell); !ok || m.Root != root {
		t.Fatalf("fork of a tracked parent: %+v %v", m, ok)
	}
	// An exec inside a tree stays in it, even of another agent.
	if m, ok = tr.Exec(shell, Image{Filename: "/usr/local/bin/claude", Path: "/usr/local/bin/claude"}, nil); !ok || m.Agent != "codex" || m.Root != root {
		t.Fatalf("exec inside a tree: %+v %v", m, ok)
	}
	if _, ok = tr.Fork(other, Proc{Pid: 201, Start: 4e9}); ok {
		t.Fatal("fork of an untracked parent was followed")
	}
	// The root exits; its child stays in the tree.
	if _, ok = tr.Exit(root); !ok {
		t.Fatal("root exit not reported as a member's")
	}
	if _, ok = tr.Lookup(shell); !ok {
		t.Fatal("child left the tree when its root exited")
	}
	if _, ok = tr.Lookup(root); ok {
		t.Fatal("exited root still followed")
	}
	if tr.Len() != 1 {
		t.Fatalf("Len = %d, want 1", tr.Len())
	}
}

// A pid reused after an exit the source never reported must not inherit the old tree.
func TestTrackerForgetsReusedPid(t *testing.T) {
	tr := New(Options{Catalog: sensor.DefaultCatalog()})
	tr.Exec(Proc{Pid: 100, Start: 1e9}, Image{Filename: "/usr/local/bin/codex", Path: "/usr/local/bin/codex"}, nil)
	reused := Proc{Pid: 100, Start: 9e9}
	if _, ok := tr.Lookup(reused); ok {
		t.Fatal("a later process with the root's pid is in the tree")
	}
	if _, ok := tr.Fork(reused, Proc{Pid: 300, Start: 9.5e9}); ok {
		t.Fatal("the later process's child is in the tree")
	}
	// Unknown start (0) matches: sources that cannot tell still follow.
	tr.Exec(Proc{Pid: 400}, Image{Filename: "/usr/local/bin/codex", Path: "/usr/local/bin/codex"}, nil)
	if _, ok := tr.Lookup(Proc{Pid: 400, Start: 5e9}); !ok {
		t.Fatal("an entry with unknown start did not match")
	}
}

func TestTrackerCopies(t *testing.T) {
	var asked []int
	tr := New(Options{Catalog: sensor.DefaultCatalog(), Installed: []sensor.ExeIdentity{installedClaude},
		CopyOf: func(pid int, img Image) string {
			asked = append(asked, pid)
			if img.Path == "/tmp/copy" {
				return "claude-code"
			}
			return ""
		}})
	if m, ok := tr.Exec(Proc{Pid: 1}, Image{Filename: "/tmp/copy", Path: "/tmp/copy", Size: installedClaude.Size}, nil); !ok || m.Agent != "claude-code" {
		t.Fatalf("copy of claude: %+v %v", m, ok)
	}
	if _, ok := tr.Exec(Proc{Pid: 2}, Image{Filename: "/tmp/same-size", Path: "/tmp/same-size", Size: installedClaude.Size}, nil); ok {
		t.Fatal("a different file of the same size was followed")
	}
	if _, ok := tr.Exec(Proc{Pid: 3}, Image{Filename: "/tmp/small", Path: "/tmp/small", Size: 5}, nil); ok {
		t.Fatal("a file of another size was followed")
	}
	if len(asked) != 2 {
		t.Fatalf("CopyOf asked for %v, want only the two same-size execs", asked)
	}
}

func TestTrackerSeedAndBound(t *testing.T) {
	tr := New(Options{Catalog: sensor.DefaultCatalog()})
	tr.Seed([]sensor.ProcessInfo{
		{Pid: 11, PPid: 10, StartBootNs: 6e9, RootPid: 10, Agent: "claude-code"},
		{Pid: 10, PPid: 1, StartBootNs: 5e9, RootPid: 10, Agent: "claude-code"},
	})
	m, ok := tr.Lookup(Proc{Pid: 11, Start: 6e9})
	if !ok || m.Root != (Proc{Pid: 10, Start: 5e9}) || m.Agent != "claude-code" {
		t.Fatalf("seeded child: %+v %v", m, ok)
	}
	for pid := 1000; tr.Len() < MaxProcs; pid++ {
		tr.Fork(Proc{Pid: 10, Start: 5e9}, Proc{Pid: pid})
	}
	if _, ok := tr.Fork(Proc{Pid: 10, Start: 5e9}, Proc{Pid: 999999}); ok || tr.Full() != 1 {
		t.Fatalf("fork past MaxProcs: followed %v, Full %d", ok, tr.Full())
	}
}
