package sensor

import (
	"path"
	"regexp"
	"slices"
	"strings"
)

// Redacted replaces every secret value the redactor finds.
const Redacted = "[REDACTED]"

// redactRule is one secret pattern. Only the secret part of a match is replaced (the first
// non-empty group listed in groups, or the whole match when groups is empty), so the flag,
// variable name, URL or header around it stays readable for the analyst.
type redactRule struct {
	re     *regexp.Regexp
	groups []int
	// keywords are lower-case strings of which the lower-cased input must contain one for
	// the rule to match at all; RedactString runs only the rules whose keywords occur (see
	// prefilter). Empty means the rule always runs.
	keywords []string
	// skip, when set, vetoes a match after looking at it: s is the input, m the match's
	// submatch indexes and secret the text the match would replace (for example a variable
	// whose name is not secret-like, or a gitleaks secret below its entropy threshold).
	skip func(s string, m []int, secret string) bool
}

// secretNameKeywords are what the input holds whenever secretName accepts a name: each of
// secretWords, of the signature names and of the words benignWords removes contains one.
var secretNameKeywords = []string{"token", "secret", "passw", "key", "credential", "auth", "sig"}

// secretNameWords lets secretName turn down most names without normalising them.
var secretNameWords = newWordSet(secretNameKeywords)

// skipNotSecretName vetoes a match whose group 1 (a flag, variable, member or header name)
// does not name a secret.
func skipNotSecretName(s string, m []int, _ string) bool { return !secretName(group(s, m, 1)) }

// Value syntax shared by the key=value rules: a double- or single-quoted string (the quotes
// stay) or an unquoted word that stops at shell separators and URL query separators.
const valuePattern = `(?:"([^"]+)"|'([^']+)'|([^\s'"&;|<>()` + "`" + `]+))`

