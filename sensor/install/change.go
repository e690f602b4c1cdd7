package install

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"

	udiff "github.com/aymanbagabas/go-udiff"
)

// Change is one file Install writes.
type Change struct {
	// Path is the file's path on the host (without Options.Root).
	Path string
	// Mode is the file's mode once written; an existing file keeps its own.
	Mode fs.FileMode
	// Before is the file's content now, nil when it does not exist.
	Before []byte
	// After is what Install writes.
	After []byte
	// Why says in a few words what the change is for.
	Why string
	// Executable marks a program, shown in a dry run by size rather than as a diff.
	Executable bool
	// Undo is how to take Vigil's part out of the file should it change after the install;
	// nil: the whole file is Vigil's.
	Undo *Undo
}

// Render writes the changes as a dry run shows them: each file's unified diff (a program's
// size instead), then the settings kept and the files skipped.
func (r Result) Render(w io.Writer) error {
	if r.NothingChanged() {
		if _, err := fmt.Fprintln(w, "nothing to change: Vigil is installed as configured"); err != nil {
			return err
		}
	}
	for _, c := range r.Changes {
		if err := c.render(w); err != nil {
			return err
		}
	}
	for _, k := range r.Kept {
		if _, err := fmt.Fprintln(w, "kept:", k); err != nil {
			return err
		}
	}
	for _, s := range r.Skipped {
		if _, err := fmt.Fprintln(w, "skipped:", s); err != nil {
			return err
		}
	}
	for _, k := range r.SignKeys {
		if _, err := fmt.Fprintln(w, k); err != nil {
			return err
		}
	}
	return nil
}

// String says what Install did (or would do) with a signing key, and the pin to keep off the
// machine.
func (k SignKey) String() string {
	switch {
	case k.New && k.Pin.Key == nil:
		return fmt.Sprintf("# create a signing key for %s (key log %s)", k.Output, k.KeyLog)
	case k.New:
		return fmt.Sprintf("created a signing key for %s: keep its pin off this machine (vigil verify --pubkey %s), or a copy of the first line of %s",
			k.Output, k.Pin.PublicKey(), k.KeyLog)
	}
	return fmt.Sprintf("signing key for %s kept (vigil verify --pubkey %s)", k.Output, k.Pin.PublicKey())
}

func (c Change) render(w io.Writer) error {
	verb := "modify"
	if c.Before == nil {
		verb = "create"
	}
	if _, err := fmt.Fprintf(w, "# %s %s (%s): %s\n", verb, c.Path, c.Mode, c.Why); err != nil {
		return err
	}
	if c.Executable {
		_, err := fmt.Fprintf(w, "  %d bytes\n", len(c.After))
		return err
	}
	before, after := "a"+c.Path, "b"+c.Path
	if c.Before == nil {
		before = "/dev/null"
	}
	_, err := io.WriteString(w, udiff.Unified(before, after, string(c.Before), string(c.After)))
	return err
}

// changed reports whether writing after over before would change anything.
func changed(before, after []byte) bool {
	return before == nil || !bytes.Equal(before, after)
}
