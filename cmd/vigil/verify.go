package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

const verifyUsage = `Usage: vigil verify [--key FILE | --pubkey BASE64] [--keylog FILE] [--config FILE] FILE...
  Check the files of one signed JSONL output (output.sign), oldest first, as one chain:
    vigil verify --key events.pub events.jsonl.2 events.jsonl.1 events.jsonl
  Every line must follow the one before it (sequence number and hash), every seal must be
  signed by the key its epoch was vouched for, starting from the pinned key. The first line
  that breaks this is named (file:line) with what happened: edited, deleted, reordered,
  inserted, bad-seal (a seal edited or forged), key-chain (another key, or the seals that
  vouched for it are missing: give the earlier files or the key log).

  The pin is the first public key of the output's key log (<sign_key_dir>/<file name>.pub),
  copied off the machine when the key was made: --key FILE (that copy, or the key log) or
  --pubkey BASE64 (its key). Without either, the key log on this machine is trusted, which
  root on this machine could have replaced: the output says so. The local key log (or
  --keylog) also vouches for later keys where the files that did were rotated away; its
  entries are checked against the pin, so a forged one vouches for nothing.

  Exit status: 0 intact and sealed to the last line; 1 tampered (the line is named), or a
  file or key could not be read; 2 a mistake on the command line; 3 intact as far as it
  goes but not all covered by a seal: lines after the last seal (normal while the sensor
  writes the file, and what root could still rewrite unnoticed), a torn last line (the
  sensor died mid-write), or lines written before signing was turned on.
`

// errNotSealed is exit status 3: nothing was found tampered, but not every line is under a
// seal; the report says which.
type errNotSealed struct{ error }

func (e errNotSealed) Unwrap() error { return e.error }

func verifyCommand(args []string) error {
	return runVerify(args, os.Stdout, os.Stderr)
}

func runVerify(args []string, out, errOut io.Writer) error {
	flags := flag.NewFlagSet("verify", flag.ContinueOnError)
	flags.SetOutput(errOut)
	flags.Usage = func() { fmt.Fprint(errOut, verifyUsage); flags.PrintDefaults() }
	keyFile := flags.String("key", "", "the pinned key: a copy of the key log's first line (or the key log)")
	pubkey := flags.String("pubkey", "", "the pinned key: the base64 ed25519 public key of epoch 0")
	keyLog := flags.String("keylog", "", "a key log vouching for later keys (default: <sign_key_dir>/<file name>.pub of the configuration, when it exists)")
	configPath := flags.String("config", "", "the configuration whose output.sign_key_dir holds the key log (default: "+defaultConfigPath+" when it exists, else the embedded defaults)")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		return usageError{errors.New("verify: no file given")}
	}
	if *keyFile != "" && *pubkey != "" {
		return usageError{errors.New("verify: give --key or --pubkey, not both")}
	}
	files := flags.Args()
	name := outputName(files[len(files)-1])

	localLog, keyDir := *keyLog, ""
	if localLog == "" {
		cfg, _, err := loadConfig(*configPath, "")
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		keyDir = cfg.Output.SignKeyDir
		localLog = sign.KeyLogPath(keyDir, name)
	}
	certs, err := sign.ReadKeyLog(localLog)
	switch {
	case errors.Is(err, fs.ErrNotExist) && *keyLog == "":
		certs = nil // none on this machine: the pin and the files' own seals must do
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	}

	var trust sign.Trust
	var pinned string
	switch {
	case *pubkey != "":
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(*pubkey))
		if err != nil || len(key) != ed25519.PublicKeySize {
			return usageError{fmt.Errorf("verify: --pubkey is not a base64 ed25519 public key")}
		}
		trust.Root, pinned = key, "the key given with --pubkey"
	case *keyFile != "":
		pin, err := sign.ReadKeyLog(*keyFile)
		if err != nil {
			return fmt.Errorf("verify: --key: %w", err)
		}
		if pin[0].Epoch != 0 {
			return fmt.Errorf("verify: --key %s begins at epoch %d: the pin is the key log's first line (epoch 0)", *keyFile, pin[0].Epoch)
		}
		trust.Root, trust.Chain, pinned = pin[0].Key, &pin[0].Chain, "the key in "+*keyFile
		if keyDir != "" && (len(certs) == 0 || certs[0].Chain != pin[0].Chain) {
			// The pin is of a chain whose key was replaced since: its key log was kept
			// under its chain's name.
			if old, err := sign.ReadKeyLog(sign.OldKeyLogPath(keyDir, name, pin[0].Chain)); err == nil {
				certs = old
			}
		}
		certs = append(pin[1:], certs...)
	default:
		if len(certs) == 0 || certs[0].Epoch != 0 {
			return fmt.Errorf("verify: no pinned key (--key or --pubkey) and no key log at %s to take it from", localLog)
		}
		trust.Root, trust.Chain = certs[0].Key, &certs[0].Chain
		pinned = "this machine's key log " + localLog + " (root on this machine could have replaced it; pin the key off the machine: --key or --pubkey)"
	}
	trust.Certs = certs

	var srcs []sign.Source
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		defer fh.Close()
		srcs = append(srcs, sign.Source{Name: f, R: fh})
	}
	r, err := sign.Verify(srcs, trust)
	if err != nil {
		return err
	}
	report(out, files, pinned, &r)
	return verdict(&r)
}

