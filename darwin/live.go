package darwin

import (
	"fmt"
	"os"
	"time"

	"github.com/vigil-sensor/vigil/sensor"
)

// host is what the live source asks the operating system: sysctls on macOS (host_darwin.go),
// a fake in the tests.
type host interface {
	// bootID names this boot (kern.bootsessionuuid).
	bootID() (string, error)
	// processes lists every running process with its exec path and argv.
	processes() ([]procSnap, error)
}

// earlyExit is how long the constructor waits for eslogger to fail at attaching (no root, no
// Full Disk Access: es_new_client fails at once), so that `vigil run` reports it and stops
// instead of restarting it forever in the background.
const earlyExit = 500 * time.Millisecond

// newLive starts eslogger and then, while its first messages wait in the pipe, takes the
// snapshot of running processes: a process started between the two is in the snapshot or in
// the stream (or both, which the tree filter takes twice without harm), never in neither.
// sup says which eslogger to run and how to restart it; the events, the log and the restart
// counter are set here.
func newLive(opts Options, sup supervisorOptions, h host) (*Source, error) {
	t0 := time.Now()
	bootID, err := h.bootID()
	if err != nil {
		return nil, err
	}
	src := newSource(opts, nil, opts.Catalog.ResolvePaths(), sensor.Started{BootID: bootID})
	sup.Args, sup.Log = Events(), opts.Log
	sup.Restarted = func() { src.lost.add(lostRestart, 1) }
	eslogger := newSupervisor(sup)
	src.streams = eslogger
	if err := eslogger.start(); err != nil {
		return nil, err
	}
	procs, err := h.processes()
	if err != nil {
		eslogger.close()
		return nil, fmt.Errorf("bootstrap running agent trees: %w", err)
	}
	if err := eslogger.failedEarly(earlyExit); err != nil {
		eslogger.close()
		return nil, err
	}
	src.started.Seeded = seedTrees(src.tracker, procs, os.Getpid())
	src.started.Ready = time.Since(t0)
	unreadable := 0
	for _, p := range procs {
		if p.Executable == "" {
			unreadable++
		}
	}
	opts.Log.Debug().Int("processes", len(procs)).Int("unreadable", unreadable).Int("tracked", len(src.started.Seeded)).Msg("bootstrap")
	return src, nil
}
