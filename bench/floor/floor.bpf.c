//go:build ignore

// The overhead floor: empty programs on exactly the hooks Vigil attaches (bpf/vigil.bpf.c,
// linux/ebpf_linux.go). Any syscall tracepoint switches every task onto the syscall-work slow
// path, so this is the least any sensor on these hooks can cost; Vigil's untracked overhead is
// measured against it (research/ebpf-feasibility.md §7).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("tp_btf/sched_process_exec")
int floor_exec(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_fork")
int floor_fork(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exit")
int floor_exit(void *ctx)
{
	return 0;
}

// One program for every syscall tracepoint, attached five times by floor.Attach: Vigil has
// one program per syscall exit, and an empty body does not care which tracepoint fired.
SEC("tracepoint/syscalls/sys_exit_openat")
int floor_syscall(void *ctx)
{
	return 0;
}
