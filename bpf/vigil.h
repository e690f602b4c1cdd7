// Records shared by the eBPF programs (vigil.bpf.c) and the Go decoder (linux/). bpf2go
// generates the Go mirror of these structs, and of the enums the decoder reads (-type in
// gen.go): a value the decoder needs is an enum, not a #define, so that it is never copied by
// hand. Keep fields naturally aligned so both sides agree.
#ifndef VIGIL_H
#define VIGIL_H

#define MAX_TRACKED 65536
#define NAME_KEY 32         // basename key size (31 chars + NUL)
#define FILENAME_SLOT 256   // execve filename as passed
#define ARGV_SLOT 4096      // argv bytes kept per exec
#define PATH_SLOT 1024      // walked path bytes (components written from the leaf up)
#define NAME_SLOT 256       // one path component
#define PATH_DEPTH 64       // path components (and mount crossings) walked at most
#define ENV_KEYS 16         // join-key value slots; user space assigns them (env_keys)
#define ENV_NAME_KEY 32     // a join key's variable name (31 chars + NUL)
#define ENV_VALUE_SLOT 128
#define ENV_MAX_STRINGS 4096 // environment strings (and 256-byte chunks of long ones) scanned per exec

#define AT_FDCWD_VALUE -100
#define O_WRONLY_VALUE 01
#define O_CREAT_VALUE 0100
#define O_TRUNC_VALUE 01000
#define AF_UNIX_VALUE 1
#define AF_INET_VALUE 2
#define AF_INET6_VALUE 10

enum event_kind {
	EVENT_EXEC = 1,
	EVENT_FORK = 2,
	EVENT_EXIT = 3,
	EVENT_OPEN = 4,
	EVENT_CONNECT = 5,
	EVENT_MUTATE = 6,
	EVENT_SEND = 7, // a datagram sent to a named destination (connect_event layout)
	EVENT_OPEN_MERGED = 8, // repeats of a run's first open (merged_event)
};

// What a mutate record did (mutate_event.op): one record layout for every file mutation.
enum mutate_op {
	MUTATE_RENAME = 1,   // rename, renameat, renameat2: path = destination, path2 = source
	MUTATE_UNLINK = 2,   // unlink, unlinkat without AT_REMOVEDIR
	MUTATE_RMDIR = 3,    // rmdir, unlinkat with AT_REMOVEDIR
	MUTATE_LINK = 4,     // link, linkat: path = the new link, path2 = the existing file
	MUTATE_SYMLINK = 5,  // symlink, symlinkat: path = the new link, path2 = the target string as given
	MUTATE_CHMOD = 6,    // chmod, fchmod, fchmodat, fchmodat2: mode
	MUTATE_CHOWN = 7,    // chown, fchown, lchown, fchownat: uid, gid ((u32)-1: unchanged)
	MUTATE_TRUNCATE = 8, // truncate, ftruncate: length
};

// Indexes of the per-CPU drop counters.
enum drop_kind {
	DROP_EXEC = 1,
	DROP_FORK = 2,
	DROP_EXIT = 3,
	DROP_OPEN = 4,
	DROP_CONNECT = 5,
	DROP_TRACK_FULL = 6, // the tracked-process map was full: a process could not be followed
	DROP_MUTATE = 7,
	DROP_SEND = 8,
	// Not a record lost but an operation no probe reports: an io_uring request of a tracked
	// process that changes files (rename, unlink, mkdir, symlink, link, ftruncate) completed.
	DROP_IO_URING_UNSEEN = 9,
	// Opens lost with a merged record the ring had no room for: its count, not 1.
	DROP_OPEN_MERGED = 10,
	DROP_KINDS = 11,
};

// Tracked-process flags (track_entry.flags, event_header.track_flags).
enum track_flag {
	TRACK_PENDING = 1,  // interpreter exec awaiting user space's verdict from argv
	TRACK_REJECTED = 2, // user space said: not an agent; children are not followed
};

// Truncation bits (the records' truncated).
enum trunc_flag {
	TRUNC_ARGV = 1,
	TRUNC_EXE = 2,
	TRUNC_CWD = 4,
	TRUNC_PATH = 8,
	TRUNC_WALK = 16,
	TRUNC_PATH2 = 32, // mutate records: the second path's caller string
	TRUNC_WALK2 = 64, // mutate records: the second path's walked directory
};

// What the exec record says about the executed file (exe_flags).
enum exe_flag {
	EXE_UNLINKED = 1, // no name left in the file system (deleted, or a memfd)
	EXE_INTERNAL = 2, // on a kernel-internal mount (memfd, shmem): exe holds the file's name only
};