// outputName is the output's file name a file belongs to: events.jsonl for events.jsonl.3.
func outputName(path string) string {
	base := filepath.Base(path)
	if i := strings.LastIndexByte(base, '.'); i > 0 && strings.Trim(base[i+1:], "0123456789") == "" && i+1 < len(base) {
		return base[:i]
	}
	return base
}

// report prints what Verify read and found.
func report(w io.Writer, files []string, pinned string, r *sign.Result) {
	fmt.Fprintf(w, "%s: %s, %s (%s)", strings.Join(files, ", "), plural(r.Lines, "line"), plural(r.Seals, "seal"), plural(r.Restarts, "start"))
	if r.Seals > 0 {
		fmt.Fprintf(w, ", chain %s", r.Chain)
	}
	if r.Last > 0 {
		fmt.Fprintf(w, ", seq %d-%d", r.FirstSeq, r.Last)
	}
	fmt.Fprintf(w, "\n  pinned: %s\n", pinned)
	if r.MidChain {
		fmt.Fprintf(w, "  begins at seq %d: the lines before are in files not given (rotated away?)\n", r.FirstSeq)
	}
	if r.Unchained > 0 {
		fmt.Fprintf(w, "  %s before the chain began (written before output.sign was on): not protected\n", plural(r.Unchained, "line"))
	}
	if r.LastSealed > 0 {
		fmt.Fprintf(w, "  last seal: %s (seq %d, %s)\n", r.LastSeal, r.LastSealed, r.LastSealTime.UTC().Format(proto.TimeLayout))
	}
	if r.Cut > 0 {
		fmt.Fprintf(w, "  %d bytes of a torn line were cut at a restart (the sensor had died mid-write; the start seal says so)\n", r.Cut)
	}
	if n := r.CertsRefused(); n > 0 {
		fmt.Fprintf(w, "  %d key log entries did not verify and were ignored: the key log was edited\n", n)
	}
	if r.Problem != nil {
		fmt.Fprintf(w, "TAMPERED %s\n", r.Problem)
		return
	}
	if r.Unsealed > 0 {
		fmt.Fprintf(w, "  unsealed: %s from %s, after the last seal: no signature covers them yet\n", plural(r.Unsealed, "line"), r.UnsealedFrom)
	}
	if r.Torn > 0 {
		fmt.Fprintf(w, "  torn: the last line, %s, has no newline (%d bytes): the sensor died mid-write\n", r.TornAt, r.Torn)
	}
	if r.Intact() {
		fmt.Fprintln(w, "OK: intact and sealed to the last line")
	} else {
		fmt.Fprintln(w, "OK as far as sealed: see above for what no seal covers")
	}
}

// verdict is the exit status's error: nil when intact and sealed to the end. A problem is
// already in the report, on standard output.
func verdict(r *sign.Result) error {
	switch {
	case r.Problem != nil:
		return printedError{fmt.Errorf("verify: %w", r.Problem)}
	case r.Lines == 0 && r.Torn == 0:
		return errNotSealed{errors.New("verify: no line to verify: empty files (a signed file begins with a seal: truncated?)")}
	case !r.Intact():
		return errNotSealed{errors.New("verify: not every line is under a seal")}
	}
	return nil
}
