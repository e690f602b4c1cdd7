package floor

import (
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/linux"
)

// TestAttach loads and attaches the floor for real; it needs root and a BPF-capable kernel.
func TestAttach(t *testing.T) {
	testenv.RequireRoot(t, "attaching eBPF programs")
	c, err := Attach()
	if err != nil {
		t.Fatal(err)
	}
	// Every hook Vigil attaches: four tp_btf, the syscall exits and the cgroup hooks.
	if got, want := len(c.(*attached).links), 4+len(linux.SyscallTracepoints())+len(linux.EgressAttachTypes()); got != want {
		t.Errorf("%d hooks attached, want %d", got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
