package main

import (
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/correlate/workflow"
)

// traceMaxProcesses bounds the processes vigil trace follows at once to tell start-up and
// secret reads (workflow.Options.MaxProcesses); a variable so that tests can lower it.
var traceMaxProcesses = workflow.DefaultMaxProcesses

// startupCounts says one process's start-up reads in words: "23 (loader 19, locale 3, shell 1)".
func startupCounts(r workflow.StartupReads) string {
	parts := make([]string, 0, len(startup.Kinds))
	for _, k := range startup.Kinds {
		if n := r.Kinds[k]; n > 0 {
			parts = append(parts, string(k)+" "+strconv.Itoa(n))
		}
	}
	return strconv.Itoa(r.Total) + " (" + strings.Join(parts, ", ") + ")"
}

// imageKey names a process image: the exec of Process, the image of StartupReads.
func imageKey(pid int, entityID string, exec time.Time) string {
	var stamp string
	if !exec.IsZero() {
		stamp = strconv.FormatInt(exec.UnixNano(), 10)
	}
	return strconv.Itoa(pid) + "\x00" + entityID + "\x00" + stamp
}

// startupFolds are the start-up reads of an activity, to be shown beneath the process that
// ran each image when the activity shows its exec.
type startupFolds struct {
	reads []workflow.StartupReads
	taken []bool
	byKey map[string]int
}

func foldStartup(reads []workflow.StartupReads) *startupFolds {
	s := &startupFolds{reads: reads, taken: make([]bool, len(reads)), byKey: map[string]int{}}
	for i, r := range reads {
		if !r.ExecTime.IsZero() {
			s.byKey[imageKey(r.Pid, r.EntityID, r.ExecTime)] = i
		}
	}
	return s
}

// take returns the reads of the image p runs, and marks them shown.
func (s *startupFolds) take(p workflow.Process) (workflow.StartupReads, bool) {
	i, ok := s.byKey[imageKey(p.Pid, p.EntityID, p.Time)]
	if !ok || s.taken[i] {
		return workflow.StartupReads{}, false
	}
	s.taken[i] = true
	return s.reads[i], true
}

// rest returns the reads not taken, in first-read order.
func (s *startupFolds) rest() []workflow.StartupReads {
	var out []workflow.StartupReads
	for i, r := range s.reads {
		if !s.taken[i] {
			out = append(out, r)
		}
	}
	return out
}

// readListMax is how many files of one shape one process can read in one activity and still
// have them listed one by one in the text: more are one counted line. Eight lines still read
// at a glance, and a command names fewer of its files (in the 48 bench/e2e scenarios no tool
// call's process read more than 5 files of one shape: git reading .git/HEAD, config,
// index...), so what a call was asked to read stays listed file by file. Bulk reads are far
// above it: ps aux (Claude Code's editor check) reads 37 to 109 files of each /proc/<pid>/
// shape, the claude process about 140 CA certificates of one directory, and it probes 12 to 33
// files of ~/.claude/. Codex probes 8 or 9 files of ~/.codex/, at the threshold; the agents'
// other configuration probes, 6 or 7 files of one directory, stay listed.
const readListMax = 8

// readLine is one line of an activity's files read: a file on its own (Folded 0), or the files
// of one shape read by one process, folded (Shape, Folded, FoldedFailed; File is the first of
// them).
type readLine struct {
	workflow.File
	Shape        string
	Folded       int
	FoldedFailed int
}

// foldReads decides from the reads themselves, not from a list of paths, which files read
// are shown as one counted line: the files one process read of one shape, when they are more
// than readListMax. A shape is first the path with each all-digit component replaced by *
// (/proc/*/stat: ps reading every process), then, for the files left, the directory
// (/etc/ssl/certs/). A secret read (File.Secret), any read of a secret-looking path (failed,
// O_PATH or by its own client), and a file with write flags are never folded: each stays on
// its own line, and counts toward no shape. The lines keep first-read order: a fold stands
// where its first file was. Writes are never passed here.
func foldReads(files []workflow.File) []readLine {
	keys := make([]string, len(files))
	count := map[string]int{}
	tally := func(key func(workflow.File) string) {
		clear(count)
		for i, f := range files {
			if keys[i] == "" && foldable(f) {
				if k := key(f); k != "" {
					count[strconv.Itoa(f.Pid)+"\x00"+k]++
				}
			}
		}
		for i, f := range files {
			if keys[i] == "" && foldable(f) {
				if k := key(f); k != "" && count[strconv.Itoa(f.Pid)+"\x00"+k] > readListMax {
					keys[i] = k
				}
			}
		}
	}
	tally(numericShape)
	tally(func(f workflow.File) string {
		d := path.Dir(f.Path)
		if d == "/" || d == "." {
			return d
		}
		return d + "/"
	})

	out := make([]readLine, 0, len(files))
	at := map[string]int{}
	for i, f := range files {
		if keys[i] == "" {
			out = append(out, readLine{File: f})
			continue
		}
		k := strconv.Itoa(f.Pid) + "\x00" + keys[i]
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, readLine{File: f, Shape: keys[i]})
		}
		out[j].Folded++
		if f.Failed {
			out[j].FoldedFailed++
		}
	}
	return out
}

// numericShape is p with each all-digit component replaced by *, or "" when p has none.
func numericShape(f workflow.File) string {
	parts := strings.Split(f.Path, "/")
	n := 0
	for i, c := range parts {
		if c != "" && strings.Trim(c, "0123456789") == "" {
			parts[i] = "*"
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return strings.Join(parts, "/")
}

// foldable: a plain read of a path that does not look like a secret.
func foldable(f workflow.File) bool {
	return !f.Secret && !rules.SecretLooking(f.Path) && !f.Create && !f.Truncate && f.TempPath == "" &&
		f.Access != "write" && f.Access != "read_write"
}
