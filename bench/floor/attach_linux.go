package floor

import (
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/vigil-sensor/vigil/linux"
)

// attached holds the loaded programs and their links until Close.
type attached struct {
	objs  FloorObjects
	links []link.Link
}

// Attach loads the empty programs and attaches them to Vigil's hooks: tp_btf
// sched_process_exec/fork/exit and io_uring_complete, Vigil's syscall exit tracepoints, and
// the cgroup connect and sendmsg hooks at the cgroup2 root.
// Closing the result detaches everything. It mounts tracefs first when it is missing, because
// cilium/ebpf caches a failed tracefs lookup for the life of the process.
func Attach() (io.Closer, error) {
	if _, err := linux.EnsureTracefs(); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("floor: remove memlock limit: %w", err)
	}
	a := &attached{}
	if err := LoadFloorObjects(&a.objs, nil); err != nil {
		return nil, fmt.Errorf("floor: load programs: %w", err)
	}
	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"sched_process_exec", a.objs.FloorExec},
		{"sched_process_fork", a.objs.FloorFork},
		{"sched_process_exit", a.objs.FloorExit},
		{"io_uring_complete", a.objs.FloorIoUring},
	} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p.prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("floor: attach tp_btf/%s: %w", p.name, err), a.Close())
		}
		a.links = append(a.links, l)
	}
	for _, name := range linux.SyscallTracepoints() {
		l, err := link.Tracepoint("syscalls", name, a.objs.FloorSyscall, nil)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("floor: attach tracepoint syscalls/%s: %w", name, err), a.Close())
		}
		a.links = append(a.links, l)
	}
	root, err := linux.EnsureCgroup2()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("floor: %w", err), a.Close())
	}
	progs := map[ebpf.AttachType]*ebpf.Program{
		ebpf.AttachCGroupInet4Connect: a.objs.FloorConnect4, ebpf.AttachCGroupInet6Connect: a.objs.FloorConnect6,
		ebpf.AttachCgroupUnixConnect: a.objs.FloorConnectUnix, ebpf.AttachCGroupUDP4Sendmsg: a.objs.FloorSendmsg4,
		ebpf.AttachCGroupUDP6Sendmsg: a.objs.FloorSendmsg6, ebpf.AttachCgroupUnixSendmsg: a.objs.FloorSendmsgUnix,
	}
	for _, typ := range linux.EgressAttachTypes() {
		prog, ok := progs[typ]
		if !ok {
			return nil, errors.Join(fmt.Errorf("floor: no empty program for cgroup hook %s", typ), a.Close())
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: root, Attach: typ, Program: prog})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("floor: attach cgroup hook %s: %w", typ, err), a.Close())
		}
		a.links = append(a.links, l)
	}
	return a, nil
}

// Close detaches the programs and frees them.
func (a *attached) Close() error {
	var errs []error
	for _, l := range a.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, a.objs.Close())
	return errors.Join(errs...)
}
