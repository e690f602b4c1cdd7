package rules

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// packFS is the starter pack, compiled into the binary so that a sensor detects something
// with no rule file installed.
//
//go:embed pack/*.yaml
var packFS embed.FS

// packPrefix starts the Source of every pack rule.
const packPrefix = "pack/"

// Pack returns the starter pack's rules, in file and line order.
func Pack() ([]Rule, error) {
	files, err := fs.Glob(packFS, "pack/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list the starter pack: %w", err)
	}
	var (
		rules []Rule
		errs  []error
	)
	for _, f := range files {
		data, err := packFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read the starter pack: %w", err)
		}
		rs, err := ParseRules(packPrefix+path.Base(f), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, rs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Ids are unique across the pack's files too.
	if _, err := Merge(nil, rules); err != nil {
		return nil, fmt.Errorf("starter pack: %w", err)
	}
	return rules, nil
}

// Load returns the compiled rules of the starter pack laid under the rule files of dir (see
// Merge); dir "" or missing adds nothing.
func Load(dir string) (*Set, error) {
	pack, err := Pack()
	if err != nil {
		return nil, err
	}
	var extra []Rule
	if dir != "" {
		if extra, err = LoadDir(dir); err != nil {
			return nil, err
		}
	}
	rules, err := Merge(pack, extra)
	if err != nil {
		return nil, err
	}
	return Compile(rules)
}
