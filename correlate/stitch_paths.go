package correlate

import (
	"path"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
)

// Paths. The agent's own process opens files for a tool call without starting a process:
// in-process file tools (Read, Write, Edit, apply_patch) open the file the call names, and
// Claude Code checks the file arguments of a Bash command before it starts the shell (opens
// with O_PATH of each path the command names, measured on 2.1.197 from the main thread and
// from "Bun Pool" threads, inside the call's decision→result window). Both bind by the path,
// and only when exactly one running call names it.

// agentOwn reports whether e's process is the agent itself for the session: a verified
// telemetry sender of it, or a process of its tree whose image the catalog matched (with
// hooks only, no telemetry sender is the agent).
func (s *Stitcher) agentOwn(e *proto.Event, ss *session) bool {
	if ss.agentPids[e.Process.Pid] {
		return true
	}
	if s.o.IsAgent == nil || e.Vigil.Root == nil || e.Vigil.Root.Pid != ss.root || ss.root == 0 {
		return false
	}
	if e.Process.EntityID != "" {
		if is, ok := s.agents.get(e.Process.EntityID); ok {
			return is
		}
	}
	info, ok := s.lookup(e.Process.Pid)
	is := ok && info.RootPid == ss.root && (e.Process.EntityID == "" || info.EntityID == "" || info.EntityID == e.Process.EntityID) &&
		s.o.IsAgent(info)
	if ok && e.Process.EntityID != "" {
		s.agents.put(e.Process.EntityID, is)
	}
	return is
}

// byPath binds an open made by the agent's own process of a path a running call names: a
// file of a file tool (file_path; Claude writes <file>.tmp.<pid>.<hex> and renames it; Codex
// apply_patch paths are relative to the agent's working directory), or a path word of a
// Bash command (command_path). Two running calls naming the path bind neither.
func (s *Stitcher) byPath(e *proto.Event, ss *session) *binding {
	if e.Event.Action != proto.ActionOpen || e.File == nil || e.File.Path == "" || !s.agentOwn(e, ss) {
		return nil
	}
	p, cwd := e.File.Path, e.Process.WorkingDirectory
	byFile := false
	found := inWindow(ss, e, func(c *toolCall) bool {
		for _, f := range c.files {
			if !strings.HasPrefix(f, "/") && cwd != "" {
				f = strings.TrimSuffix(cwd, "/") + "/" + strings.TrimPrefix(f, "./")
			}
			if p == f || strings.HasPrefix(p, f+".tmp.") {
				byFile = true
				return true
			}
		}
		for _, w := range c.pathWords() {
			if resolveWord(w, cwd) == p {
				return true
			}
		}
		return false
	})
	if len(found) != 1 {
		return nil
	}
	if byFile {
		return &binding{call: found[0], how: proto.BindingFilePath, confidence: "medium"}
	}
	return &binding{call: found[0], how: proto.BindingCommandPath, confidence: "medium"}
}

// pathWords are the words of the call's command that can name a file, computed once.
func (c *toolCall) pathWords() []string {
	if c.words == nil && c.command != "" {
		c.words = commandPathWords(c.command)
		if c.words == nil {
			c.words = []string{}
		}
	}
	return c.words
}

// resolveWord is a command word as the absolute, cleaned path it names from cwd; "" when it
// names cwd itself or an ancestor (the agent opens its working directory all the time), or
// is relative with no cwd known.
func resolveWord(w, cwd string) string {
	if !strings.HasPrefix(w, "/") {
		if cwd == "" || !strings.HasPrefix(cwd, "/") {
			return ""
		}
		w = cwd + "/" + w
	}
	w = path.Clean(w)
	if cwd != "" && (w == path.Clean(cwd) || strings.HasPrefix(path.Clean(cwd)+"/", w+"/") || w == "/") {
		return ""
	}
	return w
}

// commandPathWords splits a shell command into its words (quotes removed, as the shell
// joins adjacent quoted and unquoted parts) at blanks and ; & | < > ( ), and keeps those
// that can name a file literally: no option (-x), no expansion or glob ($ ` * ? [ { ~ left
// unquoted), no assignment (NAME=value). Words the shell would expand are left out rather
// than guessed.
func commandPathWords(cmd string) []string {
	var out []string
	var b strings.Builder
	literal, started := true, false
	flush := func() {
		w := b.String()
		if started && literal && w != "" && !strings.HasPrefix(w, "-") && !isAssignment(w) {
			out = append(out, w)
		}
		b.Reset()
		literal, started = true, false
	}
	for i := 0; i < len(cmd); i++ {
		ch := cmd[i]
		switch ch {
		case ' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')':
			flush()
		case '\'':
			started = true
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				literal = false
				i = len(cmd)
				break
			}
			b.WriteString(cmd[i+1 : i+1+j])
			i += j + 1
		case '"':
			started = true
			j := i + 1
			for ; j < len(cmd) && cmd[j] != '"'; j++ {
				switch cmd[j] {
				case '$', '`':
					literal = false
				case '\\':
					if j+1 < len(cmd) && strings.IndexByte("\"\\$`", cmd[j+1]) >= 0 {
						j++
					}
				}
				b.WriteByte(cmd[j])
			}
			if j >= len(cmd) {
				literal = false
			}
			i = j
		case '\\':
			started = true
			if i+1 < len(cmd) {
				i++
				b.WriteByte(cmd[i])
			}
		case '$', '`', '*', '?', '[', '{', '~':
			started, literal = true, false
			b.WriteByte(ch)
		default:
			started = true
			b.WriteByte(ch)
		}
	}
	flush()
	return out
}

// isAssignment reports whether w is a shell variable assignment (NAME=value).
func isAssignment(w string) bool {
	i := strings.IndexByte(w, '=')
	if i <= 0 {
		return false
	}
	for j, r := range w[:i] {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (j == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
