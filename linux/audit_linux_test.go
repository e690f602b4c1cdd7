package linux

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/sensor"
)

// The kernel has one audit configuration: a second audit source would delete the first's
// rules as a killed run's, so it is refused, and the first keeps running.
func TestSecondAuditSourceIsRefused(t *testing.T) {
	testenv.LockAudit(t)
	opts := AuditOptions{Catalog: sensor.DefaultCatalog(), StatePath: filepath.Join(t.TempDir(), "state.json"), Log: zerolog.Nop()}
	first, err := NewAudit(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	opts.StatePath = filepath.Join(t.TempDir(), "other.json")
	if second, err := NewAudit(opts); err == nil {
		second.Close()
		t.Fatal("a second audit source started beside the first")
	} else if !strings.Contains(err.Error(), "another Vigil audit source is running") {
		t.Fatalf("refused with %v", err)
	}
	if rules, err := first.ctl.client.GetRules(); err != nil || len(rules) == 0 {
		t.Fatalf("the first source's rules after the refusal: %d, %v", len(rules), err)
	}
}
