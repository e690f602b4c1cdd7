//go:build !linux

package main

import (
	"errors"
	"runtime"
)

// run: the benchmark drives eBPF and Linux processes; it builds elsewhere only so that
// `GOOS=darwin go vet ./...` covers the platform-neutral report code.
func run(options) error {
	return errors.New("the overhead benchmark runs on Linux only (GOOS=" + runtime.GOOS + ")")
}
