package darwin

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// TestSeedTrees: a snapshot's agent trees are found whatever order sysctl lists them in;
// a nested agent stays in the outer tree; the sensor's own subtree and unrelated processes
// are not followed; and the tracker then follows the seeded trees' live events.
func TestSeedTrees(t *testing.T) {
	const self = 700
	procs := []procSnap{
		{Pid: 1, PPid: 0, Start: 1_000, Executable: "/sbin/launchd", Args: []string{"/sbin/launchd"}},
		{Pid: 910, PPid: 901, Start: 5_000_000, Executable: "/usr/local/bin/codex", Args: []string{"codex"}}, // nested agent
		{Pid: 812, PPid: 1, Start: 2_000_000, Executable: "/bin/zsh", Args: []string{"-zsh"}},
		{Pid: 900, PPid: 812, Start: 3_000_000, Executable: "/Users/dev/.local/share/claude/versions/2.0.14", Args: []string{"claude"}},
		{Pid: 901, PPid: 900, Start: 4_000_000, Executable: "/bin/bash", Args: []string{"/bin/bash", "-c", "codex"}},
		{Pid: self, PPid: 900, Start: 3_500_000, Executable: "/usr/local/bin/vigil", Args: []string{"vigil", "run"}},
		{Pid: 701, PPid: self, Start: 3_600_000, Executable: "/usr/bin/eslogger", Args: []string{"eslogger"}},
		{Pid: 702, PPid: 701, Start: 3_700_000, Executable: "/usr/local/bin/claude", Args: []string{"claude"}},
		{Pid: 950, PPid: 812, Start: 6_000_000, Executable: "/usr/bin/git", Args: []string{"git", "status"}},
	}
	// 900 is claude by its install path alone (the native installer names the file by version).
	tr := tree.New(tree.Options{Catalog: sensor.DefaultCatalog()})
	seeded := seedTrees(tr, procs, self)
	var got []string
	for _, p := range seeded {
		got = append(got, fmt.Sprintf("%d/%d/%s", p.Pid, p.RootPid, p.Agent))
	}
	if want := []string{"900/900/claude-code", "901/900/claude-code", "910/900/claude-code"}; !slices.Equal(got, want) {
		t.Errorf("seeded %v, want %v", got, want)
	}
	if m, ok := tr.Lookup(tree.Proc{Pid: 901, Start: 4_000_000}); !ok || m.Root.Pid != 900 || m.Root.Start != 3_000_000 {
		t.Errorf("901 followed as %+v %v", m, ok)
	}
	if m, ok := tr.Fork(tree.Proc{Pid: 910, Start: 5_000_000}, tree.Proc{Pid: 920, Start: 7_000_000}); !ok || m.Agent != "claude-code" {
		t.Errorf("a seeded process's fork: %+v %v", m, ok)
	}
}

func TestParseProcArgs(t *testing.T) {
	blob := func(argc uint32, rest string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, argc)
		return append(b, rest...)
	}
	cases := []struct {
		name string
		in   []byte
		exe  string
		args []string
		bad  bool
	}{
		{"padded exec path, env never read", blob(3, "/bin/bash\x00\x00\x00\x00/bin/bash\x00-c\x00echo hi\x00SECRET=x\x00"), "/bin/bash", []string{"/bin/bash", "-c", "echo hi"}, false},
		{"empty argument", blob(2, "/bin/echo\x00echo\x00\x00HOME=/x\x00"), "/bin/echo", []string{"echo", ""}, false},
		{"no arguments", blob(0, "/sbin/launchd\x00"), "/sbin/launchd", []string{}, false},
		{"short", []byte{1, 0}, "", nil, true},
		{"exec path not terminated", blob(1, "/bin/bash"), "", nil, true},
		{"argc past the buffer", blob(5, "/bin/x\x00a\x00"), "", nil, true},
		{"argument not terminated", blob(2, "/bin/x\x00a\x00b"), "", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exe, args, err := parseProcArgs(c.in)
			if (err != nil) != c.bad || exe != c.exe || !slices.Equal(args, c.args) {
				t.Errorf("got %q %q %v", exe, args, err)
			}
		})
	}
}

// FuzzProcArgs: any buffer parses or fails; argv never holds more than argc strings.
func FuzzProcArgs(f *testing.F) {
	f.Add(binary.LittleEndian.AppendUint32(nil, 2))
	f.Add(append(binary.LittleEndian.AppendUint32(nil, 2), "/bin/sh\x00\x00sh\x00-c\x00A=B\x00"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, args, err := parseProcArgs(b)
		if err == nil && len(b) >= 4 && len(args) != int(binary.LittleEndian.Uint32(b)) {
			t.Fatalf("%d args for argc %d", len(args), binary.LittleEndian.Uint32(b))
		}
	})
}
