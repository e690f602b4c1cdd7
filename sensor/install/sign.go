package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// SignKey is the signing key of one JSONL output (output.sign), made by Install when absent.
// It is not in the install state: Uninstall keeps it, because the logs it signed outlive the
// install and a reinstall then continues the same chain, verifiable with the same pin; an
// admin who wants it gone removes output.sign_key_dir by hand.
type SignKey struct {
	// Output is the JSONL file the key signs; KeyLog its key log on the host.
	Output, KeyLog string
	// Pin is the key log's first line (zero in a dry run for a key not made yet).
	Pin sign.Cert
	// New: made by this Install (or, in a dry run, to be made).
	New bool
}

// newKeys reports whether Install made (or would make) a signing key.
func (r Result) newKeys() bool {
	for _, k := range r.SignKeys {
		if k.New {
			return true
		}
	}
	return false
}

// NothingChanged reports whether Install changed no file and made no key.
func (r Result) NothingChanged() bool { return len(r.Changes) == 0 && !r.newKeys() }

// signOutputs are the JSONL files output.sign signs.
func signOutputs(o Options) []string {
	if !o.Config.Output.Sign {
		return nil
	}
	out := []string{o.Config.Output.JSONL}
	if o.Config.Output.UntrustedJSONL != "" {
		out = append(out, o.Config.Output.UntrustedJSONL)
	}
	return out
}

// planSignKeys lists the signing keys Install would make or find.
func planSignKeys(o Options, r *Result) error {
	dir := hostPath(o.Root, o.Config.Output.SignKeyDir)
	for _, path := range signOutputs(o) {
		name := filepath.Base(path)
		k := SignKey{Output: path, KeyLog: sign.KeyLogPath(o.Config.Output.SignKeyDir, name)}
		_, err := os.Lstat(sign.KeyPath(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			k.New = true
		case err != nil:
			return fmt.Errorf("install: signing key: %w", err)
		default:
			if k.Pin, err = sign.Pin(dir, name); err != nil {
				return fmt.Errorf("install: signing key: %w", err)
			}
		}
		r.SignKeys = append(r.SignKeys, k)
	}
	return nil
}

// makeSignKeys makes the keys Plan found missing, so that the first seal is signed by a key
// whose pin the admin saw at install, before the sensor ever ran.
func makeSignKeys(o Options, r *Result) error {
	dir := hostPath(o.Root, o.Config.Output.SignKeyDir)
	for i, k := range r.SignKeys {
		if !k.New {
			continue
		}
		s, err := sign.Open(sign.Options{KeyDir: dir, Name: filepath.Base(k.Output)})
		if err != nil {
			return fmt.Errorf("install: signing key for %s: %w", k.Output, err)
		}
		if r.SignKeys[i].Pin, err = s.Pin(); err != nil {
			return fmt.Errorf("install: signing key for %s: %w", k.Output, err)
		}
	}
	return nil
}
