package main

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/sensor"
)

// Every loss kind of the outputs is counted under one output in vigil_sink_lost_total: a
// kind sinkOf does not name would be counted under "".
func TestSinkLostNamesEveryOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.Store = filepath.Join(dir, "vigil.db")
	out, err := openOutputs(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer out.close()
	for kind := range out.losses() {
		if sinkOf[kind] == "" {
			t.Errorf("loss kind %q belongs to no output in sinkOf", kind)
		}
	}
	if got := slices.Sorted(maps.Keys(out.sinkLost())); !slices.Equal(got, []string{"jsonl", "store", "untrusted_jsonl"}) {
		t.Errorf("sinkLost outputs = %q", got)
	}
}
