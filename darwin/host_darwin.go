package darwin

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// NewLive starts the live EndpointSecurity source: /usr/bin/eslogger, supervised, and the
// agent trees already running found by sysctl. It needs root and Full Disk Access for the
// sensor (an MDM PPPC profile); without them it fails with eslogger's reason. Telemetry
// senders cannot be looked up on macOS yet: Started().Peers is nil.
func NewLive(opts Options) (*Source, error) {
	return newLive(opts, supervisorOptions{Path: EsloggerPath}, sysctlHost{})
}

// sysctlHost reads the process list and the boot id through sysctl(3), without cgo.
type sysctlHost struct{}

func (sysctlHost) bootID() (string, error) {
	id, err := unix.Sysctl("kern.bootsessionuuid")
	if err != nil {
		return "", fmt.Errorf("read boot id (kern.bootsessionuuid): %w", err)
	}
	return id, nil
}

// processes lists every process (kern.proc.all) with its exec path and argv
// (kern.procargs2, root needed for other users' processes). A process that exits meanwhile,
// or whose arguments cannot be read, is listed without them.
func (sysctlHost) processes() ([]procSnap, error) {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, fmt.Errorf("list processes (kern.proc.all): %w", err)
	}
	out := make([]procSnap, 0, len(kps))
	for i := range kps {
		kp := &kps[i]
		pid := int(kp.Proc.P_pid)
		if pid == 0 { // kernel_task
			continue
		}
		tv := kp.Proc.P_starttime
		p := procSnap{
			Pid: pid, PPid: int(kp.Eproc.Ppid),
			Start: uint64(tv.Sec)*1e9 + uint64(tv.Usec)*1e3,
			Name:  unix.ByteSliceToString(kp.Proc.P_comm[:]),
			UID:   int(kp.Eproc.Pcred.P_ruid), GID: int(kp.Eproc.Pcred.P_rgid),
		}
		if raw, err := unix.SysctlRaw("kern.procargs2", pid); err == nil {
			if exe, args, err := parseProcArgs(raw); err == nil {
				p.Executable, p.Args = exe, args
			}
		}
		out = append(out, p)
	}
	return out, nil
}
