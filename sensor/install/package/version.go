package main

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// afterTagRE is the suffix git describe adds past a tag: commits since it and the hash.
	afterTagRE = regexp.MustCompile(`-(\d+)-g([0-9a-f]{4,40})$`)
	// tagRE is a release tag: v1.2.3, or v1.2.3-rc.1 for a prerelease.
	tagRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+))?$`)
	// hashRE is what git describe --always prints when no tag is reachable.
	hashRE = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// wordRE is any other name (the Makefile's "dev" when git is missing).
	wordRE = regexp.MustCompile(`^[0-9A-Za-z.]+$`)
)

// packageVersion turns `git describe --tags --always --dirty` into a version that dpkg and rpm
// both accept and order the way the builds were made:
//
//	v1.2.3                   1.2.3
//	v1.2.3-rc.1              1.2.3~rc.1               a prerelease sorts before its release (~)
//	v1.2.3-4-gabc1234        1.2.3+4.gabc1234         commits past a tag sort after it (+)
//	v1.2.3-4-gabc1234-dirty  1.2.3+4.gabc1234.dirty
//	abc1234-dirty            0.0.0~gabc1234.dirty     no tag reachable
//	dev                      0.0.0~dev
//
// Both formats want a version that starts with a digit and holds no '-' (dpkg splits the
// Debian revision at the last one, rpm the release), and a bare hash may start with a letter.
// Hashes have no order either, so an untagged build sorts below every release (0.0.0~): the
// first tagged package upgrades it. Between two untagged builds the order is arbitrary, which
// is why fleets install tagged builds (dpkg -i and rpm -U --oldpackage take either way).
func packageVersion(describe string) (string, error) {
	s, dirty := strings.CutSuffix(describe, "-dirty")
	var meta []string
	if m := afterTagRE.FindStringSubmatch(s); m != nil {
		meta = append(meta, m[1], "g"+m[2])
		s = strings.TrimSuffix(s, m[0])
	}
	if dirty {
		meta = append(meta, "dirty")
	}
	if m := tagRE.FindStringSubmatch(s); m != nil {
		v := m[1]
		if m[2] != "" {
			v += "~" + strings.ReplaceAll(m[2], "-", ".")
		}
		if len(meta) > 0 {
			v += "+" + strings.Join(meta, ".")
		}
		return v, nil
	}
	switch {
	case len(meta) > 0 && !dirty || len(meta) > 1:
		// a describe suffix after something that is not a release tag
		return "", fmt.Errorf("version %q: %q is not a release tag (vX.Y.Z or vX.Y.Z-pre)", describe, s)
	case hashRE.MatchString(s):
		s = "g" + s
	case !wordRE.MatchString(s):
		return "", fmt.Errorf("version %q is neither a release tag, a commit hash nor a plain word", describe)
	}
	return "0.0.0~" + strings.Join(append([]string{s}, meta...), "."), nil
}