// redactRules are compiled once: RedactString runs on every exec event's argv. The
// contextual rules come first, then the token shapes.
var redactRules = append([]redactRule{
	// Flags with a secret-like name: --api-key=v, --token v, -password v (multi-letter only:
	// claude -p takes the prompt, mysql -p a password, and one letter says too little).
	// A space-separated value never starts with '-', which would be the next flag.
	{
		re:       regexp.MustCompile(`(?:^|[\s'"])--?([A-Za-z][A-Za-z0-9_.-]+)(?:=` + valuePattern + `|\s+(?:"([^"]+)"|'([^']+)'|([^\s'"&;|<>()` + "`" + `-][^\s'"&;|<>()` + "`" + `]*)))`),
		groups:   []int{2, 3, 4, 5, 6, 7},
		keywords: secretNameKeywords,
		skip:     skipNotSecretName,
	},
	// NAME=value words (environment assignments, URL query parameters) with a secret-like name.
	{
		re:       regexp.MustCompile(`(?:^|[^A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)=` + valuePattern),
		groups:   []int{2, 3, 4},
		keywords: secretNameKeywords,
		skip:     skipNotSecretName,
	},
	// JSON members with a secret-like name: "password": "v", "api_key":"v", also with the
	// quotes escaped as JSON inside a shell string has them: {\"auth\":\"v\"}.
	{
		re:       regexp.MustCompile(`\\?"([A-Za-z_][A-Za-z0-9_.-]*)\\?"\s*:\s*\\?"((?:[^"\\]|\\[^"])+)\\?"`),
		groups:   []int{2},
		keywords: secretNameKeywords,
		skip:     skipNotSecretName,
	},
	// Headers with a secret-like name (X-Api-Key: v, X-Auth-Token: v, Private-Token: v) and
	// YAML-ish "password: v". Authorization is the next rule (its value may have a scheme).
	{
		re:       regexp.MustCompile(`(?:^|[\s'"])([A-Za-z][A-Za-z0-9_-]*)\s*:\s*([^\s'"]+)`),
		groups:   []int{2},
		keywords: secretNameKeywords,
		skip: func(s string, m []int, secret string) bool {
			name := group(s, m, 1)
			return !secretName(name) || strings.EqualFold(name, "authorization") || strings.HasPrefix(secret, "//")
		},
	},
	// A secret-named word followed by its value, as positional arguments say it: aws
	// configure set aws_secret_access_key V. Only names with a '_' or '-' inside, so prose
	// ("the token is ...") is left alone.
	{
		re:       regexp.MustCompile(`(?:^|\s)([A-Za-z][A-Za-z0-9]*[_-][A-Za-z0-9_-]+)\s+([^\s'"&;|<>()` + "`" + `-][^\s'"&;|<>()` + "`" + `]*)`),
		groups:   []int{2},
		keywords: secretNameKeywords,
		skip:     skipNotSecretName,
	},
	// HTTP authorization headers, whatever the scheme: Bearer, Basic, token, Digest.
	{
		re:       regexp.MustCompile(`(?i)authorization\s*:\s*(?:(?:bearer|basic|token|digest)\s+)?([^\s'"]+)`),
		groups:   []int{1},
		keywords: []string{"authorization"},
	},
	// A bare Bearer credential outside a header. Case-sensitive and 16+ characters so
	// prose like "bearer of bad news" is left alone.
	{
		re:       regexp.MustCompile(`\bBearer\s+([A-Za-z0-9._~+/-]{16,}=*)`),
		groups:   []int{1},
		keywords: []string{"bearer"},
	},
	// curl -u / --user user:password (not numeric uid:gid as in docker -u 1000:1000, nor a
	// URL as in redis-cli -u redis://..., which the userinfo rule reads).
	{
		re:       regexp.MustCompile(`(?:^|\s)(?:-u|--user)(?:\s+|=)['"]?[^\s:'"]*:([^\s'"]+)`),
		groups:   []int{1},
		keywords: []string{"-u"}, // --user holds it too
		skip: func(_ string, _ []int, secret string) bool {
			return isDigits(secret) || strings.HasPrefix(secret, "//")
		},
	},
	// A URL whose user name is a token, with no password (https://TOKEN@dev.azure.com/...,
	// https://ghp_...@github.com/...): 20 characters or more, which no login name has.
	{
		re:       regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://([A-Za-z0-9_~.-]{20,})@`),
		groups:   []int{1},
		keywords: []string{"@"},
	},
	// Oracle's user/password@ connect string in a JDBC URL.
	{
		re:       regexp.MustCompile(`(?i)jdbc:oracle:[a-z0-9]+:[^/\s:@'"]*/([^@\s'"]+)@`),
		groups:   []int{1},
		keywords: []string{"jdbc:oracle:"},
	},
	// Passwords that login tools take by a one-letter flag: docker/podman/helm registry
	// login -p, sshpass -p, redis-cli -a, and mysql's -pPASSWORD (glued: a bare -p prompts).
	// RedactArgs reads the same from separate arguments (see passwordFlag).
	{
		re:       regexp.MustCompile(`\b(?:docker|podman|nerdctl|buildah|skopeo|helm|oras|crane)\b[^;&|\n]*?\slogin\b[^;&|\n]*?\s-p(?:\s+|=)([^\s'";&|]+)`),
		groups:   []int{1},
		keywords: []string{"login"},
	},
	{
		re:       regexp.MustCompile(`\bsshpass\s+-p\s*([^\s'";&|]+)`),
		groups:   []int{1},
		keywords: []string{"sshpass"},
	},
	{
		re:       regexp.MustCompile(`\bredis-cli\b[^;&|\n]*?\s(?:-a|--pass)\s+([^\s'";&|]+)`),
		groups:   []int{1},
		keywords: []string{"redis-cli"},
	},
	{
		re:       regexp.MustCompile(`\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^;&|\n]*?\s-p([^\s'";&|-][^\s'";&|]*)`),
		groups:   []int{1},
		keywords: []string{"mysql", "mariadb"},
	},
	// Cookies: a Cookie header's whole value, and curl -b / --cookie given name=value pairs
	// (without '=' the value names a cookie file, which stays).
	{
		re:       regexp.MustCompile(`(?i)\bcookie\s*:\s*([^'"\r\n]+)`),
		groups:   []int{1},
		keywords: []string{"cookie"},
	},
	// Its keywords are -b then what \s or = matches: a bare -b is in many a script
	// (snapshot-bash-1.sh).
	{
		re:       regexp.MustCompile(`(?:^|\s)(?:-b|--cookie)(?:\s+|=)(?:'([^']*=[^']*)'|"([^"]*=[^"]*)"|([^\s'"]*=[^\s'"]*))`),
		groups:   []int{1, 2, 3},
		keywords: []string{"-b ", "-b\t", "-b\n", "-b\f", "-b\r", "-b=", "--cookie"},
	},
	// URL userinfo: scheme://user:password@host keeps the user and host.
	{
		re:       regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'"]*:([^/\s@'"]+)@`),
		groups:   []int{1},
		keywords: []string{"@"},
	},
}, tokenShapeRules()...)

