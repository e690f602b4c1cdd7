package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// signedFixture writes lines through a signed JSONL writer, with an interval seal after every
// `every` lines: what vigil run writes with output.sign on. It returns the file, a
// configuration whose output.sign_key_dir holds its key log, and that key dir.
func signedFixture(t *testing.T, lines [][]byte, every int) (path, config, keys string) {
	t.Helper()
	dir := t.TempDir()
	keys = filepath.Join(dir, "keys")
	now := time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)
	s, err := sign.Open(sign.Options{KeyDir: keys, Name: "events.jsonl", Interval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "events.jsonl")
	w, err := jsonl.Open(jsonl.Options{Path: path, Sign: s})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if err := w.WriteLine(nil, l); err != nil {
			t.Fatal(err)
		}
		if i%every == every-1 {
			now = now.Add(time.Minute)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(config, []byte("output:\n  sign_key_dir: "+keys+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, config, keys
}

func fixtureLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimSpace(b), []byte("\n"))
	lines[len(lines)-1] = append(lines[len(lines)-1], '\n')
	return lines
}

func TestVerifyCommandExitStatus(t *testing.T) {
	path, config, keys := signedFixture(t, fixtureLines(t, traceFixture), 5)
	pin, err := sign.Pin(keys, "events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(t.TempDir(), "events.pub")
	keyLog, err := os.ReadFile(sign.KeyLogPath(keys, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	first := keyLog[:bytes.IndexByte(keyLog, '\n')+1]
	if err := os.WriteFile(pinFile, first, 0o600); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.SplitAfter(string(orig), "\n")
	ls = ls[:len(ls)-1]
	tampered := func(f func([]string) []string) string {
		p := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(p, []byte(strings.Join(f(append([]string(nil), ls...)), "")), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	edited := tampered(func(ls []string) []string { ls[3] = strings.Replace(ls[3], `"pid":`, `"pid":1`, 1); return ls })
	truncated := tampered(func(ls []string) []string { return ls[:len(ls)-3] })

	for _, c := range []struct {
		name string
		args []string
		exit int
		want string
	}{
		{"local key log", []string{"--config", config, path}, 0, "pinned: this machine's key log"},
		{"pinned file", []string{"--config", config, "--key", pinFile, path}, 0, "OK: intact and sealed to the last line"},
		{"pinned public key", []string{"--keylog", pinFile, "--pubkey", pin.PublicKey(), path}, 0, "pinned: the key given with --pubkey"},
		{"edited line", []string{"--config", config, "--key", pinFile, edited}, 1, "TAMPERED " + edited + ":4: edited"},
		{"unsealed tail", []string{"--config", config, "--key", pinFile, truncated}, 3, "unsealed: 1 line from " + truncated + ":50,"},
		{"another key", []string{"--config", config, "--pubkey", base64.StdEncoding.EncodeToString(other), path}, 1, "TAMPERED " + path + ":1: bad-seal"},
		{"no file", []string{"--config", config}, 2, ""},
		{"both pins", []string{"--key", pinFile, "--pubkey", pin.PublicKey(), path}, 2, ""},
		{"bad public key", []string{"--pubkey", "bm90IGEga2V5", path}, 2, ""},
		{"help", []string{"--help"}, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runVerify(c.args, &out, &errOut)
			if got := exitStatus(err); got != c.exit {
				t.Errorf("exit %d (%v), want %d\n%s%s", got, err, c.exit, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out.String())
			}
			if c.name == "help" && (!errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "Exit status: 0 intact")) {
				t.Errorf("--help: %v\n%s", err, errOut.String())
			}
		})
	}
}

func TestOutputName(t *testing.T) {
	for in, want := range map[string]string{
		"/var/log/vigil/events.jsonl":   "events.jsonl",
		"/var/log/vigil/events.jsonl.3": "events.jsonl",
		"untrusted.jsonl.12":            "untrusted.jsonl",
		"events.":                       "events.",
	} {
		if got := outputName(in); got != want {
			t.Errorf("outputName(%q) = %q, want %q", in, got, want)
		}
	}
}

// vigil trace reads a signed file as the plain one: the chain fields are ignored and the seal
// lines skipped. The store's fixture has late binding records; a seal after every line puts
// one between each binding record and the line it binds.
func TestTraceReadsASignedFile(t *testing.T) {
	lines := fixtureLines(t, "../../sensor/sink/store/testdata/agents.jsonl")
	signed, _, _ := signedFixture(t, lines, 1)
	plain := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(plain, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	var outs [2]string
	for i, p := range []string{plain, signed} {
		outs[i], _ = captureStdio(t, func() {
			if err := traceCommand([]string{"--jsonl", p, "--format", "json"}); err != nil {
				t.Errorf("trace %s: %v", p, err)
			}
		})
	}
	if outs[0] == "" || outs[0] != outs[1] {
		t.Errorf("trace of the signed file differs from the plain one's:\n%s\n---\n%s", outs[1], outs[0])
	}
	b, _ := os.ReadFile(signed)
	if n := bytes.Count(b, []byte(`"action":"seal"`)); n < 5 {
		t.Errorf("%d seals in the signed file", n)
	}
}

// Files whose oldest part was rotated away verify through the key log; after the key was
// replaced (a new chain), the old chain's key log kept under its name is found from the pin.
func TestVerifyCommandFindsTheKeptKeyLog(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	now := time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)
	s, err := sign.Open(sign.Options{KeyDir: keys, Name: "events.jsonl", Interval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	w, err := jsonl.Open(jsonl.Options{Path: path, Sign: s, MaxSizeBytes: 8 << 10, MaxFiles: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range fixtureLines(t, "../../sensor/sink/store/testdata/agents.jsonl") {
		if err := w.WriteLine(nil, l); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(t.TempDir(), "events.pub")
	keyLog, err := os.ReadFile(sign.KeyLogPath(keys, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pinFile, keyLog[:bytes.IndexByte(keyLog, '\n')+1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".2"); err != nil {
		t.Fatalf("want at least two rotations: %v", err)
	}
	newest := []string{path + ".1", path} // .2 and older rotated away
	config := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(config, []byte("output:\n  sign_key_dir: "+keys+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (int, string) {
		var out, errOut bytes.Buffer
		err := runVerify(append([]string{"--config", config, "--key", pinFile}, newest...), &out, &errOut)
		return exitStatus(err), out.String()
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "begins at seq") {
		t.Fatalf("newest files with the key log: exit %d\n%s", code, out)
	}
	// The key is replaced: the key log of the pin's chain is kept under its name.
	if err := os.Remove(sign.KeyPath(keys, "events.jsonl")); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Open(sign.Options{KeyDir: keys, Name: "events.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != 0 {
		t.Errorf("after the key was replaced: exit %d\n%s", code, out)
	}
}