// An io_uring open (open_event.io_uring); 0 for the open syscalls.
#define OPEN_IO_URING 1       // installed a descriptor (or failed)
#define OPEN_IO_URING_FIXED 2 // into a fixed-file slot: no descriptor, so no path

// What the open record's walk buffer holds.
enum walk_kind {
	WALK_NONE = 0,
	WALK_FILE = 1,   // the opened file's own path (every successful open): the kernel's truth
	WALK_CWD = 2,    // the working directory (failed relative open, dirfd AT_FDCWD)
	WALK_DIRFD = 3,  // the directory dirfd names (failed relative open with a dirfd)
	WALK_PSEUDO = 4, // a file of a kernel-internal mount (pipe, socket, anon inode, memfd): its name
};

// A join key's variable name, zero-padded: the key of env_keys.
struct env_name {
	__u8 name[ENV_NAME_KEY];
};

struct track_entry {
	__u32 root;  // tgid of the agent process at the top of the tree
	__u32 agent; // catalog id; 0 while pending
	__u32 flags;
	__u32 pad;
	// The root's start, CLOCK_BOOTTIME ns (0: unknown): (root, root_start) names the root
	// process, so user space's verdict on a pending root touches only that root's tree, not
	// the tree of a later process that took the same pid.
	__u64 root_start;
};

struct name_key {
	__u8 name[NAME_KEY];
};

struct inode_key {
	__u64 dev; // kernel dev_t (MAJOR << 20 | MINOR)
	__u64 ino;
};

struct event_header {
	__u64 ts;       // CLOCK_BOOTTIME ns
	__u64 start_ns; // process start, CLOCK_BOOTTIME ns: (pid, start_ns) identifies the process
	__u32 kind;
	__u32 pid; // tgid
	__u32 tid;
	__u32 ppid;
	__u32 root;
	__u32 agent;
	__u32 track_flags;
	__u32 uid;
	__u32 gid;
	__u32 pad;
	__u8 comm[16];
};

struct exec_event {
	struct event_header hdr;
	__u32 argc;
	__u32 argv_len;
	__u32 filename_len;
	__u32 exe_len;
	__u32 cwd_len;
	__u32 truncated;
	__u32 env_found; // bit per enum env_key
	__u32 exe_flags; // EXE_* bits
	// The executed file's identity (bprm->file->f_inode): what the hash must be of.
	__u64 exe_dev; // kernel dev_t (MAJOR << 20 | MINOR)
	__u64 exe_ino;
	__s64 exe_ctime_sec; // inode change time
	__u32 exe_ctime_nsec;
	__u32 pad;
	__u8 filename[FILENAME_SLOT];
	__u8 argv[ARGV_SLOT];
	__u8 exe[PATH_SLOT + NAME_SLOT];
	__u8 cwd[PATH_SLOT + NAME_SLOT];
	__u8 env[ENV_KEYS][ENV_VALUE_SLOT];
};

struct exit_event {
	struct event_header hdr;
	__u32 exit_code; // wait status: exit status << 8 | terminating signal
	__u32 pad;
};

struct open_event {
	struct event_header hdr;
	__s32 ret;
	__u32 flags;
	__u32 mode;
	__s32 dfd;
	__u32 truncated;
	__u32 path_len;
	__u32 walk_kind;
	__u32 walk_len;
	__u32 io_uring; // OPEN_IO_URING*: an io_uring open (IORING_OP_OPENAT, OPENAT2) at its completion
	__u32 merge;    // MERGE_RUN_START: this record starts a merge run; its hdr.ts names the run
	// Walked from the kernel's objects, leaf first; a successful open's record ends after
	// walk_len bytes of it.
	__u8 walk[PATH_SLOT + NAME_SLOT];
	__u8 path[PATH_SLOT]; // failed opens only: the path as the caller passed it
};

// open_event.merge.
enum merge_flag {
	MERGE_RUN_START = 1,
};

// How long a merge run may last: an open more than this after the run's last open, or after
// its first record, starts a new run. So a run idle longer is over (user space reports it),
// and a continuous flood still yields a merged record each window.
enum merge_limit {
	MERGE_WINDOW_NS = 1000000000,
};

