package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chainLines builds a signed log with the Signer alone: a start seal, then for each count in
// groups that many lines and a seal. It returns the log, the seeds of every key that signed,
// oldest first, and the pin.
func chainLines(t testing.TB, dir string, groups ...int) (log []byte, seeds [][]byte, trust Trust) {
	t.Helper()
	now := time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)
	s, err := Open(Options{KeyDir: dir, Name: "events.jsonl", Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	seal := func(reason string) {
		seeds = append(seeds, bytes.Clone(s.keys.priv.Seed()))
		if log, err = s.Seal(log, reason); err != nil {
			t.Fatal(err)
		}
	}
	seal(ReasonStart)
	for i, n := range groups {
		for j := range n {
			start := len(log)
			log = append(log, `{"n":"`+strings.Repeat("x", i)+string(rune('a'+j))+`"}`+"\n"...)
			if log, err = s.Chain(log, start); err != nil {
				t.Fatal(err)
			}
		}
		seal(ReasonInterval)
	}
	certs, err := ReadKeyLog(KeyLogPath(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return log, seeds, Trust{Root: certs[0].Key, Chain: &certs[0].Chain}
}

func verifyBytes(t *testing.T, log []byte, trust Trust) Result {
	t.Helper()
	r, err := Verify([]Source{{Name: "events.jsonl", R: bytes.NewReader(log)}}, trust)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestKeyEvolvesAtEverySeal: after N seals the key file holds the key of epoch N only, which
// the key log vouches for, and no file in the key directory holds any earlier key.
func TestKeyEvolvesAtEverySeal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	log, seeds, trust := chainLines(t, dir, 2, 2, 2)
	if r := verifyBytes(t, log, trust); !r.Intact() || r.Seals != 4 {
		t.Fatalf("log: %+v, %v", r, r.Problem)
	}
	k, _, err := loadOrCreateKeys(dir, "events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ReadKeyLog(KeyLogPath(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if k.epoch != 4 || len(certs) != 5 || !certs[4].Key.Equal(k.priv.Public().(ed25519.PublicKey)) {
		t.Errorf("key at epoch %d, key log of %d entries: want epoch 4, the last entry its public key", k.epoch, len(certs))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for i, seed := range seeds {
			if bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(seed))) || bytes.Contains(b, seed) {
				t.Errorf("%s still holds the key of epoch %d", e.Name(), i)
			}
		}
	}
}

// TestStolenKeyCannotResealThePast is forward security: root who takes the key file now
// rewrites a line sealed earlier, recomputes the whole chain after it, and re-signs every seal
// from there with the only key it has. Whatever epoch the forged seal claims, verify refuses
// it: the old epoch's key is gone, and the current one is not vouched for that far back.
func TestStolenKeyCannotResealThePast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	log, seeds, trust := chainLines(t, dir, 2, 2)
	stolen, _, err := loadOrCreateKeys(dir, "events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(log), "\n"), "\n")
	lines[1] = strings.Replace(lines[1], `"n":"a"`, `"n":"z"`, 1) // sealed by the seal at line 4
	// forge re-chains every line and re-signs every seal after the first with key(epoch),
	// claiming that epoch.
	forge := func(key func(epoch uint64) ed25519.PrivateKey, claim func(epoch uint64) uint64) []byte {
		var forged []byte
		var h Head
		for i, l := range lines {
			link, _ := ParseLink([]byte(strings.TrimSuffix(l, "\n")))
			body := append([]byte(l[:link.Body]), "}\n"...)
			if seal, ok := parseSeal([]byte(l[:link.Body])); ok && i > 0 {
				priv := key(seal.Epoch)
				seal.Epoch = claim(seal.Epoch)
				seal.Sig = ed25519.Sign(priv, seal.message(h.Seq+1, h.Hash))
				body = seal.appendBody(nil)
			}
			start := len(forged)
			forged, h, _ = appendChained(append(forged, body...), start, h)
		}
		return forged
	}
	// The control: with the keys that really signed, the forgery passes, so the refusals
	// below come from the missing keys, not from the forging code.
	real := func(e uint64) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seeds[e]) }
	same := func(e uint64) uint64 { return e }
	if r := verifyBytes(t, forge(real, same), trust); !r.Intact() {
		t.Fatalf("forged with the real keys: %+v, %v; the forging code is wrong", r, r.Problem)
	}
	stolenKey := func(uint64) ed25519.PrivateKey { return stolen.priv }
	for name, claim := range map[string]func(uint64) uint64{
		"the seal's own epoch":   same,
		"the stolen key's epoch": func(uint64) uint64 { return stolen.epoch },
	} {
		r := verifyBytes(t, forge(stolenKey, claim), trust)
		if r.Problem == nil || r.Problem.At.Line != 4 || (r.Problem.Kind != BadSeal && r.Problem.Kind != KeyChain) {
			t.Errorf("re-sealed with the stolen key, claiming %s: %v, want line 4 refused", name, r.Problem)
		}
	}
	if r := verifyBytes(t, log, trust); !r.Intact() {
		t.Fatalf("the original log: %v", r.Problem)
	}
}

// FuzzVerify: Verify reads files root may have written anything into. It never panics, and a
// log it finds intact is one whose every line was chained and sealed: here, only the log as
// written, or a prefix of it ending at a seal.
func FuzzVerify(f *testing.F) {
	log, _, trust := chainLines(f, filepath.Join(f.TempDir(), "keys"), 2, 3)
	f.Add(log)
	lines := bytes.SplitAfter(log, []byte("\n"))
	f.Add(bytes.Join(lines[:4], nil))
	f.Add(append(bytes.Clone(log), `{"a":1}`...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Verify([]Source{{Name: "f", R: bytes.NewReader(data)}}, trust)
		if err != nil {
			t.Fatal(err)
		}
		if r.Intact() && r.Lines > 0 && !bytes.HasPrefix(log, data) {
			t.Fatalf("Verify finds intact what was not written: %q", data)
		}
	})
}
