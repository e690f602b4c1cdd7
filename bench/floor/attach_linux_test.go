package floor

import (
	"os"
	"testing"
)

// TestAttach loads and attaches the floor for real; it needs root and a BPF-capable kernel.
func TestAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("attaching eBPF programs needs root")
	}
	c, err := Attach()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
