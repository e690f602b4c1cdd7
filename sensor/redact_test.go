package sensor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const (
	ghToken  = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345" // 36 alnum after the prefix
	jwtToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)

func TestRedactString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Must stay untouched.
		{"plain path", "/home/dev/project/src/main.go", "/home/dev/project/src/main.go"},
		{"git sha", "git checkout 3f786850e387550fdab836ed7e6dc881de23001b", "git checkout 3f786850e387550fdab836ed7e6dc881de23001b"},
		{"uuid", "session 0f8fad5b-d9cb-469f-a165-70867728950e", "session 0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"claude prompt flag", `claude -p "fix the test"`, `claude -p "fix the test"`},
		{"max tokens flag", "codex --max-tokens 4096", "codex --max-tokens 4096"},
		{"max tokens env", "MAX_TOKENS=4096 run", "MAX_TOKENS=4096 run"},
		{"author env", "GIT_AUTHOR_NAME=alice git commit", "GIT_AUTHOR_NAME=alice git commit"},
		{"token file path", "gh --token-file /etc/gh/token", "gh --token-file /etc/gh/token"},
		{"docker uid gid", "docker run -u 1000:1000 img", "docker run -u 1000:1000 img"},
		{"prose bearer", "the bearer of bad news", "the bearer of bad news"},
		{"url without password", "git clone https://github.com/org/repo.git", "git clone https://github.com/org/repo.git"},
		{"task word", "run the task-runner-for-everything-here", "run the task-runner-for-everything-here"},
		{"claude snapshot", "SNAPSHOT_FILE=/root/.claude/shell-snapshots/snapshot-bash-1.sh", "SNAPSHOT_FILE=/root/.claude/shell-snapshots/snapshot-bash-1.sh"},
		{"already redacted", "TOKEN=[REDACTED]", "TOKEN=[REDACTED]"},

		// Flags.
		{"api key equals", "aider --api-key=sk-abc", "aider --api-key=[REDACTED]"},
		{"token space", "gh auth login --token abc123", "gh auth login --token [REDACTED]"},
		{"password quoted", `mysql --password "my secret" -h db`, `mysql --password "[REDACTED]" -h db`},
		{"client secret single quoted", `tool --client-secret='s3cr3t'`, `tool --client-secret='[REDACTED]'`},
		{"go style flag", "svc -password hunter2", "svc -password [REDACTED]"},
		{"secret flag before flag", "tool --auth --verbose", "tool --auth --verbose"},

		// NAME=value.
		{"env assignment", "GITHUB_TOKEN=abc123 gh pr list", "GITHUB_TOKEN=[REDACTED] gh pr list"},
		{"export", "export ANTHROPIC_API_KEY=xyz; claude", "export ANTHROPIC_API_KEY=[REDACTED]; claude"},
		{"aws secret", "AWS_SECRET_ACCESS_KEY='abc/def+ghi' aws s3 ls", "AWS_SECRET_ACCESS_KEY='[REDACTED]' aws s3 ls"},
		{"lowercase", "db_password=hunter2", "db_password=[REDACTED]"},
		{"query param", "curl 'https://api.example.com/v1?api_key=abc123&page=2'", "curl 'https://api.example.com/v1?api_key=[REDACTED]&page=2'"},
		{"authorization env", "AUTHORIZATION=xyz", "AUTHORIZATION=[REDACTED]"},

		// Headers, JSON members and positional secrets (issue 10: these reached the JSONL).
		{"api key header", `curl -H 'X-Api-Key: k3y-v4lue' https://api.example.com`, `curl -H 'X-Api-Key: [REDACTED]' https://api.example.com`},
		{"auth token header", `curl -H "X-Auth-Token:abc123" https://x`, `curl -H "X-Auth-Token:[REDACTED]" https://x`},
		{"private token header", "curl --header 'PRIVATE-TOKEN: glx-123' https://gitlab", "curl --header 'PRIVATE-TOKEN: [REDACTED]' https://gitlab"},
		{"json password", `curl -d '{"user":"alice","password":"hunter2"}' https://x`, `curl -d '{"user":"alice","password":"[REDACTED]"}' https://x`},
		{"json api key spaced", `{"api_key" : "abc"}`, `{"api_key" : "[REDACTED]"}`},
		{"yaml-ish password", "password: hunter2", "password: [REDACTED]"},
		{"positional aws secret", "aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG", "aws configure set aws_secret_access_key [REDACTED]"},
		{"positional api key", "llm keys set api-key abcdef", "llm keys set api-key [REDACTED]"},
		// and what must stay.
		{"json non-secret", `{"user":"alice","model":"sonnet"}`, `{"user":"alice","model":"sonnet"}`},
		{"header non-secret", "curl -H 'Content-Type: application/json'", "curl -H 'Content-Type: application/json'"},
		{"url scheme", "open https://example.com/token", "open https://example.com/token"},
		{"prose token word", "the token is expired", "the token is expired"},
		{"token file positional", "gh auth --token-file path", "gh auth --token-file path"},

		// Token shapes.
		{"anthropic key", "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345 end", "key [REDACTED] end"},
		{"openai project key", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx", "[REDACTED]"},
		{"github classic", "echo " + ghToken + " | gh auth login --with-token", "echo [REDACTED] | gh auth login --with-token"},
		{"github fine grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[REDACTED]"},
		{"gitlab", "glpat-AbCdEfGhIjKlMnOpQrSt", "[REDACTED]"},
		{"slack", "xoxb-1234567890-abcdefghij", "[REDACTED]"},
		{"aws access key id", "AKIAIOSFODNN7EXAMPLE", "[REDACTED]"},
		{"google api key", "AIzaSyA-1234567890abcdefghijklmnopqrstu", "[REDACTED]"},
		{"jwt", "token is " + jwtToken, "token is [REDACTED]"},

		// Headers, curl, URLs.
		{"bearer header", `curl -H "Authorization: Bearer abc.def.ghi" https://x`, `curl -H "Authorization: Bearer [REDACTED]" https://x`},
		{"basic header", `curl -H 'authorization: Basic dXNlcjpwYXNz' https://x`, `curl -H 'authorization: Basic [REDACTED]' https://x`},
		{"bare bearer", "Bearer abcdefghijklmnop0123", "Bearer [REDACTED]"},
		{"curl user", "curl -u alice:s3cr3t https://x", "curl -u alice:[REDACTED] https://x"},
		{"curl long user", "curl --user=alice:s3cr3t https://x", "curl --user=alice:[REDACTED] https://x"},
		{"url userinfo", "git clone https://bob:hunter2@git.example.com/r.git", "git clone https://bob:[REDACTED]@git.example.com/r.git"},
		{"postgres url", "psql postgres://app:pa55@db:5432/app", "psql postgres://app:[REDACTED]@db:5432/app"},

		// Shell command strings as agents run them.
		{
			"claude bash tool",
			`source /root/.claude/shell-snapshots/s.sh 2>/dev/null || true && eval 'OPENAI_API_KEY=abc python3 run.py --limit 5' < /dev/null && pwd -P >| /tmp/claude-1a2b-cwd`,
			`source /root/.claude/shell-snapshots/s.sh 2>/dev/null || true && eval 'OPENAI_API_KEY=[REDACTED] python3 run.py --limit 5' < /dev/null && pwd -P >| /tmp/claude-1a2b-cwd`,
		},
		{
			"pipeline keeps the rest",
			`curl -s -H "Authorization: token ` + ghToken + `" https://api.github.com/user | jq .login`,
			`curl -s -H "Authorization: token [REDACTED]" https://api.github.com/user | jq .login`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactString(tt.in)
			if got != tt.want {
				t.Errorf("RedactString(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if again := RedactString(got); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

// The kernel keeps 4 KiB of argv: a token cut in half at that limit is too short for its full
// pattern, and is redacted as a cut tail of the last argument.
func TestRedactCutTail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"echo sk-ant-api0", "echo [REDACTED]"},
		{"curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1", "curl -H 'Authorization: Bearer [REDACTED]"},
		{"push ghp_ab", "push [REDACTED]"},
		{"AKIAIOSF", "[REDACTED]"},
		{"a plain ending", "a plain ending"},
		{"sk-ant-api03 in the middle, then words", "sk-ant-api03 in the middle, then words"},
	} {
		if got := RedactCutTail(tc.in); got != tc.want {
			t.Errorf("RedactCutTail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactArgs(t *testing.T) {
	tests := []struct {
		name     string
		in, want []string
	}{
		{"nil", nil, nil},
		{"claude prompt", []string{"claude", "-p", "fix the test"}, []string{"claude", "-p", "fix the test"}},
		{"token next arg", []string{"gh", "auth", "login", "--token", "abc123"}, []string{"gh", "auth", "login", "--token", "[REDACTED]"}},
		{"api key next arg", []string{"aider", "--api-key", "anthropic=sk-x", "--model", "sonnet"}, []string{"aider", "--api-key", "[REDACTED]", "--model", "sonnet"}},
		{"secret flag then flag", []string{"tool", "--auth", "--verbose"}, []string{"tool", "--auth", "--verbose"}},
		{"max tokens", []string{"llm", "--max-tokens", "100"}, []string{"llm", "--max-tokens", "100"}},
		{"curl user", []string{"curl", "-u", "alice:s3cr3t", "https://x"}, []string{"curl", "-u", "alice:[REDACTED]", "https://x"}},
		{"git push -u", []string{"git", "push", "-u", "origin", "main"}, []string{"git", "push", "-u", "origin", "main"}},
		{"env assignment", []string{"env", "GH_TOKEN=abc", "gh", "pr", "list"}, []string{"env", "GH_TOKEN=[REDACTED]", "gh", "pr", "list"}},
		{"positional secret", []string{"aws", "configure", "set", "aws_secret_access_key", "wJalrXUtnFEMI"}, []string{"aws", "configure", "set", "aws_secret_access_key", "[REDACTED]"}},
		{"positional non-secret", []string{"aws", "configure", "set", "default_region", "eu-west-1"}, []string{"aws", "configure", "set", "default_region", "eu-west-1"}},
		{
			"bash -c inline",
			[]string{"/bin/bash", "-c", "git push https://x-access-token:" + ghToken + "@github.com/o/r.git HEAD"},
			[]string{"/bin/bash", "-c", "git push https://x-access-token:[REDACTED]@github.com/o/r.git HEAD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.in)
			got := RedactArgs(tt.in)
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("RedactArgs(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if !slices.Equal(tt.in, orig) {
				t.Errorf("input mutated: %q, was %q", tt.in, orig)
			}
		})
	}
}

func FuzzRedactString(f *testing.F) {
	seeds := []string{
		"", "claude -p 'fix the test'", "GITHUB_TOKEN=abc", "--token x", "curl -u a:b https://x",
		"https://u:p@h/", "Authorization: Bearer x", jwtToken, "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt",
		"TOKEN=\"a b\" x='y'", "x=TOKEN=abc", "--api-key=--token=a",
	}
	for _, s := range seeds {
		f.Add(s, uint(0))
	}
	f.Fuzz(func(t *testing.T, s string, at uint) {
		once := RedactString(s)
		if twice := RedactString(once); twice != once {
			t.Fatalf("not idempotent:\n in  %q\n 1st %q\n 2nd %q", s, once, twice)
		}
		// The keywords of a hand-written rule are a necessary condition of what it redacts:
		// the prefilter never leaves out a rule that would have changed s.
		_, filter := redaction()
		set := filter.match(s)
		selected := slices.Collect(set.all())
		for i := range redactRules {
			if redactRules[i].apply(s) != s && !slices.Contains(selected, i) {
				t.Fatalf("rule %d (%s) redacts %q, but the prefilter leaves it out", i, redactRules[i].re, s)
			}
		}
		// A GitHub token planted anywhere in the input must not survive.
		i := int(at % uint(len(s)+1))
		planted := s[:i] + ghToken + s[i:]
		if out := RedactString(planted); strings.Contains(out, ghToken) {
			t.Fatalf("token survived: in %q out %q", planted, out)
		}
	})
}

// benchArgvs are the argv shapes RedactArgs sees on every exec event: a short command, an
// agent's bash -c script of about 2 KiB, and a compiler line near the kernel's 4 KiB argv cut.
var benchArgvs = func() map[string][]string {
	script := `source /root/.claude/shell-snapshots/snapshot-bash-1754331234567-abc123.sh 2>/dev/null || true && eval 'set -euo pipefail
cd /home/dev/src/github.com/example/service
for pkg in ./internal/store ./internal/api ./cmd/server; do
  go test -count=1 -run "TestHandler|TestStore" "$pkg" 2>&1 | tail -n 20
done
grep -rn "func (s \*Server) handle" internal/api/*.go | head -40
sed -n "120,180p" internal/api/routes.go
git --no-pager log --oneline -n 15 -- internal/api
git --no-pager diff --stat HEAD~3..HEAD
cat > /tmp/notes.md <<NOTES
# Investigation
The request timeout comes from the upstream client, which retries three times with backoff.
Check the refresh path: the session cache keeps stale entries after a restart.
NOTES
find . -name "*.go" -newer go.mod -not -path "./vendor/*" | xargs wc -l | sort -n | tail -n 10
docker compose -f deploy/docker-compose.yml ps --format "table {{.Name}}\t{{.Status}}"
kubectl --context staging -n service get pods -l app=service -o wide
python3 scripts/report.py --input build/results.json --format markdown --limit 50 > /tmp/report.md
jq -r ".tests[] | select(.status == \"fail\") | .name" build/results.json | sort | uniq -c
npm --prefix web run lint -- --max-warnings 0
make -C web build OUT=/tmp/web-dist VERBOSE=1' < /dev/null && pwd -P >| /tmp/claude-5f3a-cwd`
	for len(script) < 2048 {
		script += "\necho done"
	}
	cc := []string{"/usr/bin/cc", "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-fPIC", "-pthread"}
	for i, n := 0, 0; n < 4096; i++ {
		a := fmt.Sprintf("-I/home/dev/src/project/third_party/module%02d/include", i)
		if i%3 == 1 {
			a = fmt.Sprintf("-DCONFIG_FEATURE_%02d=1", i)
		} else if i%3 == 2 {
			a = fmt.Sprintf("src/subsystem%02d/file_%02d.c", i/10, i)
		}
		cc = append(cc, a)
		n += len(a) + 1
	}
	return map[string][]string{
		"short":  {"git", "status", "--short"},
		"bash2k": {"/bin/bash", "-c", script},
		"argv4k": cc,
	}
}()

// BenchmarkRedactArgs measures the redaction every exec event's argv goes through on the
// sensor's one CPU.
func BenchmarkRedactArgs(b *testing.B) {
	for _, name := range []string{"short", "bash2k", "argv4k"} {
		argv := benchArgvs[name]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				RedactArgs(argv)
			}
		})
	}
}

// TestRedactKeywords checks what RedactString's single keyword look-up relies on: keywords
// are lower case, and no redaction can make one appear ([REDACTED] holds none and none spans
// its brackets), so the rules chosen for the input stay the only ones that can match.
func TestRedactKeywords(t *testing.T) {
	marker := strings.ToLower(Redacted)
	redactAll, _ := redaction()
	for i, r := range redactAll {
		for _, k := range r.keywords {
			if k != strings.ToLower(k) {
				t.Errorf("rule %d: keyword %q is not lower case", i, k)
			}
			if strings.Contains(marker, k) || strings.ContainsAny(k, "[]") {
				t.Errorf("rule %d: keyword %q can appear by redaction", i, k)
			}
		}
	}
	if n := len(redactAll) - len(redactRules); n < 200 {
		t.Errorf("%d gitleaks rules loaded, want its 200-odd default rules", n)
	}
}

func TestPrefilterMatch(t *testing.T) {
	rules := []redactRule{
		{keywords: []string{"ghp_"}},
		{keywords: []string{"key", "token"}},
		{},
		{keywords: []string{"@"}},
	}
	p := newPrefilter(rules)
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"git status", []int{2}},
		{"GHP_abc", []int{0, 2}},
		{"my_TOKEN=x", []int{1, 2}},
		{"\u212Aey", []int{1, 2}}, // the Kelvin sign, which (?i)k matches
		{"a@b", []int{2, 3}},
		{"", []int{2}},
	} {
		set := p.match(tc.in)
		got := slices.Collect(set.all())
		if !slices.Equal(got, tc.want) {
			t.Errorf("match(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestWordSet(t *testing.T) {
	ws := newWordSet([]string{"ab", "abc", "b", "zz"})
	var got []int
	ws.each([]byte("xabcbzz"), func(w int) bool { got = append(got, w); return true })
	if want := []int{0, 1, 2, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("each = %v, want %v", got, want)
	}
	if !ws.any("XXZZ") || ws.any("xyz") {
		t.Error("any is wrong")
	}
}