// A run of identical successful opens by one thread (the open_runs map, keyed by tid): the
// run's first open is a full record (open_event with MERGE_RUN_START), its repeats are only
// counted here and reported by one merged_event when the run ends. Only the owning thread
// writes its slot; user space reads it to report runs that went idle. A copy is consistent
// when seq_done == seq_busy: the writer bumps seq_busy (the last word) first and sets
// seq_done (the first word) last, so a copy made front to back that overlapped a write sees
// them differ.
struct open_run {
	__u64 seq_done;
	__u64 run;      // hdr.ts of the run's first record: (tid, run) names the run
	__u64 first_ts; // the first and last repeat, CLOCK_BOOTTIME ns (count > 0)
	__u64 last_ts;
	__u64 start_ns; // the process's start: a reused tid is another run
	__u64 epoch;    // merge_epoch when the run began: a tool-call boundary ends it
	__u64 dev;      // the file's identity (kernel dev_t, inode)
	__u64 ino;
	__u64 dentry; // kernel addresses: another name (hard link) or mount of the file is another run
	__u64 mnt;
	__u32 count; // repeats after the first record
	__u32 pid;   // tgid
	__u32 tid;
	__u32 root;
	__u32 agent;
	__u32 track_flags;
	__u32 uid;
	__u32 gid;
	__u32 flags; // the open's flags, mode and OPEN_IO_URING* kind
	__u32 mode;
	__u32 io_uring;
	__u32 pad;
	__u64 seq_busy;
};

// The repeats of a merge run (EVENT_OPEN_MERGED): hdr.ts is when the run ended, the
// repeats' own times are first_ts and last_ts. The run's path and process details are those
// of its first record, which user space keeps by (tid, run).
struct merged_event {
	struct event_header hdr;
	__u64 run;
	__u64 first_ts;
	__u64 last_ts;
	__u64 dev;
	__u64 ino;
	__u32 count;
	__u32 flags;
	__u32 mode;
	__u32 io_uring;
};

// What a network record (connect_event) knows about its address and result.
enum net_flag {
	NET_KERNEL_ADDR = 1, // addr is the kernel's copy of the address (cgroup hook), not re-read from the caller's memory
	NET_RESULT = 2,      // ret is the call's result (connect(2) at its exit); otherwise the record was taken as the kernel began the call
	NET_IO_URING = 4,    // made through io_uring (an io worker, or inline in io_uring_enter)
};

// A connect (EVENT_CONNECT) or a datagram sent to a named destination (EVENT_SEND: sendto,
// sendmsg, sendmmsg, io_uring sends). Sends on a connected socket are not records: the
// socket's connect already named the peer.
struct connect_event {
	struct event_header hdr;
	__s32 ret;
	__u32 fd;
	__u32 addrlen;
	__u32 net_flags; // NET_* bits
	__s32 syscall;   // the system call the process was in (this architecture's number), -1 for an io worker
	__u32 pad;
	__u8 addr[112]; // sockaddr_un is the largest kept (110 bytes)
};

// The kernel's copy of a connect(2)'s address, kept by the cgroup hook for the syscall's
// exit program, which adds the result.
struct connect_stash {
	__u32 fd;
	__u32 addrlen;
	__u8 addr[112];
};

// A file mutation (enum mutate_op), at the syscall's exit. A call that names its file by
// descriptor (fchmod, fchown, ftruncate, *at with AT_EMPTY_PATH) has the file walked
// (walk_kind WALK_FILE, no caller string); a call that names a path has the caller's string
// in path and, when it is relative, the directory it is relative to walked (WALK_CWD,
// WALK_DIRFD). The second path (rename source, link target) has the same shape.
struct mutate_event {
	struct event_header hdr;
	__s32 ret;
	__u32 op;
	__u32 flags; // the call's flags (renameat2, unlinkat, linkat, fchmodat2, fchownat)
	__u32 mode;  // chmod: the new mode
	__u32 uid;   // chown: the new owner, (u32)-1 when unchanged
	__u32 gid;
	__s64 length; // truncate: the new length
	__u32 truncated;
	__u32 path_len;
	__u32 walk_kind;
	__u32 walk_len;
	__u32 path2_len;
	__u32 walk2_kind;
	__u32 walk2_len;
	__u32 pad;
	__u8 walk[PATH_SLOT + NAME_SLOT];
	__u8 path[PATH_SLOT];
	__u8 walk2[PATH_SLOT + NAME_SLOT];
	__u8 path2[PATH_SLOT];
};

struct env_scratch {
	__u8 tmp[256];
	__u8 val[ENV_KEYS][ENV_VALUE_SLOT];
	__u32 found;
	__u32 pad;
};

#endif