// tokenShapes are well-known token formats, redacted wherever they stand: the prefix a token
// starts with (a regexp) and the body after it. Beyond the dozen first written here, they are
// the corpus formats whose gitleaks rule wants a separator after the token or a minimum
// entropy (npm_, SG., hvs., dapi, hf_, Stripe's sk_live_ in curl -u sk_live_...:, ...), which
// FuzzRedactKnownSecrets showed a token can lack: glued to a ',' or ')', or with few distinct
// characters, it is a token still. GitHub tokens have no leading word boundary, so one glued
// to other text is caught.
var tokenShapes = []struct {
	prefix, body string
	keywords     []string
}{
	{`\bsk-`, `[A-Za-z0-9_-]{20,}`, []string{"sk-"}}, // Anthropic sk-ant-, OpenAI sk-proj- and sk-
	{`gh[pousr]_`, `[A-Za-z0-9]{36,}`, []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}},
	{`github_pat_`, `[A-Za-z0-9_]{22,}`, []string{"github_pat_"}},
	{`\bglpat-`, `[A-Za-z0-9_-]{20,}`, []string{"glpat-"}},
	{`\bxox[abeprs]-`, `[A-Za-z0-9-]{10,}`, []string{"xox"}},
	{`\b(?:AKIA|ASIA)`, `[A-Z0-9]{16}\b`, []string{"akia", "asia"}},
	{`\bAIza`, `[0-9A-Za-z_-]{35}`, []string{"aiza"}},
	{`\beyJ`, `[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`, []string{"eyj"}}, // JWT
	{`\b[rs]k_(?:live|test|prod)_`, `[A-Za-z0-9]{10,}`, []string{"sk_", "rk_"}},           // Stripe
	{`\bnpm_`, `[A-Za-z0-9]{36}`, []string{"npm_"}},
	{`\bpypi-AgEIcHlwaS5vcmc`, `[A-Za-z0-9_-]{50,}`, []string{"pypi-"}},
	{`\bSK`, `[0-9a-fA-F]{32}`, []string{"sk"}}, // Twilio API key
	{`\bSG\.`, `[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}`, []string{"sg."}},
	{`\bhvs\.`, `[A-Za-z0-9_-]{90,}`, []string{"hvs."}}, // Vault service token
	{`\bdapi`, `[a-f0-9]{32}`, []string{"dapi"}},        // Databricks
	{`\bdo[opr]_v1_`, `[a-f0-9]{64}`, []string{"_v1_"}}, // DigitalOcean
	{`\bhf_`, `[A-Za-z]{34}`, []string{"hf_"}},          // Hugging Face
	{`\bshp(?:at|ss|ca|pa)_`, `[a-fA-F0-9]{32}`, []string{"shp"}},
	{`\bAGE-SECRET-KEY-1`, `[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`, []string{"age-secret-key-"}},
	{`hooks\.slack\.com/(?:services|workflows|triggers)/`, `[A-Za-z0-9+/]{43,}`, []string{"hooks.slack.com/"}},
}

func tokenShapeRules() []redactRule {
	rules := make([]redactRule, len(tokenShapes))
	for i, t := range tokenShapes {
		rules[i] = redactRule{re: regexp.MustCompile(t.prefix + t.body), keywords: t.keywords}
	}
	return rules
}

