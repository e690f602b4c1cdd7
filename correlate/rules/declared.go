package rules

import (
	"net/netip"
	"path"
	"strings"
)

// What a tool call declared: the command text the agent showed (Bash, shell, exec_command)
// and the files a file tool names (Read, Write, Edit, apply_patch). Its undeclared effects
// are the secret files its subtree read and the internet endpoints it reached that the
// declaration does not name: `make test` whose Makefile reads ~/.aws/credentials, an `npm
// install` whose postinstall script connects out. What counts as "named" is deliberately
// generous (a missed alert costs less here than an alert on every build): the cred.* and
// exfil.* rules still see every read and connection.

// declaration is a tool call's declared input, split into the words a shell would see.
type declaration struct {
	// words are the command's words with shell quoting, redirections and operators taken
	// apart, and the parts after "@" and "=" (curl -d @.env, --file=x) as words of their own.
	words []string
	// programs are the base names of the words: the programs the command can start by name.
	programs map[string]bool
	// text is the command as shown, for address literals.
	text string
	// files are the absolute paths a file tool named.
	files map[string]bool
	// repo is the session's working directory ("" unknown).
	repo string
}

// shellSeparators split a command into words; quotes are dropped, so 'cat ".env"' has the
// word .env.
const shellSeparators = " \t\n\r|;&()<>`\"'=@,"

// declare builds the declaration of a reported call in a session whose repository is repo.
func declare(c *callState, repo string) *declaration {
	d := &declaration{programs: map[string]bool{}, text: c.command, files: map[string]bool{}, repo: repo}
	d.words = strings.FieldsFunc(c.command, func(r rune) bool { return strings.ContainsRune(shellSeparators, r) })
	for _, w := range d.words {
		d.programs[path.Base(w)] = true
	}
	for _, f := range c.filePaths {
		d.files[path.Clean(f)] = true
	}
	return d
}

// homePrefixes are the ways a command names the user's home directory.
var homePrefixes = []string{"~/", "$HOME/", "${HOME}/"}

// namesPath reports whether the declaration names the file at p (absolute, as the kernel
// gave it): a file in the session's repository (a build reading its own tree, test keys
// under testdata/, the .env its framework loads, is the workspace at work), a file tool's path, or a command word that is p itself, p under a home prefix
// (~/.aws/credentials for /home/dev/.aws/credentials, whoever's home), or a relative path
// that p ends with (.env, ../shared/.netrc), wherever the command ran. Words may be globs
// (cat ~/.aws/*), but a one-component glob (*, *.key) names nothing outside the repository.
func (d *declaration) namesPath(p string) bool {
	p = path.Clean(p)
	if d.files[p] || (d.repo != "" && Under(p, d.repo)) {
		return true
	}
	for _, w := range d.words {
		home := false
		for _, pre := range homePrefixes {
			if strings.HasPrefix(w, pre) {
				w, home = strings.TrimPrefix(w, pre), true
				break
			}
		}
		if w == "" || w == "~" {
			continue
		}
		if path.IsAbs(w) {
			if matchPath(path.Clean(w), p) {
				return true
			}
			continue
		}
		rel := path.Clean(w)
		for strings.HasPrefix(rel, "../") {
			rel = rel[3:] // ../.env names a file called .env somewhere above
		}
		if rel == "." || rel == ".." {
			continue
		}
		n := strings.Count(rel, "/") + 1
		tail := lastComponents(p, n)
		if tail == "" || !matchPath(rel, tail) {
			continue
		}
		if home || n > 1 || !strings.ContainsAny(rel, "*?[") {
			return true // a bare * names everything in the directory the shell is in, not ~/.aws
		}
	}
	return false
}

// namesDestination reports whether the declaration names a connection made by program to ip:
// the address literal is in the command, or the program that connected is one the command
// starts by name (`curl https://…`, `git push`, `npm install`: connecting is what the named
// program does). A program the command does not name (the script a postinstall hook runs,
// the curl a Makefile runs) is not declared by it.
func (d *declaration) namesDestination(ip, program string) bool {
	if d.startsProgram(program) {
		return true
	}
	if ip == "" {
		return false
	}
	if strings.Contains(d.text, ip) {
		return true
	}
	if a, err := netip.ParseAddr(ip); err == nil && a.Is4In6() {
		return strings.Contains(d.text, a.Unmap().String())
	}
	return false
}

// startsProgram reports whether the command starts program by name, itself or as one of its
// subcommand executables (git-remote-https for git, docker-credential-desktop for docker,
// kubectl-krew for kubectl: the "<program>-<name>" helpers a program runs for itself).
func (d *declaration) startsProgram(program string) bool {
	if program == "" {
		return false
	}
	if d.programs[program] {
		return true
	}
	for i := 1; i < len(program); i++ {
		if program[i] == '-' && d.programs[program[:i]] {
			return true
		}
	}
	return false
}

// lastComponents is the last n components of the clean absolute path p ("" when p has fewer).
func lastComponents(p string, n int) string {
	i := len(p)
	for ; n > 0; n-- {
		j := strings.LastIndexByte(p[:i], '/')
		if j < 0 || (j == 0 && n > 1) {
			return ""
		}
		i = j
	}
	return p[i+1:]
}

// matchPath reports whether pattern (a path, maybe with glob characters) matches name.
func matchPath(pattern, name string) bool {
	if pattern == name {
		return true
	}
	if !strings.ContainsAny(pattern, "*?[") {
		return false
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}
