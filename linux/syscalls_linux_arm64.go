package linux

// legacySyscallTracepoints is empty on arm64: its system call table (the generic one) has only
// the *at forms of the path calls, so there is no open, creat, rename, unlink, rmdir, link,
// symlink, chmod, chown or lchown to attach to, and bpf/vigil.bpf.c builds no program for them.
var legacySyscallTracepoints []syscallTracepoint
