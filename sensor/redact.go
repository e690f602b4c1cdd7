package sensor

import (
	"regexp"
	"strings"
)

// Redacted replaces every secret value the redactor finds.
const Redacted = "[REDACTED]"

// redactRule is one secret pattern. Only the secret part of a match is replaced (the first
// participating group listed in groups, or the whole match when groups is empty), so the
// flag, variable name, URL or header around it stays readable for the analyst.
type redactRule struct {
	re     *regexp.Regexp
	groups []int
	// skip, when set, vetoes a match after looking at its submatches (for example a
	// variable whose name is not secret-like).
	skip func(sub []string) bool
}

// Value syntax shared by the key=value rules: a double- or single-quoted string (the quotes
// stay) or an unquoted word that stops at shell separators and URL query separators.
const valuePattern = `(?:"([^"]+)"|'([^']+)'|([^\s'"&;|<>()` + "`" + `]+))`

// redactRules are compiled once: RedactString runs on every exec event's argv.
var redactRules = []redactRule{
	// Flags with a secret-like name: --api-key=v, --token v, -password v (multi-letter only:
	// claude -p takes the prompt, mysql -p a password, and one letter says too little).
	// A space-separated value never starts with '-', which would be the next flag.
	{
		re:     regexp.MustCompile(`(?:^|[\s'"])--?([A-Za-z][A-Za-z0-9_.-]+)(?:=` + valuePattern + `|\s+(?:"([^"]+)"|'([^']+)'|([^\s'"&;|<>()` + "`" + `-][^\s'"&;|<>()` + "`" + `]*)))`),
		groups: []int{2, 3, 4, 5, 6, 7},
		skip:   func(sub []string) bool { return !secretName(sub[1]) },
	},
	// NAME=value words (environment assignments, URL query parameters) with a secret-like name.
	{
		re:     regexp.MustCompile(`(?:^|[^A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)=` + valuePattern),
		groups: []int{2, 3, 4},
		skip:   func(sub []string) bool { return !secretName(sub[1]) },
	},
	// JSON members with a secret-like name: "password": "v", "api_key":"v".
	{
		re:     regexp.MustCompile(`"([A-Za-z_][A-Za-z0-9_.-]*)"\s*:\s*"([^"]+)"`),
		groups: []int{2},
		skip:   func(sub []string) bool { return !secretName(sub[1]) },
	},
	// Headers with a secret-like name (X-Api-Key: v, X-Auth-Token: v, Private-Token: v) and
	// YAML-ish "password: v". Authorization is the next rule (its value may have a scheme).
	{
		re:     regexp.MustCompile(`(?:^|[\s'"])([A-Za-z][A-Za-z0-9_-]*)\s*:\s*([^\s'"]+)`),
		groups: []int{2},
		skip: func(sub []string) bool {
			return !secretName(sub[1]) || strings.EqualFold(sub[1], "authorization") || strings.HasPrefix(sub[2], "//")
		},
	},
	// A secret-named word followed by its value, as positional arguments say it: aws
	// configure set aws_secret_access_key V. Only names with a '_' or '-' inside, so prose
	// ("the token is ...") is left alone.
	{
		re:     regexp.MustCompile(`(?:^|\s)([A-Za-z][A-Za-z0-9]*[_-][A-Za-z0-9_-]+)\s+([^\s'"&;|<>()` + "`" + `-][^\s'"&;|<>()` + "`" + `]*)`),
		groups: []int{2},
		skip:   func(sub []string) bool { return !secretName(sub[1]) || sub[2] == Redacted },
	},
	// HTTP authorization headers, whatever the scheme: Bearer, Basic, token, Digest.
	{
		re:     regexp.MustCompile(`(?i)authorization\s*:\s*(?:(?:bearer|basic|token|digest)\s+)?([^\s'"]+)`),
		groups: []int{1},
	},
	// A bare Bearer credential outside a header. Case-sensitive and 16+ characters so
	// prose like "bearer of bad news" is left alone.
	{
		re:     regexp.MustCompile(`\bBearer\s+([A-Za-z0-9._~+/-]{16,}=*)`),
		groups: []int{1},
	},
	// curl -u / --user user:password (not numeric uid:gid as in docker -u 1000:1000).
	{
		re:     regexp.MustCompile(`(?:^|\s)(?:-u|--user)(?:\s+|=)['"]?[^\s:'"]*:([^\s'"]+)`),
		groups: []int{1},
		skip:   func(sub []string) bool { return isDigits(sub[1]) },
	},
	// URL userinfo: scheme://user:password@host keeps the user and host.
	{
		re:     regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'"]*:([^/\s@'"]+)@`),
		groups: []int{1},
	},
	// Well-known token shapes, anywhere. GitHub tokens have no leading word boundary so a
	// token glued to other text is still caught.
	{re: regexp.MustCompile(`\bsk-[A-Za-z0-9_-]{20,}`)},    // Anthropic sk-ant-, OpenAI sk-proj- and sk-
	{re: regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{36,}`)}, // GitHub classic tokens
	{re: regexp.MustCompile(`github_pat_[A-Za-z0-9_]{22,}`)},
	{re: regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`)},
	{re: regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{10,}`)},
	{re: regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)},
	{re: regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)}, // JWT
}

// secretWords mark a flag or variable name as holding a secret, after normalising it to
// upper case with '_' separators.
var secretWords = []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL", "AUTH"}

// benignWords contain a secret word but name something else; they are removed before the
// check so MAX_TOKENS, --tokenizer and GIT_AUTHOR_NAME stay readable. AUTHORIZATION is
// folded to AUTH first so "AUTHOR" does not hide it.
var benignWords = strings.NewReplacer("AUTHORIZ", "AUTH", "AUTHOR", "", "TOKENIZER", "", "TOKENS", "")

// secretName reports whether a flag or variable name holds a secret. Names that point to
// where a secret is kept (_FILE, _PATH, _DIR) or switch it off (no-...) are not secrets:
// the path is useful evidence and is not itself sensitive.
func secretName(name string) bool {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
	if strings.HasPrefix(n, "NO_") || strings.HasSuffix(n, "_FILE") || strings.HasSuffix(n, "_PATH") || strings.HasSuffix(n, "_DIR") {
		return false
	}
	n = benignWords.Replace(n)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// maxRedactPasses bounds the fixpoint loop in RedactString. Every effective pass removes
// secret text, so real input settles in two passes; the bound only guards against a rule
// interaction nobody has found yet.
const maxRedactPasses = 8

// RedactString replaces secret values inside s with [REDACTED]: secret-named flags and
// variables, authorization headers, URL passwords and well-known token shapes. It works
// inline on whole shell command strings (bash -c '...') so the rest of the command stays
// readable. Rules run until nothing changes, which makes redaction idempotent: a record
// redacted twice (sensor, then a sink) is the same as one redacted once.
func RedactString(s string) string {
	for range maxRedactPasses {
		next := s
		for _, r := range redactRules {
			next = r.apply(next)
		}
		if next == s {
			break
		}
		s = next
	}
	return s
}

func (r redactRule) apply(s string) string {
	matches := r.re.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[0], m[1]
		if len(r.groups) > 0 {
			start = -1
			for _, g := range r.groups {
				if m[2*g] >= 0 {
					start, end = m[2*g], m[2*g+1]
					break
				}
			}
		}
		if start < 0 || s[start:end] == Redacted {
			continue
		}
		if r.skip != nil && r.skip(submatches(s, m)) {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func submatches(s string, m []int) []string {
	sub := make([]string, len(m)/2)
	for i := range sub {
		if m[2*i] >= 0 {
			sub[i] = s[m[2*i]:m[2*i+1]]
		}
	}
	return sub
}

// RedactArgs returns a redacted copy of argv (the input is never modified, it may be shared
// with the process table). Beyond RedactString on each argument, it handles what spans two
// arguments: the value after a secret-named flag (--token X) and curl's -u user:password.
func RedactArgs(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		if i > 0 {
			prev := args[i-1]
			if name, ok := longFlagName(prev); ok && secretName(name) && !strings.HasPrefix(a, "-") && a != "" {
				out[i] = Redacted
				continue
			}
			// A positional secret after its name: aws configure set aws_secret_access_key V.
			if !strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") && strings.ContainsAny(prev, "_-") && secretName(prev) && !strings.HasPrefix(a, "-") && a != "" {
				out[i] = Redacted
				continue
			}
			if prev == "-u" || prev == "--user" {
				if user, pass, ok := strings.Cut(a, ":"); ok && pass != "" && !isDigits(pass) {
					out[i] = user + ":" + Redacted
					continue
				}
			}
		}
		out[i] = RedactString(a)
	}
	return out
}

// tokenPrefix matches the start of a well-known token shape at the very end of a string: what
// is left of a token the kernel's argv limit cut in half, too short for the full patterns.
var tokenPrefix = regexp.MustCompile(`(?:sk-|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|AIza|eyJ)[A-Za-z0-9_.~+/=-]*$`)

// RedactCutTail redacts a token cut off at the end of s: for the last argument of an argv the
// kernel truncated (vigil.truncated names process.args), whose end is not the real end.
func RedactCutTail(s string) string {
	if loc := tokenPrefix.FindStringIndex(s); loc != nil {
		return s[:loc[0]] + Redacted
	}
	return s
}

// longFlagName returns the name of a flag argument without a value (--token, -password);
// single-letter flags are not names (claude -p "prompt").
func longFlagName(arg string) (string, bool) {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if name == arg || len(name) < 2 || strings.Contains(name, "=") {
		return "", false
	}
	return name, true
}
