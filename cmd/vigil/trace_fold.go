package main

import (
	"strconv"
	"strings"
	"time"

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