// secretWords mark a flag or variable name as holding a secret, after normalising it to
// upper case with '_' separators.
var secretWords = []string{
	"TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL", "AUTH",
	// Keys the corpus has under other names: Datadog's DD_APP_KEY and DD-APPLICATION-KEY,
	// Azure's AccountKey and SharedAccessKey, and the usual signing and encryption keys.
	"APP_KEY", "APPKEY", "APPLICATION_KEY", "ACCOUNT_KEY", "ACCOUNTKEY", "ACCESSKEY", "SIGNING_KEY", "MASTER_KEY", "ENCRYPTION_KEY", "SHARED_KEY", "LICENSE_KEY",
}

// benignWords contain a secret word but name something else; they are removed before the
// check so MAX_TOKENS, --tokenizer and GIT_AUTHOR_NAME stay readable. AUTHORIZATION is
// folded to AUTH first so "AUTHOR" does not hide it.
var benignWords = strings.NewReplacer("AUTHORIZ", "AUTH", "AUTHOR", "", "TOKENIZER", "", "TOKENS", "")

// nameSeparators are normalised to '_' in names; built once, secretName runs on every flag.
var nameSeparators = strings.NewReplacer("-", "_", ".", "_")

// secretName reports whether a flag or variable name holds a secret. Names that point to
// where a secret is kept (_FILE, _PATH, _DIR) or switch it off (no-...) are not secrets:
// the path is useful evidence and is not itself sensitive.
func secretName(name string) bool {
	if !secretNameWords.any(name) {
		return false
	}
	n := strings.ToUpper(nameSeparators.Replace(name))
	if strings.HasPrefix(n, "NO_") || strings.HasSuffix(n, "_FILE") || strings.HasSuffix(n, "_PATH") || strings.HasSuffix(n, "_DIR") {
		return false
	}
	// A signature in a pre-signed URL: Azure SAS sig=, S3 X-Amz-Signature=.
	if n == "SIG" || n == "SIGNATURE" || strings.HasSuffix(n, "_SIGNATURE") {
		return true
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
// variables, authorization headers, URL passwords, well-known token shapes and whatever
// gitleaks' default rules find. It works inline on whole shell command strings (bash -c
// '...') so the rest of the command stays readable. Only the rules whose keywords occur in s
// run. Rules run until nothing changes, which makes redaction idempotent: a record redacted
// twice (sensor, then a sink) is the same as one redacted once.
func RedactString(s string) string {
	all, filter := redaction()
	set := filter.match(s)
	// The keywords are looked up once: a redaction only ever removes them ([REDACTED] holds
	// none, TestRedactKeywords), so no rule left out could match in a later pass.
	for range maxRedactPasses {
		next := s
		for i := range set.all() {
			next = all[i].apply(next)
		}
		if next == s {
			break
		}
		s = next
	}
	return s
}

func (r *redactRule) apply(s string) string {
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
				if m[2*g] < m[2*g+1] {
					start, end = m[2*g], m[2*g+1]
					break
				}
			}
		}
		// A secret that is (part of) the marker is what an earlier pass left: replacing it
		// again would nest markers and never settle.
		if start < 0 || start == end || strings.Contains(Redacted, s[start:end]) {
			continue
		}
		if r.skip != nil && r.skip(s, m, s[start:end]) {
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

// group returns submatch i of match m in s, or "" when the group took no part.
func group(s string, m []int, i int) string {
	if m[2*i] < 0 {
		return ""
	}
	return s[m[2*i]:m[2*i+1]]
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
				if user, pass, ok := strings.Cut(a, ":"); ok && pass != "" && !isDigits(pass) && !strings.HasPrefix(pass, "//") {
					out[i] = user + ":" + Redacted
					continue
				}
			}
			if passwordFlag(args, prev) && a != "" {
				out[i] = Redacted
				continue
			}
			if flag, ok := gluedPasswordFlag(args[0]); ok && len(a) > len(flag) && strings.HasPrefix(a, flag) && a[len(flag)] != '-' {
				out[i] = flag + Redacted
				continue
			}
		}
		out[i] = RedactString(a)
	}
	return out
}

