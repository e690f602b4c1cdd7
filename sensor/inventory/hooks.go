package inventory

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/vigil-sensor/vigil/proto"
)

// maxHookEvents bounds the hook events kept of one file.
const maxHookEvents = 64

// hookGroup is one entry of a hook event's list, in the two shapes agents use: Claude Code,
// Codex and Gemini CLI nest commands in matcher groups ({"matcher": …, "hooks": [{"type":
// "command", "command": …}]}); Cursor lists commands directly ({"command": …}).
type hookGroup struct {
	Command string `json:"command"`
	Hooks   []struct {
		Command string `json:"command"`
	} `json:"hooks"`
}

// parseHooks reads a "hooks" object: the events with at least one command, and those among
// them with a `vigil hook` command. A member that is not a list of hook groups is not an event
// (Gemini CLI keeps its "disabled" list of names there) and is skipped.
func parseHooks(raw json.RawMessage) (*proto.InventoryHooks, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(raw, &events); err != nil {
		return nil, fmt.Errorf("hooks: %w", err)
	}
	h := &proto.InventoryHooks{}
	for event, v := range events {
		var groups []hookGroup
		if json.Unmarshal(v, &groups) != nil {
			continue
		}
		configured, vigil := false, false
		for _, g := range groups {
			commands := []string{g.Command}
			for _, c := range g.Hooks {
				commands = append(commands, c.Command)
			}
			for _, c := range commands {
				configured = configured || c != ""
				vigil = vigil || isVigilHook(c)
			}
		}
		if configured {
			h.Events = append(h.Events, cut(event, maxNameBytes))
		}
		if vigil {
			h.VigilEvents = append(h.VigilEvents, cut(event, maxNameBytes))
		}
	}
	slices.Sort(h.Events)
	slices.Sort(h.VigilEvents)
	h.Events = h.Events[:min(len(h.Events), maxHookEvents)]
	h.VigilEvents = h.VigilEvents[:min(len(h.VigilEvents), maxHookEvents)]
	return h, nil
}

// readHooksFile reads a hooks.json ({"hooks": {…}}: Codex's, Cursor's).
func readHooksFile(s *scanner, w where, b []byte) ([]string, error) {
	var f struct {
		Hooks json.RawMessage `json:"hooks"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	hooks, err := parseHooks(f.Hooks)
	if err != nil {
		return nil, err
	}
	c := w.config()
	c.Hooks = orEmpty(hooks)
	s.r.Configs = append(s.r.Configs, c)
	return nil, nil
}

// orEmpty returns h, or an empty value for a file with no hooks: the row then says "no
// hooks" rather than "cannot hold hooks".
func orEmpty(h *proto.InventoryHooks) *proto.InventoryHooks {
	if h == nil {
		return &proto.InventoryHooks{}
	}
	return h
}
