package install

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// With output.sign on, a dry run says which keys it would make and makes none; Install makes
// one per JSONL file (0700 directory, 0600 key, 0644 key log, /var/lib/vigil left 0755 for
// the hook's undelivered directory) and prints their pins; a second Install keeps them;
// Uninstall keeps them too.
func TestInstallMakesSignKeysAndUninstallKeepsThem(t *testing.T) {
	root := t.TempDir()
	o := testOptions(t, root)
	o.Config.Output.Sign = true
	keyDir := filepath.Join(root, o.Config.Output.SignKeyDir)

	r, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Render(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "# create a signing key for /var/log/vigil/events.jsonl") ||
		!strings.Contains(out.String(), "# create a signing key for /var/log/vigil/untrusted.jsonl") {
		t.Errorf("dry run:\n%s", out.String())
	}
	if _, err := os.Stat(keyDir); !os.IsNotExist(err) {
		t.Errorf("the dry run made %s: %v", keyDir, err)
	}

	r, err = Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.SignKeys) != 2 {
		t.Fatalf("%d signing keys, want 2: %+v", len(r.SignKeys), r.SignKeys)
	}
	for _, k := range r.SignKeys {
		name := filepath.Base(k.Output)
		pin, err := sign.Pin(keyDir, name)
		if err != nil {
			t.Fatal(err)
		}
		if !k.New || !pin.Key.Equal(k.Pin.Key) || !strings.Contains(k.String(), pin.PublicKey()) {
			t.Errorf("%s: %+v, want new with the key log's pin %s", k.Output, k, pin.PublicKey())
		}
		for p, want := range map[string]os.FileMode{sign.KeyPath(keyDir, name): 0o600, sign.KeyLogPath(keyDir, name): 0o644} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: %v %v, want %v", p, fi, err, want)
			}
		}
	}
	for p, want := range map[string]os.FileMode{keyDir: 0o700, filepath.Dir(keyDir): 0o755} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, fi, err, want)
		}
	}

	again, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if !again.NothingChanged() || again.SignKeys[0].New || !again.SignKeys[0].Pin.Key.Equal(r.SignKeys[0].Pin.Key) {
		t.Errorf("second install: %+v, want the same keys kept", again.SignKeys)
	}
	if _, err := Uninstall(root); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Pin(keyDir, "events.jsonl"); err != nil {
		t.Errorf("uninstall removed the signing key: %v", err)
	}
}
