package correlate

import (
	"strings"

	"github.com/vigil-sensor/vigil/proto"
)

// Command matching. Claude Code runs a Bash call as
//
//	/bin/bash -c -l "source <snapshot> 2>/dev/null || true && shopt -u extglob 2>/dev/null || true && eval '<command>' < /dev/null && pwd -P >| /tmp/claude-<hex>-cwd"
//
// with every ' of the command written '"'"' (observed on Claude Code 2.0 to 2.1.197). The
// eval word is the command exactly, so two calls running at once whose commands contain one
// another (`cat a` and `cat a; cat b`) are told apart by it; a plain substring match would
// find both in the longer one's shell.

// evalWord is a command a shell argv hands to eval; cut is set when the argv ends inside it
// (a bounded argv), so text is only the command's beginning.
type evalWord struct {
	text string
	cut  bool
}

// matches reports whether the word is cmd, or its beginning when cut.
func (w evalWord) matches(cmd string) bool {
	if w.cut {
		return w.text != "" && strings.HasPrefix(cmd, w.text)
	}
	return w.text == cmd
}

// evalWords returns the commands a shell argv hands to `eval` as one quoted word (adjacent
// '...' and "..." segments, as bash joins them), decoded.
func evalWords(args []string) []evalWord {
	var out []evalWord
	for _, a := range args {
		for rest := a; ; {
			i := strings.Index(rest, "eval '")
			if i < 0 {
				break
			}
			if i > 0 && !isShellSep(rest[i-1]) {
				rest = rest[i+len("eval '"):]
				continue
			}
			word, n, cut, ok := shellQuotedWord(rest[i+len("eval "):])
			if ok {
				out = append(out, evalWord{text: word, cut: cut})
			}
			rest = rest[i+len("eval ")+n:]
		}
	}
	return out
}

// isShellSep reports whether c can precede a command word in a shell line.
func isShellSep(c byte) bool {
	switch c {
	case ' ', '\t', '\n', ';', '&', '|', '(':
		return true
	}
	return false
}

// shellQuotedWord decodes the shell word at the start of s made of quoted segments only
// ('...' literally, "..." with \" \\ \$ \` escapes), up to the first blank, ; & | < > ) or
// the end; n is the bytes consumed. cut says s ended inside a quote: word is what came before.
// ok is false for an empty word or one with an unquoted character, which this matcher does
// not interpret.
func shellQuotedWord(s string) (word string, n int, cut, ok bool) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		switch s[i] {
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				b.WriteString(s[i+1:])
				return b.String(), len(s), true, true
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte("\"\\$`", s[j+1]) >= 0 {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return b.String(), len(s), true, true
			}
			i = j + 1
		case ' ', '\t', '\n', ';', '&', '|', '<', '>', ')':
			return b.String(), i, false, b.Len() > 0
		default:
			return "", i, false, false
		}
	}
	return b.String(), i, false, b.Len() > 0
}

// byCommand binds an exec whose argv holds a running call's command text: the agents run
// the command through a shell, embedding it verbatim. A shell that hands a command to eval
// (Claude's Bash tool) binds only to the call whose command is that word exactly; any other
// exec binds when exactly one running call's text appears in its argv (Claude's '"'"'
// quoting understood).
func (s *Stitcher) byCommand(e *proto.Event, ss *session) *toolCall {
	if e.Event.Action != proto.ActionExec || len(e.Process.Args) == 0 {
		return nil
	}
	if words := evalWords(e.Process.Args); len(words) > 0 {
		found := inWindow(ss, e, func(c *toolCall) bool {
			for _, w := range words {
				if c.command != "" && w.matches(c.command) { // argv was redacted the same way
					return true
				}
			}
			return false
		})
		if len(found) == 1 {
			return found[0]
		}
		return nil
	}
	argv := strings.Join(e.Process.Args, " ")
	found := inWindow(ss, e, func(c *toolCall) bool {
		cmd := c.command
		return cmd != "" && (strings.Contains(argv, cmd) || strings.Contains(argv, strings.ReplaceAll(cmd, "'", `'"'"'`)))
	})
	if len(found) == 1 {
		return found[0]
	}
	return nil
}
