package install

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Undo is Vigil's part of an agent's file, kept in the install state: what Uninstall takes
// out of the file once someone else has changed it too.
type Undo struct {
	// Set are the JSON values Vigil set, each taken out if it still has Vigil's value.
	Set []Leaf `json:"set,omitempty"`
	// Created are the JSON objects and hook lists Vigil created, taken out when left empty.
	Created [][]string `json:"created,omitempty"`
	// HookCommand is the command of the hook entries Vigil added; every entry running it is
	// taken out.
	HookCommand string `json:"hook_command,omitempty"`
	// Appended is the text Vigil appended to a TOML file, taken out where it is found.
	Appended string `json:"appended,omitempty"`
}

// Leaf is one JSON value by its key path.
type Leaf struct {
	Path  []string `json:"path"`
	Value any      `json:"value"`
}

// merge joins what a later install added to the same file.
func (u *Undo) merge(later *Undo) *Undo {
	if u == nil {
		return later
	}
	if later == nil {
		return u
	}
	out := *u
	for _, l := range later.Set {
		if !slices.ContainsFunc(out.Set, func(o Leaf) bool { return slices.Equal(o.Path, l.Path) }) {
			out.Set = append(out.Set, l)
		}
	}
	for _, p := range later.Created {
		if !slices.ContainsFunc(out.Created, func(o []string) bool { return slices.Equal(o, p) }) {
			out.Created = append(out.Created, p)
		}
	}
	if later.HookCommand != "" {
		out.HookCommand = later.HookCommand
	}
	if later.Appended != "" {
		out.Appended = later.Appended
	}
	return &out
}

// remove takes Vigil's part out of the file's current content.
func (u *Undo) remove(cur []byte) ([]byte, error) {
	if u.Appended != "" {
		if !bytes.Contains(cur, []byte(u.Appended)) {
			return nil, errors.New("the block Vigil appended is no longer there as written")
		}
		return bytes.Replace(cur, []byte(u.Appended), nil, 1), nil
	}
	doc, err := parseJSONObject(cur)
	if err != nil {
		return nil, err
	}
	for _, l := range u.Set {
		parent, ok := lookupObject(doc, l.Path[:len(l.Path)-1])
		key := l.Path[len(l.Path)-1]
		if ok && sameJSON(parent[key], l.Value) {
			delete(parent, key)
		}
	}
	if u.HookCommand != "" {
		removeHookEntries(doc, u.HookCommand)
	}
	// Deepest first, so a parent emptied by its child's removal goes too.
	created := slices.Clone(u.Created)
	slices.SortFunc(created, func(a, b []string) int { return len(b) - len(a) })
	for _, p := range created {
		parent, ok := lookupObject(doc, p[:len(p)-1])
		if !ok {
			continue
		}
		switch v := parent[p[len(p)-1]].(type) {
		case map[string]any:
			if len(v) == 0 {
				delete(parent, p[len(p)-1])
			}
		case []any:
			if len(v) == 0 {
				delete(parent, p[len(p)-1])
			}
		}
	}
	out, err := encodeJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return out, nil
}
