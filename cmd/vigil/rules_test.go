package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

func TestRulesHelpIsNotAnError(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"list", "--help"}, {"lint", "-h"}, {"test", "--help"}} {
		var out, errOut bytes.Buffer
		if err := runRules(args, &out, &errOut); err != nil {
			t.Errorf("rules %v: %v", args, err)
		}
		if !strings.Contains(out.String()+errOut.String(), "vigil rules lint FILE") {
			t.Errorf("rules %v printed no usage", args)
		}
	}
	var out, errOut bytes.Buffer
	if err := runRules([]string{"frobnicate"}, &out, &errOut); !errors.As(err, new(usageError)) {
		t.Errorf("unknown subcommand: %v, want a usage error", err)
	}
}

func TestRulesLint(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("- id: local.curl\n  name: curl ran\n  severity: low\n  condition: event.action == 'exec' && event.process.program == 'curl'\n"), 0o644)
	os.WriteFile(bad, []byte("- id: local.typo\n  name: typo\n  severity: low\n  conditon: true\n- id: local.field\n  name: field\n  severity: low\n  condition: event.file.pth == 'x'\n"), 0o644)
	var out, errOut bytes.Buffer
	if err := runRules([]string{"lint", good}, &out, &errOut); err != nil {
		t.Fatalf("lint good: %v\n%s", err, out.String())
	}
	out.Reset()
	err := runRules([]string{"lint", good, bad}, &out, &errOut)
	if err == nil {
		t.Fatal("lint of a bad file succeeded")
	}
	for _, want := range []string{bad + ":1: rule local.typo: unknown key \"conditon\"", bad + ":5: rule local.field: condition:", "undefined field 'pth'"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lint output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRulesTestPrintsAlerts runs the pack over the workflow fixture, which holds a .env read
// and a curl upload of AWS credentials, and reads the alerts back.
func TestRulesTestPrintsAlerts(t *testing.T) {
	var out, errOut bytes.Buffer
	jsonl := filepath.Join("..", "..", "correlate", "workflow", "testdata", "sessions.jsonl")
	if err := runRules([]string{"test", "--rules-dir", "", "--jsonl", jsonl}, &out, &errOut); err != nil {
		t.Fatalf("rules test: %v\n%s", err, errOut.String())
	}
	events, bad, err := readTraceEvents(&out)
	if err != nil || bad.n > 0 {
		t.Fatalf("alerts do not read back: %v, %d bad", err, bad.n)
	}
	ids := map[string]bool{}
	for _, e := range events {
		if e.Event.Kind != proto.KindAlert || e.Rule == nil {
			t.Fatalf("not an alert: %+v", e.Event)
		}
		ids[e.Rule.ID] = true
	}
	if !ids["exfil.secret_passed_to_network_tool"] || !ids["cred.cloud_credentials_read"] {
		t.Errorf("alerts %v lack the curl upload of ~/.aws/credentials", ids)
	}
	if !strings.Contains(errOut.String(), "43 lines, 4 alerts") {
		t.Errorf("summary: %s", errOut.String())
	}
}