// passwordFlag reports whether flag, an argument of argv, is a one-letter flag whose next
// argument is a password for argv's command: what the login rules read in a shell string.
func passwordFlag(argv []string, flag string) bool {
	switch path.Base(argv[0]) {
	case "sshpass":
		return flag == "-p"
	case "redis-cli":
		return flag == "-a" || flag == "--pass"
	case "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras", "crane":
		return flag == "-p" && slices.Contains(argv, "login")
	}
	return false
}

// gluedPasswordFlag returns the flag that takes a password glued to it (-pPASSWORD) for the
// command exe, if it has one.
func gluedPasswordFlag(exe string) (string, bool) {
	switch path.Base(exe) {
	case "mysql", "mysqldump", "mysqladmin", "mariadb", "sshpass":
		return "-p", true
	}
	return "", false
}

// cutTailRules redact what is left of a secret at the very end of a string, cut by the
// kernel's argv limit: a token too short for its full pattern, or a value without the
// closing quote, '@' or PEM footer its rule needs. Contextual values cut in the middle
// (PASSWORD=hun, --token abc, Authorization: Basic dXN) RedactString already redacts.
var cutTailRules = []redactRule{
	// A token cut after the prefix of its shape: redacted whole.
	{re: regexp.MustCompile(`(?:` + strings.Join(tokenShapePrefixes(), "|") + `)[A-Za-z0-9_.~+/=-]*$`)},
	// A PEM private key without its footer: the body goes, the header stays.
	{re: regexp.MustCompile(`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----([\s\S]+)$`), groups: []int{1}},
	// URL userinfo before its '@': the password after user:, or 8 or more characters of what
	// may be a token for a user name (a host cut before its path goes too: it is a cut tail).
	{re: regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'"]*:([^/\s@'"]+)$`), groups: []int{1}},
	{re: regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://([^/\s:@'"]{8,})$`), groups: []int{1}},
	{re: regexp.MustCompile(`(?i)jdbc:oracle:[a-z0-9]+:[^/\s:@'"]*/([^@\s'"]+)$`), groups: []int{1}},
	// A quoted secret value without its closing quote: a JSON member, NAME=, --flag, a cookie.
	{re: regexp.MustCompile(`\\?"([A-Za-z_][A-Za-z0-9_.-]*)\\?"\s*:\s*\\?"([^"]+)$`), groups: []int{2}, skip: skipNotSecretName},
	{re: regexp.MustCompile(`(?:^|[^A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)=["']([^"']+)$`), groups: []int{2}, skip: skipNotSecretName},
	{re: regexp.MustCompile(`(?:^|[\s'"])--?([A-Za-z][A-Za-z0-9_.-]+)(?:=|\s+)["']([^"']+)$`), groups: []int{2}, skip: skipNotSecretName},
	{re: regexp.MustCompile(`(?:^|\s)(?:-b|--cookie)(?:\s+|=)["']([^"']*=[^"']*)$`), groups: []int{1}},
	// A bare Bearer credential shorter than the 16 characters its full rule wants.
	{re: regexp.MustCompile(`\bBearer\s+([A-Za-z0-9._~+/-]+=*)$`), groups: []int{1}},
}

func tokenShapePrefixes() []string {
	prefixes := make([]string, len(tokenShapes))
	for i, t := range tokenShapes {
		prefixes[i] = t.prefix
	}
	return prefixes
}

// RedactCutTail redacts a secret cut off at the end of s: for the last argument of an argv the
// kernel truncated (vigil.truncated names process.args), whose end is not the real end. Run
// after RedactString, it leaves of a cut secret of a corpus format no run of 8 characters of
// secret material (leakBound, TestRedactCutTailCorpus): a format's public prefix (ghp_, AKIA)
// is not material, and a shorter fragment is too little to use or to search for.
func RedactCutTail(s string) string {
	for i := range cutTailRules {
		s = cutTailRules[i].apply(s)
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
