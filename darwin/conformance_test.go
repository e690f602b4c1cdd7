package darwin

import (
	"testing"

	"github.com/vigil-sensor/vigil/sensor/sourcetest"
)

// TestConformance: the synthesized capture of a Claude Code tree passes the suite every
// source passes, but for the root's TCP connect, which EndpointSecurity cannot see.
func TestConformance(t *testing.T) {
	got, _ := replay(t, "testdata/agent-tree.jsonl")
	sourcetest.Check(t, SourceName, got, sourcetest.Tree{
		Agent:    "claude-code",
		RootPid:  900,
		RootExe:  "/Users/dev/.local/share/claude/versions/2.0.14",
		ChildExe: "/bin/bash",
		Marker:   "/Users/dev/project/marker.txt",
		Outsider: 750, // Spotlight's worker, opening the renamed marker
	})
}
