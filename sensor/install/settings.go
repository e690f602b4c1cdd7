package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// jsonEdit is what Vigil adds to one agent's JSON settings file: values where the file has
// none, and one hook entry per event beside whatever entries are there.
type jsonEdit struct {
	set []Leaf
	// hookCommand identifies Vigil's entries: an event that already has an entry running it
	// gets no second one.
	hookCommand string
	hooks       map[string]any // event name → the entry to add
}

// apply merges the edit into before (nil: a new file). It returns the file's new content
// (before itself when nothing was added), what to undo, and the admin's settings it kept.
func (e jsonEdit) apply(path string, before []byte) ([]byte, *Undo, []string, error) {
	doc, err := parseJSONObject(before)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	undo := &Undo{}
	var kept []string
	for _, l := range e.set {
		parent, created, conflict := makeObject(doc, l.Path[:len(l.Path)-1])
		if conflict != "" {
			kept = append(kept, fmt.Sprintf("%s: %s is not an object, so %s was not set", path, conflict, strings.Join(l.Path, ".")))
			continue
		}
		undo.Created = append(undo.Created, created...)
		key := l.Path[len(l.Path)-1]
		old, present := parent[key]
		switch {
		case !present:
			parent[key] = l.Value
			undo.Set = append(undo.Set, l)
		case !sameJSON(old, l.Value):
			kept = append(kept, fmt.Sprintf("%s: kept %s = %s (Vigil would set %s)", path, strings.Join(l.Path, "."), compactJSON(old), compactJSON(l.Value)))
		}
	}
	if len(e.hooks) > 0 {
		hooks, created, conflict := makeObject(doc, []string{"hooks"})
		if conflict != "" {
			kept = append(kept, fmt.Sprintf("%s: hooks is not an object, so no hook was added", path))
		} else {
			undo.Created = append(undo.Created, created...)
			for _, event := range slices.Sorted(maps.Keys(e.hooks)) {
				entries, isList := hooks[event].([]any)
				if hooks[event] != nil && !isList {
					kept = append(kept, fmt.Sprintf("%s: hooks.%s is not a list, so Vigil's hook was not added", path, event))
					continue
				}
				if slices.ContainsFunc(entries, func(v any) bool { return runsCommand(v, e.hookCommand) }) {
					continue
				}
				if hooks[event] == nil {
					undo.Created = append(undo.Created, []string{"hooks", event})
				}
				hooks[event] = append(entries, e.hooks[event])
				undo.HookCommand = e.hookCommand
			}
		}
	}
	if len(undo.Set) == 0 && undo.HookCommand == "" {
		return before, nil, kept, nil
	}
	after, err := encodeJSON(doc)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: encode: %w", path, err)
	}
	return after, undo, kept, nil
}

// parseJSONObject decodes a settings file; an empty one is an empty object. Numbers stay as
// written (json.Number), so merging never rounds an admin's value.
func parseJSONObject(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if doc == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a JSON object: data after the object")
	}
	return doc, nil
}

// encodeJSON writes a settings file: two-space indentation, < > & as they are.
func encodeJSON(doc map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// makeObject returns the object at path, creating what is missing (reported, for Undo), or
// the first key on the way that holds something else.
func makeObject(doc map[string]any, path []string) (obj map[string]any, created [][]string, conflict string) {
	obj = doc
	for i, k := range path {
		switch v := obj[k].(type) {
		case map[string]any:
			obj = v
		case nil:
			if _, present := obj[k]; present {
				return nil, nil, strings.Join(path[:i+1], ".")
			}
			next := map[string]any{}
			obj[k] = next
			obj = next
			created = append(created, slices.Clone(path[:i+1]))
		default:
			return nil, nil, strings.Join(path[:i+1], ".")
		}
	}
	return obj, created, ""
}

// lookupObject returns the object at path, if there is one.
func lookupObject(doc map[string]any, path []string) (map[string]any, bool) {
	obj := doc
	for _, k := range path {
		next, ok := obj[k].(map[string]any)
		if !ok {
			return nil, false
		}
		obj = next
	}
	return obj, true
}

// runsCommand reports whether a hook entry, in any agent's shape, runs command.
func runsCommand(v any, command string) bool {
	switch v := v.(type) {
	case map[string]any:
		if c, ok := v["command"].(string); ok && c == command {
			return true
		}
		for _, child := range v {
			if runsCommand(child, command) {
				return true
			}
		}
	case []any:
		for _, child := range v {
			if runsCommand(child, command) {
				return true
			}
		}
	}
	return false
}

// removeHookEntries takes every entry running command out of the hooks object.
func removeHookEntries(doc map[string]any, command string) {
	hooks, ok := doc["hooks"].(map[string]any)
	if !ok {
		return
	}
	for event, v := range hooks {
		entries, ok := v.([]any)
		if !ok {
			continue
		}
		hooks[event] = slices.DeleteFunc(entries, func(e any) bool { return runsCommand(e, command) })
	}
}

// sameJSON compares two decoded values by their encoding, so 1 written as json.Number and
// 1 as float64 (from the install state) are equal.
func sameJSON(a, b any) bool {
	ea, errA := json.Marshal(a)
	eb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
