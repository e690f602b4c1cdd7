package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
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

// With output.sign each JSONL file gets its own key and chain, begins with a start seal, and
// the new keys' pins are logged.
func TestSignedOutputsHaveAKeyEach(t *testing.T) {
	dir := t.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.Store = ""
	cfg.Output.Sign, cfg.Output.SignKeyDir = true, filepath.Join(dir, "sign")
	var logged bytes.Buffer
	out, err := openOutputs(cfg, zerolog.New(&logged))
	if err != nil {
		t.Fatal(err)
	}
	if err := out.close(); err != nil {
		t.Fatal(err)
	}
	chains := map[sign.ChainID]bool{}
	for _, name := range []string{"events.jsonl", "untrusted.jsonl"} {
		pin, err := sign.Pin(cfg.Output.SignKeyDir, name)
		if err != nil {
			t.Fatal(err)
		}
		chains[pin.Chain] = true
		if !strings.Contains(logged.String(), pin.PublicKey()) {
			t.Errorf("the pin of %s is not logged:\n%s", name, logged.String())
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := sign.Verify([]sign.Source{{Name: name, R: f}}, sign.Trust{Root: pin.Key, Chain: &pin.Chain})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !r.Intact() || r.Seals != 2 || r.Restarts != 1 {
			t.Errorf("%s: %+v, problem %v; want a start and a stop seal", name, r, r.Problem)
		}
	}
	if len(chains) != 2 {
		t.Errorf("the two files share a chain")
	}
}
