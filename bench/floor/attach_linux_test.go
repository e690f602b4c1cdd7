package floor

import (
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

// TestAttach loads and attaches the floor for real; it needs root and a BPF-capable kernel.
func TestAttach(t *testing.T) {
	testenv.RequireRoot(t, "attaching eBPF programs")
	c, err := Attach()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
