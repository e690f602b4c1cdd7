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

// One program for every syscall tracepoint, attached by floor.Attach to each of this
// architecture's (linux.SyscallTracepoints): Vigil has one program per syscall exit, and an
// empty body does not care which tracepoint fired.
SEC("tracepoint/syscalls/sys_exit_openat")
int floor_syscall(void *ctx)
{
	return 0;
}

SEC("tp_btf/io_uring_complete")
int floor_io_uring(void *ctx)
{
	return 0;
}

// The cgroup sock_addr hooks: one program per attach type (the kernel checks a program's
// expected attach type when attaching it); each allows the call.
SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int floor_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect_unix")
int floor_connect_unix(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int floor_sendmsg4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg6")
int floor_sendmsg6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg_unix")
int floor_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return 1;
}
