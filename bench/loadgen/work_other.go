//go:build !linux

package main

import (
	"errors"
	"runtime"
)

// worker exists so main.go builds everywhere; the loops use Linux system calls directly.
type worker struct {
	eventsPerOp map[string]int
	target      string
}

func (*worker) loop(int) error            { return nil }
func (*worker) warmUp(int) error          { return nil }
func (*worker) events(int) map[string]int { return nil }
func (*worker) close()                    {}

func newWorker(string, settings, int, int) (*worker, error) {
	return nil, errors.New("loadgen runs on Linux only for now (GOOS=" + runtime.GOOS + ")")
}
