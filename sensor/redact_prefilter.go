package sensor

import (
	"iter"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// redaction returns every redaction rule RedactString knows: the hand-written ones first
// (they keep the flag, variable or header around a secret readable), then gitleaks' default
// rules for the secret formats they do not know; and the prefilter that picks the few an input
// can match. They are built on first use: reading gitleaks' rules takes ~40 ms and 3 MiB,
// which every command that never redacts (`vigil hook`, run on each agent hook call) would
// otherwise pay at start.
var redaction = sync.OnceValues(func() ([]redactRule, *prefilter) {
	all := append(slices.Clip(redactRules), gitleaksRules()...)
	return all, newPrefilter(all)
})

// maxRules bounds the rule count so a ruleSet is a fixed array that lives on the stack.
const maxRules = 512

// ruleSet is a set of indexes into redaction's rules.
type ruleSet [maxRules / 64]uint64

func (rs *ruleSet) add(i int) { rs[i/64] |= 1 << (i % 64) }

// all yields the set's rules in rule order, which is the order RedactString applies them in.
func (rs *ruleSet) all() iter.Seq[int] {
	return func(yield func(int) bool) {
		for w, word := range rs {
			for word != 0 {
				if !yield(w*64 + bits.TrailingZeros64(word)) {
					return
				}
				word &= word - 1
			}
		}
	}
}

// prefilter selects the rules an input can match by the keywords it contains, as gitleaks
// does: one case-folded copy of the input, one scan of it for every rule's keywords at once.
// It is what makes 200-odd rules affordable on every exec: a Go regexp has no DFA and costs
// tens of µs per KiB of input per rule, while most argv hold no keyword at all.
type prefilter struct {
	keywords *wordSet
	// rules[k] are the rules keyword k selects.
	rules [][]int
	// always are the rules without keywords.
	always ruleSet
}

func newPrefilter(rules []redactRule) *prefilter {
	if len(rules) > maxRules {
		panic("sensor: more redaction rules than a ruleSet holds")
	}
	p := &prefilter{}
	index := map[string]int{}
	var keywords []string
	for i, r := range rules {
		if len(r.keywords) == 0 {
			p.always.add(i)
		}
		for _, k := range r.keywords {
			k = strings.ToLower(k)
			n, ok := index[k]
			if !ok {
				n = len(keywords)
				index[k] = n
				keywords = append(keywords, k)
				p.rules = append(p.rules, nil)
			}
			p.rules[n] = append(p.rules[n], i)
		}
	}
	p.keywords = newWordSet(keywords)
	return p
}

// match returns the rules whose keywords occur in s.
func (p *prefilter) match(s string) ruleSet {
	set := p.always
	var stack [1024]byte
	p.keywords.each(foldLower(stack[:0], s), func(k int) bool {
		for _, i := range p.rules[k] {
			set.add(i)
		}
		return true
	})
	return set
}

// wordSet finds which of a set of short lower-case words occur in a text: the prefilter's
// keywords and gitleaks' stop words. Words are bucketed by their first two bytes, so a scan
// costs a table look-up per byte of text and a comparison only where a word can start. It
// takes 128 KiB, where the Aho-Corasick trie gitleaks uses takes 2 KiB per state: 2.5 MiB
// for the keywords and 11 MiB for the 1,446 stop words of gitleaks' generic-api-key rule,
// for a sensor that is meant to stay small.
type wordSet struct {
	words []string
	// single[c] is 1 + the index of the one-byte word c, or 0.
	single [256]uint16
	// start[b] and start[b+1] bound, in byPair, the words whose first two bytes are b.
	start  []uint16
	byPair []uint16
}

func newWordSet(words []string) *wordSet {
	if len(words) >= 1<<16 {
		panic("sensor: too many words for a wordSet")
	}
	ws := &wordSet{words: words, start: make([]uint16, 1<<16+1)}
	pair := func(w string) int { return int(w[0])<<8 | int(w[1]) }
	for _, w := range words {
		if len(w) >= 2 {
			ws.start[pair(w)+1]++
		}
	}
	for b := 1; b < len(ws.start); b++ {
		ws.start[b] += ws.start[b-1]
	}
	ws.byPair = make([]uint16, ws.start[len(ws.start)-1])
	next := slices.Clone(ws.start)
	for i, w := range words {
		switch len(w) {
		case 0:
			panic("sensor: empty word in a wordSet")
		case 1:
			ws.single[w[0]] = uint16(i + 1)
		default:
			ws.byPair[next[pair(w)]] = uint16(i)
			next[pair(w)]++
		}
	}
	return ws
}

// each calls fn with the index of every word occurrence in text, until fn returns false.
func (ws *wordSet) each(text []byte, fn func(word int) bool) {
	for i, c := range text {
		if w := ws.single[c]; w != 0 && !fn(int(w-1)) {
			return
		}
		if i+1 == len(text) {
			return
		}
		b := int(c)<<8 | int(text[i+1])
		for _, w := range ws.byPair[ws.start[b]:ws.start[b+1]] {
			word := ws.words[w]
			if len(text)-i >= len(word) && string(text[i:i+len(word)]) == word && !fn(int(w)) {
				return
			}
		}
	}
}

// any reports whether one of the words occurs in s.
func (ws *wordSet) any(s string) bool {
	found := false
	var stack [256]byte
	ws.each(foldLower(stack[:0], s), func(int) bool {
		found = true
		return false
	})
	return found
}

// foldLower appends s to buf lower-cased the way a case-insensitive regexp compares it: ASCII
// letters lowered, and the two non-ASCII letters that (?i) folds to ASCII ones (the Kelvin
// sign to k, the long s to s) replaced, so a keyword is found wherever a (?i) rule matches
// it. Every other byte is kept as it is.
func foldLower(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == 0xE2 && strings.HasPrefix(s[i:], "\u212A"):
			c = 'k'
			i += len("\u212A") - 1
		case c == 0xC5 && strings.HasPrefix(s[i:], "\u017F"):
			c = 's'
			i += len("\u017F") - 1
		}
		buf = append(buf, c)
	}
	return buf
}
