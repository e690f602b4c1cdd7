package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/vigil-sensor/vigil/internal/owned"
)

// maxUsers bounds the homes one scan reads.
const maxUsers = 4096

// systemUIDs are below this: accounts of services, not people (Linux distributions start
// people at 1000).
const systemUIDs = 1000

// noLoginShells mark an account nobody logs in to.
var noLoginShells = []string{"nologin", "false"}

// findUsers lists the homes to scan: /etc/passwd's accounts (root, people, and any system
// account with a login shell) whose home exists, then /Users/* (macOS keeps its accounts in
// Directory Services, not in /etc/passwd; the folder's owner is the account).
func (s *scanner) findUsers() {
	seen := map[string]bool{}
	add := func(u User) {
		if len(s.users) >= maxUsers || seen[u.Home] {
			return
		}
		if fi, err := os.Stat(s.host(u.Home)); err != nil || !fi.IsDir() {
			return
		}
		seen[u.Home] = true
		s.users = append(s.users, u)
	}
	b, err := s.read("/etc/passwd", anyOwner)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.fail("/etc/passwd", err)
	}
	for _, u := range parsePasswd(b) {
		add(u)
	}
	if names, err := s.readDir("/Users"); err == nil {
		for _, name := range names {
			home := path.Join("/Users", name)
			fi, err := os.Stat(s.host(home))
			if name == "Shared" || strings.HasPrefix(name, ".") || err != nil || !fi.IsDir() {
				continue
			}
			add(User{Name: name, UID: owned.Owner(fi), Home: home})
		}
	}
	s.r.Users = append(s.r.Users, s.users...)
}

// parsePasswd returns the accounts of an /etc/passwd whose homes are worth scanning: root,
// uids from systemUIDs, and system accounts with a login shell.
func parsePasswd(b []byte) []User {
	var out []User
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil || uid < 0 || !path.IsAbs(f[5]) {
			continue
		}
		noLogin := false
		for _, sh := range noLoginShells {
			noLogin = noLogin || path.Base(f[6]) == sh
		}
		if uid != 0 && uid < systemUIDs && noLogin {
			continue
		}
		out = append(out, User{Name: f[0], UID: uid, Home: path.Clean(f[5])})
	}
	return out
}

// homeOf returns the user whose home holds host path p, if any.
func (s *scanner) homeOf(p string) (User, bool) {
	for _, u := range s.users {
		if u.Home != "/" && within(p, u.Home) {
			return u, true
		}
	}
	return User{}, false
}

// nameOf returns the name of uid among the scanned users, else the number.
func (s *scanner) nameOf(uid int) string {
	for _, u := range s.users {
		if u.UID == uid {
			return u.Name
		}
	}
	return strconv.Itoa(uid)
}

// ownerFor returns the uid a file at host path p must belong to for the scan to read it: the
// user's whose home holds it, anyOwner outside every home.
func (s *scanner) ownerFor(p string) int {
	if u, ok := s.homeOf(p); ok {
		return u.UID
	}
	return anyOwner
}
