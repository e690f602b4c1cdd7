package sensor

import (
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
)

// gitleaksRules turns gitleaks' default rules into redaction rules. gitleaks keeps a
// maintained corpus of some two hundred secret formats (cloud keys, SaaS tokens, private
// keys, connection strings) with a keyword per rule to skip the regexps an input cannot
// match; the sensor takes the rules as gitleaks ships them (its config package embeds
// gitleaks.toml, read here the way gitleaks reads it, through viper) rather than keeping its
// own copy of formats that change. A failure is a build defect, so it panics at start.
//
// Each rule replaces its secret group (gitleaks' secretGroup, else the first non-empty
// group, else the whole match), keeps gitleaks' entropy threshold and allowlists, and is
// left out when it needs a file path (there is none in an argv) or has no regexp.
func gitleaksRules() []redactRule {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		panic("sensor: reading gitleaks' default rules: " + err.Error())
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		panic("sensor: reading gitleaks' default rules: " + err.Error())
	}
	cfg, err := vc.Translate()
	if err != nil {
		panic("sensor: reading gitleaks' default rules: " + err.Error())
	}
	global := allowlists(cfg.Allowlists)
	var rules []redactRule
	for _, id := range cfg.OrderedRules {
		gr := cfg.Rules[id]
		if gr.Regex == nil || gr.Path != nil {
			continue
		}
		r := redactRule{re: gr.Regex, keywords: gr.Keywords}
		if gr.SecretGroup > 0 {
			r.groups = []int{gr.SecretGroup}
		} else {
			for g := 1; g <= gr.Regex.NumSubexp(); g++ {
				r.groups = append(r.groups, g)
			}
		}
		r.skip = gitleaksSkip(gr.Entropy, append(slices.Clip(global), allowlists(gr.Allowlists)...))
		rules = append(rules, r)
	}
	return rules
}

func allowlists(as []*config.Allowlist) []*allowlist {
	out := make([]*allowlist, len(as))
	for i, a := range as {
		out[i] = newAllowlist(a)
	}
	return out
}

// gitleaksSkip vetoes what gitleaks would not report: a secret at or below the rule's
// entropy threshold, or one an allowlist (global or the rule's) lets through, which is how
// gitleaks' maintainers keep placeholders ($VAR, {{ .Values.x }}), example keys and paths
// out of their findings.
func gitleaksSkip(entropy float64, allowlists []*allowlist) func(s string, m []int, secret string) bool {
	return func(s string, m []int, secret string) bool {
		if entropy != 0 && shannonEntropy(secret) <= entropy {
			return true
		}
		for _, a := range allowlists {
			if a.allows(s, m, secret) {
				return true
			}
		}
		return false
	}
}

// allowlist is what redaction needs of a gitleaks allowlist (config.Allowlist), copied out
// so that gitleaks' stop-word trie is not kept (see wordSet).
type allowlist struct {
	target    string // what the regexes see: "" (the secret), "match" or "line"
	and       bool   // every condition must hold, not any
	needsFile bool   // it names paths or commits, which an argv has not
	regexes   []*regexp.Regexp
	stopWords *wordSet
}

func newAllowlist(a *config.Allowlist) *allowlist {
	al := &allowlist{
		target:    a.RegexTarget,
		and:       a.MatchCondition == config.AllowlistMatchAnd,
		needsFile: len(a.Paths) > 0 || len(a.Commits) > 0,
		regexes:   a.Regexes,
	}
	if len(a.StopWords) > 0 {
		words := make([]string, len(a.StopWords))
		for i, w := range a.StopWords {
			words[i] = strings.ToLower(w)
		}
		al.stopWords = newWordSet(words)
	}
	return al
}

// allows is gitleaks' allowlist check (detect.checkFindingAllowed) for a finding outside any
// file or commit: an allowlist whose every condition must hold and that names paths or
// commits never applies.
func (a *allowlist) allows(s string, m []int, secret string) bool {
	if a.and && a.needsFile {
		return false
	}
	target := secret
	switch a.target {
	case "match":
		target = strings.Trim(s[m[0]:m[1]], "\n")
	case "line":
		target = lineAround(s, m[0], m[1])
	}
	regex := slices.ContainsFunc(a.regexes, func(re *regexp.Regexp) bool { return re.MatchString(target) })
	stop := a.stopWords != nil && a.stopWords.any(secret)
	if a.and {
		return (len(a.regexes) == 0 || regex) && (a.stopWords == nil || stop)
	}
	return regex || stop
}

// lineAround returns the lines of s that hold s[start:end].
func lineAround(s string, start, end int) string {
	start = strings.LastIndexByte(s[:start], '\n') + 1
	if i := strings.IndexByte(s[end:], '\n'); i >= 0 {
		end += i
	} else {
		end = len(s)
	}
	return s[start:end]
}

// shannonEntropy is the measure gitleaks' entropy thresholds are set against (it keeps its
// own unexported, in package detect): the bits per byte of s's byte distribution.
func shannonEntropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	e, n := 0.0, float64(len(s))
	for _, c := range counts {
		if c > 0 {
			f := float64(c) / n
			e -= f * math.Log2(f)
		}
	}
	return e
}
