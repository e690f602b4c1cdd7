//go:build ignore

// Vigil's kernel side: follow the process trees rooted at known agent binaries and report
// their exec, fork, exit, open and connect events through one ring buffer.
//
// The filter is the point: every probe first looks the current tgid up in `tracked` and
// returns at once when it is absent, so a process outside every agent tree pays one hash
// lookup per probed syscall and nothing else.
//
// Only static tracepoints and tp_btf are used: fentry/fexit/LSM are refused with EPERM on the
// kernels this project targets and kprobes are compiled out (research/ebpf-feasibility.md).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "vigil.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

// Set by user space before load.
const volatile __u32 self_tgid = 0;      // the sensor itself is never tracked
const volatile __u64 wakeup_bytes = 65536; // wake the reader only once this much is queued

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED);
	__type(key, __u32); // tgid
	__type(value, struct track_entry);
} tracked SEC(".maps");

// One byte per tgid, non-zero while the tgid may be in `tracked`: the first check of every
// probe. An array lookup is inlined by the verifier, so a process outside every agent tree
// (almost all of them) pays a few instructions instead of a hash lookup. Set when a tgid
// enters `tracked` (agent exec, fork of a tracked process, user space's bootstrap), cleared
// when its last thread exits. A byte, not a bit, so that user space can set its own bytes
// with plain stores through the mapped memory without racing the kernel's updates of
// neighbouring tgids. A set byte only means "look in the hash".
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4096); // resized by user space: pid_max / 8 words
	__type(key, __u32);
	__type(value, __u64);
} maybe_tracked SEC(".maps");

// Catalog, filled by user space: executable basename → agent id.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct name_key);
	__type(value, __u32);
} agent_names SEC(".maps");

// Catalog: device+inode of known agent executables → agent id.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct inode_key);
	__type(value, __u32);
} agent_inodes SEC(".maps");

// Sizes of the installed agent executables (i_size), filled by user space. A copy of an
// agent binary has a new inode and maybe a new name, but its size: an exec of a file of one
// of these sizes that matched nothing else is held pending while user space compares the
// file's hash with the installed agents'.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} agent_sizes SEC(".maps");

// Interpreter basenames (node, bun, python3…): an untracked exec of one becomes a pending
// root that user space confirms from argv or rejects.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct name_key);
	__type(value, __u32);
} interpreters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); // resized by user space from the configuration
} events SEC(".maps");

// Events that could not be delivered, per CPU and per kind (enum drop_kind).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// Per-CPU scratch space: records are built here and copied to the ring with their real
// length, so a short path does not cost a full-size record.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} exec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} open_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mutate_event);
} mutate_scratch SEC(".maps");

// All zeroes, never written: copied over the exec scratch before each use, so an exec record
// carries nothing of an earlier process (argv, paths) in the bytes past its lengths.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} zero_exec SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct env_scratch);
} env_scratch SEC(".maps");

// The environment allowlist, filled by user space from the agents registry: a join key's
// variable name → the value slot of the exec record it is copied into.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENV_KEYS);
	__type(key, struct env_name);
	__type(value, __u32);
} env_keys SEC(".maps");

// The kernel's copy of the address of each tracked thread's connect(2) in flight, from the
// cgroup hook to the syscall's exit program. LRU: an entry whose exit never came (the
// process left its tree in between) is evicted, never blocks a new one; a connect whose entry
// was evicted is reported with the caller's address, marked as such.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); // tid
	__type(value, struct connect_stash);
} connect_stashes SEC(".maps");

// The running merge run of each thread that opened a file (struct open_run), by tid. Not
// LRU: an eviction would lose a run's count silently; when the map is full, opens are
// reported one by one, as before merging.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TRACKED);
	__type(key, __u32); // tid
	__type(value, struct open_run);
} open_runs SEC(".maps");

// Bumped by user space at every tool-call boundary it learns: a run begun before a bump is
// not extended after it, so no merged record spans two tool calls.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} merge_epoch SEC(".maps");

// The sock_addr hook's kernel context: its uaddr is the kernel's copy of the caller's address.
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

// Make bpf2go emit Go types for these.
const struct exec_event *unused_exec __attribute__((unused));
const struct open_event *unused_open __attribute__((unused));
const struct connect_event *unused_connect __attribute__((unused));
const struct exit_event *unused_exit __attribute__((unused));
const struct mutate_event *unused_mutate __attribute__((unused));
const struct event_header *unused_hdr __attribute__((unused));
const struct env_name *unused_env_name __attribute__((unused));
const struct open_run *unused_open_run __attribute__((unused));
const struct merged_event *unused_merged __attribute__((unused));

// And for the enums the decoder reads: clang keeps a type in the object's BTF only where
// something uses it, and bpf2go generates Go only for types in the BTF.
struct decoder_enums {
	enum event_kind kind;
	enum mutate_op op;
	enum drop_kind drop;
	enum track_flag track;
	enum trunc_flag trunc;
	enum exe_flag exe;
	enum walk_kind walk;
	enum net_flag net;
	enum merge_flag merge;
	enum merge_limit merge_limit;
};
const struct decoder_enums *unused_enums __attribute__((unused));

static __always_inline void count_drop(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

// Batched wakeups: wake the reader only when this record makes the queue cross
// wakeup_bytes. A reader already behind is awake and draining, and waking it again per
// record costs an interrupt each (measured: +170% on a tracked open loop); the reader's
// poll interval bounds the latency of a quiet tree.
static __always_inline __u64 ring_flags(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < wakeup_bytes && avail + size >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(void *rec, __u64 size, __u32 kind)
{
	if (bpf_ringbuf_output(&events, rec, size, ring_flags(size)))
		count_drop(kind);
}

// A syscall interrupted by a signal and restarted by the kernel returns one of the
// ERESTART* codes (512–516) here, which no program ever sees; its retry is reported.
static __always_inline int will_restart(long ret)
{
	return ret <= -512 && ret >= -516;
}

// The tgid's byte in maybe_tracked, or NULL for a tgid beyond the array (pid_max raised after
// load), which then always takes the hash lookup.
static __always_inline __u8 *maybe_tracked_flag(__u32 tgid)
{
	__u32 word = tgid / 8;
	__u8 *w = bpf_map_lookup_elem(&maybe_tracked, &word);
	return w ? w + (tgid & 7) : 0;
}

static __always_inline void set_maybe_tracked(__u32 tgid)
{
	__u8 *f = maybe_tracked_flag(tgid);
	if (f)
		*f = 1;
}

// The tgid's entry in `tracked`, rejected ones included, behind the maybe_tracked check.
static __always_inline struct track_entry *lookup_entry(__u32 tgid)
{
	__u8 *f = maybe_tracked_flag(tgid);
	if (f && !*f)
		return 0;
	return bpf_map_lookup_elem(&tracked, &tgid);
}

// Looks the tgid up; returns NULL for untracked and rejected processes.
static __always_inline struct track_entry *lookup_tracked(__u32 tgid)
{
	struct track_entry *t = lookup_entry(tgid);
	if (!t || (t->flags & TRACK_REJECTED))
		return 0;
	return t;
}

// task is a BTF pointer (a tp_btf argument or bpf_get_current_task_btf), so its fields are
// read with direct loads the JIT guards, not a probe-read helper call each: this header is
// filled for every event and the helper calls were a measurable part of a tracked open.
static __always_inline void fill_header(struct event_header *h, __u32 kind, struct task_struct *task,
					struct track_entry *t)
{
	h->ts = bpf_ktime_get_boot_ns();
	h->kind = kind;
	h->pid = task->tgid;
	h->tid = task->pid;
	h->ppid = task->real_parent->tgid;
	h->start_ns = task->group_leader->start_boottime;
	h->root = t->root;
	h->agent = t->agent;
	h->track_flags = t->flags;
	const struct cred *cred = task->cred;
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	__builtin_memcpy(h->comm, task->comm, sizeof(h->comm)); // NUL-padded by the kernel
}

// Which scratch buffer a path walk writes into.
enum walk_target {
	WALK_TO_EXE,
	WALK_TO_CWD,
	WALK_TO_OPEN,
	WALK_TO_MUTATE,  // a mutate record's first path
	WALK_TO_MUTATE2, // its second path
};

struct path_walk {
	// Kernel addresses, held as numbers: each step turns them back into typed pointers.
	__u64 d;
	__u64 mnt;
	__u64 mnt_root;
	__u32 off;
	__u32 truncated;
	__u32 target;
};

// A kernel address as a typed, read-only pointer. The verifier inlines the cast, and loads
// through it are plain loads the JIT guards against faults, not a probe-read helper call
// each: the walk of a successful open's path runs on every tracked open, and three helper
// calls per component were most of its cost. bpf_rdonly_cast needs Linux 6.2 or later.
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id) __ksym;
#define KPTR(type, addr) ((type *)bpf_rdonly_cast((void *)(addr), bpf_core_type_id_kernel(type)))

// Merging repeated opens (struct open_run). A thread that opens the same file the same way
// again and again (a build polling a lock file, a tight loop) would otherwise fill the ring
// with identical records, walking the path each time: past ~100k opens/s the ring overflowed
// and lost most of them. A repeat is only counted in the thread's slot, before any path walk.

// A compiler barrier: the slot's sequence words are stored before and after its fields.
#define merge_barrier() asm volatile("" ::: "memory")

// What a repeat must share with its run's first open.
struct run_ident {
	__u64 start_ns;
	__u64 epoch;
	__u64 dev;
	__u64 ino;
	__u64 dentry;
	__u64 mnt;
	__u32 pid;
	__u32 uid;
	__u32 gid;
	__u32 agent;
	__u32 track_flags;
	__u32 flags;
	__u32 mode;
	__u32 io_uring;
};

// Never written: the value a new slot is created with.
const struct open_run zero_run = {};

static __always_inline void run_ident_of(struct run_ident *id, struct task_struct *task, struct track_entry *t,
					 struct file *f, __u32 flags, __u32 mode, __u32 io_uring)
{
	__u32 zero = 0;
	__u64 *epoch = bpf_map_lookup_elem(&merge_epoch, &zero);
	struct file *kf = KPTR(struct file, f);
	struct inode *inode = kf->f_inode;
	id->start_ns = task->group_leader->start_boottime;
	id->epoch = epoch ? *epoch : 0;
	id->dev = inode->i_sb->s_dev;
	id->ino = inode->i_ino;
	id->dentry = (__u64)kf->f_path.dentry;
	id->mnt = (__u64)kf->f_path.mnt;
	id->pid = task->tgid;
	const struct cred *cred = task->cred;
	id->uid = cred->uid.val;
	id->gid = cred->gid.val;
	id->agent = t->agent;
	id->track_flags = t->flags;
	id->flags = flags;
	id->mode = mode;
	id->io_uring = io_uring;
}

static __always_inline int same_run(struct open_run *r, struct run_ident *id)
{
	return r->start_ns == id->start_ns && r->epoch == id->epoch && r->dev == id->dev && r->ino == id->ino &&
	       r->dentry == id->dentry && r->mnt == id->mnt && r->pid == id->pid && r->uid == id->uid &&
	       r->gid == id->gid && r->agent == id->agent && r->track_flags == id->track_flags &&
	       r->flags == id->flags && r->mode == id->mode && r->io_uring == id->io_uring;
}

// Reports a run's repeats, if it has any, as one merged record. A record the ring has no
// room for loses count opens, and is counted so.
static __always_inline void emit_merged(struct open_run *r, struct task_struct *task)
{
	__u32 count = r->count;
	if (!count)
		return;
	__u64 size = sizeof(struct merged_event);
	__u64 flags = ring_flags(size);
	struct merged_event *m = bpf_ringbuf_reserve(&events, size, 0);
	if (!m) {
		__u32 kind = DROP_OPEN_MERGED;
		__u64 *n = bpf_map_lookup_elem(&drops, &kind);
		if (n)
			__sync_fetch_and_add(n, count);
		return;
	}
	m->hdr.ts = bpf_ktime_get_boot_ns();
	m->hdr.start_ns = r->start_ns;
	m->hdr.kind = EVENT_OPEN_MERGED;
	m->hdr.pid = r->pid;
	m->hdr.tid = r->tid;
	m->hdr.ppid = task->real_parent->tgid;
	m->hdr.root = r->root;
	m->hdr.agent = r->agent;
	m->hdr.track_flags = r->track_flags;
	m->hdr.uid = r->uid;
	m->hdr.gid = r->gid;
	m->hdr.pad = 0;
	__builtin_memcpy(m->hdr.comm, task->comm, sizeof(m->hdr.comm));
	m->run = r->run;
	m->first_ts = r->first_ts;
	m->last_ts = r->last_ts;
	m->dev = r->dev;
	m->ino = r->ino;
	m->count = count;
	m->flags = r->flags;
	m->mode = r->mode;
	m->io_uring = r->io_uring;
	bpf_ringbuf_submit(m, flags);
}

// Ends the thread's run, if it has one: its repeats are reported and its slot deleted (the
// thread exits or executes another program).
static __always_inline void end_run(__u32 tid, struct task_struct *task)
{
	struct open_run *r = bpf_map_lookup_elem(&open_runs, &tid);
	if (!r)
		return;
	emit_merged(r, task);
	bpf_map_delete_elem(&open_runs, &tid);
}

// Counts the open as a repeat of the thread's run when it is one, and then returns 1: no
// record. Otherwise the run, if any, is over: its repeats are reported and 0 returned (the
// caller reports the open as a full record and may start a new run with it). now - last_ts
// also bounds a run's idle time, so user space can tell a run that went idle for good.
static __always_inline int merge_repeat(struct open_run *r, struct run_ident *id, __u64 now, struct task_struct *task)
{
	if (!r)
		return 0;
	if (same_run(r, id) && now - r->last_ts <= MERGE_WINDOW_NS && now - r->run <= MERGE_WINDOW_NS) {
		__u64 seq = r->seq_busy + 1;
		r->seq_busy = seq;
		merge_barrier();
		if (!r->count)
			r->first_ts = now;
		r->last_ts = now;
		r->count++;
		merge_barrier();
		r->seq_done = seq;
		return 1;
	}
	emit_merged(r, task);
	return 0;
}

// Starts a run with this open, whose record's timestamp is ts, in the thread's slot (r, or a
// new one). Returns whether it did: with the map full, the thread's opens are not merged.
static __always_inline int start_run(struct open_run *r, __u32 tid, struct run_ident *id, __u64 ts,
				     struct track_entry *t)
{
	if (!r) {
		if (bpf_map_update_elem(&open_runs, &tid, &zero_run, BPF_NOEXIST))
			return 0;
		r = bpf_map_lookup_elem(&open_runs, &tid);
		if (!r)
			return 0;
	}
	__u64 seq = r->seq_busy + 1;
	r->seq_busy = seq;
	merge_barrier();
	r->run = ts;
	r->first_ts = 0;
	r->last_ts = ts;
	r->count = 0;
	r->start_ns = id->start_ns;
	r->epoch = id->epoch;
	r->dev = id->dev;
	r->ino = id->ino;
	r->dentry = id->dentry;
	r->mnt = id->mnt;
	r->pid = id->pid;
	r->tid = tid;
	r->root = t->root;
	r->agent = id->agent;
	r->track_flags = id->track_flags;
	r->uid = id->uid;
	r->gid = id->gid;
	r->flags = id->flags;
	r->mode = id->mode;
	r->io_uring = id->io_uring;
	merge_barrier();
	r->seq_done = seq;
	return 1;
}

static __always_inline __u8 *walk_buffer(__u32 target)
{
	__u32 zero = 0;
	if (target == WALK_TO_OPEN) {
		struct open_event *o = bpf_map_lookup_elem(&open_scratch, &zero);
		return o ? o->walk : 0;
	}
	if (target == WALK_TO_MUTATE || target == WALK_TO_MUTATE2) {
		struct mutate_event *m = bpf_map_lookup_elem(&mutate_scratch, &zero);
		if (!m)
			return 0;
		return target == WALK_TO_MUTATE ? m->walk : m->walk2;
	}
	struct exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	return target == WALK_TO_EXE ? e->exe : e->cwd;
}

// One path component per call (bpf_loop): written from the leaf up, each NUL-terminated,
// crossing mount points up to the global root. bpf_d_path is not allowed in these program
// types, so the walk is done by hand; user space reverses the components.
static long walk_step(__u64 i, struct path_walk *w)
{
	struct dentry *d = KPTR(struct dentry, w->d);
	struct mount *mnt = KPTR(struct mount, w->mnt);
	struct dentry *parent = d->d_parent;
	if (w->d == w->mnt_root || d == parent) {
		struct mount *mp = mnt->mnt_parent;
		if (mp == mnt)
			return 1; // reached the global root
		w->d = (__u64)mnt->mnt_mountpoint;
		w->mnt = (__u64)mp;
		w->mnt_root = (__u64)mp->mnt.mnt_root;
		return 0;
	}
	if (w->off >= PATH_SLOT) {
		w->truncated = 1;
		return 1;
	}
	__u8 *buf = walk_buffer(w->target);
	if (!buf)
		return 1;
	long n = bpf_probe_read_kernel_str(&buf[w->off & (PATH_SLOT - 1)], NAME_SLOT, d->d_name.name);
	if (n <= 0)
		return 1;
	w->off += n;
	w->d = (__u64)parent;
	return 0;
}

// Walks the path at address path into the target buffer; returns the bytes written and sets
// *truncated when the path was deeper or longer than the buffer.
static __always_inline __u32 walk_path(__u32 target, __u64 path, __u32 *truncated)
{
	struct path *p = KPTR(struct path, path);
	struct vfsmount *vm = p->mnt;
	struct path_walk w = {
		.d = (__u64)p->dentry,
		.mnt = (__u64)vm - bpf_core_field_offset(struct mount, mnt),
		.mnt_root = (__u64)vm->mnt_root,
		.target = target,
	};
	long loops = bpf_loop(PATH_DEPTH, walk_step, &w, 0);
	if (loops >= PATH_DEPTH)
		w.truncated = 1;
	*truncated = w.truncated;
	return w.off;
}

struct basename_scan {
	__u32 len;
	__u32 start;
};

// One byte of the exec filename per call (bpf_loop keeps the verifier from exploring every
// possible position of the last '/').
static long basename_step(__u64 i, struct basename_scan *b)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e || i >= b->len)
		return 1;
	if (e->filename[i & (FILENAME_SLOT - 1)] == '/')
		b->start = i + 1;
	return 0;
}

// Copies up to 31 bytes of the last path component of the exec filename into key.
static __always_inline void basename_key(struct name_key *key, const __u8 *s, long len)
{
	struct basename_scan b = { .len = len, .start = 0 };
	bpf_loop(FILENAME_SLOT, basename_step, &b, 0);
	bpf_probe_read_kernel_str(key->name, sizeof(key->name), &s[b.start & (FILENAME_SLOT - 1)]);
}

// Decides whether an untracked exec starts a new tracked tree; returns the new entry's
// flags via *t and 1 on a match.
static __always_inline int match_catalog(struct linux_binprm *bprm, const __u8 *filename, long flen,
					 struct track_entry *t)
{
	struct name_key key = {};
	__u32 *agent;

	basename_key(&key, filename, flen);
	agent = bpf_map_lookup_elem(&agent_names, &key);
	if (agent) {
		t->agent = *agent;
		return 1;
	}

	struct inode_key ik = {};
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
	ik.ino = BPF_CORE_READ(inode, i_ino);
	ik.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	agent = bpf_map_lookup_elem(&agent_inodes, &ik);
	if (agent) {
		t->agent = *agent;
		return 1;
	}

	// The image's own file name catches symlinked launchers (claude → claude.exe) and
	// interpreters run through a shebang (#!/usr/bin/env node).
	struct name_key fkey = {};
	bpf_probe_read_kernel_str(&fkey.name, sizeof(fkey.name), BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name));
	agent = bpf_map_lookup_elem(&agent_names, &fkey);
	if (agent) {
		t->agent = *agent;
		return 1;
	}
	if (bpf_map_lookup_elem(&interpreters, &fkey) || bpf_map_lookup_elem(&interpreters, &key)) {
		t->flags = TRACK_PENDING;
		return 1;
	}
	__u64 size = BPF_CORE_READ(inode, i_size);
	if (bpf_map_lookup_elem(&agent_sizes, &size)) {
		t->flags = TRACK_PENDING; // perhaps a copy of an agent binary: user space hashes it
		return 1;
	}
	return 0;
}

struct env_walk {
	__u64 cur;
	__u64 end;
	__u32 in_long; // inside a string longer than the scratch buffer
};

// One environment string per call (bpf_loop): keeps the allowlisted join keys (env_keys) and
// nothing else. The values land in env_scratch and are copied into the exec record afterwards.
static long env_step(__u64 idx, struct env_walk *w)
{
	__u32 zero = 0;
	struct env_scratch *s = bpf_map_lookup_elem(&env_scratch, &zero);
	if (!s || w->cur >= w->end)
		return 1;
	long n = bpf_probe_read_user_str(s->tmp, sizeof(s->tmp), (void *)w->cur);
	if (n <= 0)
		return 1;
	int was_long = w->in_long;
	if (n == sizeof(s->tmp)) { // longer than the buffer: skip its remainder
		w->in_long = 1;
		w->cur += n - 1;
	} else {
		w->in_long = 0;
		w->cur += n;
	}
	if (was_long)
		return 0;

	// The name before '=' (a join key's name fits ENV_NAME_KEY - 1 bytes) is looked up in
	// the allowlist user space filled from the agents registry.
	struct env_name key = {};
	int eq = -1;
	for (int i = 0; i < ENV_NAME_KEY; i++) {
		__u8 c = s->tmp[i];
		if (c == '=') {
			eq = i;
			break;
		}
		if (c == 0 || i == ENV_NAME_KEY - 1)
			break;
		key.name[i] = c;
	}
	if (eq <= 0)
		return 0;
	__u32 *slot = bpf_map_lookup_elem(&env_keys, &key);
	if (!slot)
		return 0;
	__u32 k = *slot;
	if (k >= ENV_KEYS)
		return 0;
	// Copy the value up to its NUL only: the bytes after it in tmp are other variables.
	bpf_probe_read_kernel_str(s->val[k], ENV_VALUE_SLOT, &s->tmp[(eq + 1) & 63]);
	s->found |= 1 << k;
	return 0;
}

// Before 6.11 the inode change time was one timespec64.
struct inode___ctime_ts {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

// kern_mount() marks the kernel's internal mounts (shm_mnt of memfd_create, pipes) with
// MNT_NS_INTERNAL, ERR_PTR(-EINVAL); a detached mount has none.
#define MNT_NS_INTERNAL_VALUE ((unsigned long)-22)

// Fills the executed file's identity (device, inode, change time) and what kind of file it is.
// User space hashes the file only while it still has this identity, so the hash is of what ran.
static __always_inline void exe_identity(struct exec_event *e, struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	e->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->exe_ino = BPF_CORE_READ(inode, i_ino);
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		e->exe_ctime_sec = BPF_CORE_READ(inode, i_ctime_sec);
		// Bit 31 is I_CTIME_QUERIED (multigrain timestamps, 6.13+), not part of the time.
		e->exe_ctime_nsec = BPF_CORE_READ(inode, i_ctime_nsec) & ~(1U << 31);
	} else {
		struct inode___ctime_ts *old = (void *)inode;
		e->exe_ctime_sec = BPF_CORE_READ(old, __i_ctime.tv_sec);
		e->exe_ctime_nsec = BPF_CORE_READ(old, __i_ctime.tv_nsec);
	}
	e->exe_flags = 0;
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	// d_unlinked(): unhashed and not a root, as d_path's " (deleted)".
	if ((!BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d) || BPF_CORE_READ(inode, __i_nlink) == 0)
		e->exe_flags |= EXE_UNLINKED;
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct mount *mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	unsigned long ns = (unsigned long)BPF_CORE_READ(mnt, mnt_ns);
	if (ns == 0 || ns == MNT_NS_INTERNAL_VALUE)
		e->exe_flags |= EXE_INTERNAL;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u32 zero = 0;

	if (tgid == self_tgid)
		return 0;
	struct exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	struct exec_event *clean = bpf_map_lookup_elem(&zero_exec, &zero);
	if (!e || !clean)
		return 0;
	const char *filename = BPF_CORE_READ(bprm, filename);
	long flen = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	if (flen < 0)
		flen = 0;

	struct track_entry *t = lookup_entry(tgid);
	struct track_entry fresh = {};
	if (!t) {
		if (!match_catalog(bprm, e->filename, flen, &fresh))
			return 0;
		fresh.root = tgid;
		fresh.root_start = BPF_CORE_READ(p, group_leader, start_boottime);
		if (bpf_map_update_elem(&tracked, &tgid, &fresh, BPF_NOEXIST)) {
			count_drop(DROP_TRACK_FULL);
			return 0;
		}
		set_maybe_tracked(tgid);
		t = &fresh;
	} else if (t->flags & TRACK_REJECTED) {
		return 0;
	}
	// A new program: the thread's merge run (under its tid before the exec, which a thread
	// other than the leader gives up) is over.
	end_run(old_pid, p);
	if (BPF_CORE_READ(p, pid) != old_pid)
		end_run(BPF_CORE_READ(p, pid), p);

	// A tracked exec: start from a clean record, so that nothing of an earlier exec (argv,
	// paths, environment values) lies past the lengths, and read the filename again. Done
	// only now because every exec on the machine gets this far, and the copy is 8 KiB.
	bpf_probe_read_kernel(e, sizeof(*e), clean);
	flen = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	if (flen < 0)
		flen = 0;
	fill_header(&e->hdr, EVENT_EXEC, p, t);
	e->filename_len = flen;
	e->truncated = 0;
	e->argc = BPF_CORE_READ(bprm, argc);

	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 arg_start = BPF_CORE_READ(mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 alen = arg_end - arg_start;
	if (alen > ARGV_SLOT) {
		alen = ARGV_SLOT;
		e->truncated |= TRUNC_ARGV;
	}
	if (bpf_probe_read_user(e->argv, alen, (void *)arg_start))
		alen = 0;
	e->argv_len = alen;

	__u32 trunc = 0;
	struct file *exe_file = BPF_CORE_READ(bprm, file);
	exe_identity(e, exe_file);
	if (e->exe_flags & EXE_INTERNAL) {
		// A memfd (or another file of a kernel-internal mount) has no path: its name is
		// all there is ("memfd:<name>"), not the /proc/self/fd/N the caller passed.
		long n = bpf_probe_read_kernel_str(e->exe, NAME_SLOT, BPF_CORE_READ(exe_file, f_path.dentry, d_name.name));
		e->exe_len = n > 0 ? n : 0;
	} else {
		e->exe_len = walk_path(WALK_TO_EXE, (__u64)__builtin_preserve_access_index(&exe_file->f_path), &trunc);
	}
	if (trunc)
		e->truncated |= TRUNC_EXE;
	trunc = 0;
	struct fs_struct *fs = BPF_CORE_READ(p, fs);
	e->cwd_len = walk_path(WALK_TO_CWD, (__u64)__builtin_preserve_access_index(&fs->pwd), &trunc);
	if (trunc)
		e->truncated |= TRUNC_CWD;

	struct env_scratch *s = bpf_map_lookup_elem(&env_scratch, &zero);
	if (s) {
		s->found = 0;
		bpf_probe_read_kernel(s->val, sizeof(s->val), clean->env);
		struct env_walk w = {
			.cur = BPF_CORE_READ(mm, env_start),
			.end = BPF_CORE_READ(mm, env_end),
		};
		bpf_loop(ENV_MAX_STRINGS, env_step, &w, 0);
		e->env_found = s->found;
		bpf_probe_read_kernel(e->env, sizeof(e->env), s->val);
	}

	emit(e, sizeof(*e), DROP_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ctgid == ptgid) // a new thread, not a new process
		return 0;
	struct track_entry *t = lookup_tracked(ptgid);
	if (!t)
		return 0;
	struct track_entry copy = *t;
	if (bpf_map_update_elem(&tracked, &ctgid, &copy, BPF_ANY)) {
		count_drop(DROP_TRACK_FULL);
		return 0;
	}
	set_maybe_tracked(ctgid);
	struct event_header h = {};
	fill_header(&h, EVENT_FORK, child, &copy);
	h.ppid = ptgid;
	emit(&h, sizeof(h), DROP_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u8 *f = maybe_tracked_flag(tgid);
	if (f && !*f)
		return 0;
	// Every thread's exit ends its merge run.
	end_run(BPF_CORE_READ(p, pid), p);
	// Only the last thread of the process ends it.
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (f)
		*f = 0; // also for an entry user space deleted (a rejected tree's child)
	struct track_entry *t = bpf_map_lookup_elem(&tracked, &tgid);
	if (!t)
		return 0;
	if (!(t->flags & TRACK_REJECTED)) {
		struct exit_event e = {};
		fill_header(&e.hdr, EVENT_EXIT, p, t);
		e.exit_code = BPF_CORE_READ(p, exit_code);
		emit(&e, sizeof(e), DROP_EXIT);
	}
	bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

// What differs between the two architectures the object is built for (bpf/gen.go: -target
// amd64,arm64, which defines __TARGET_ARCH_x86 or __TARGET_ARCH_arm64): the system call table
// and where the saved user registers keep a call's number and arguments.
#if defined(__TARGET_ARCH_x86)

#define NR_CONNECT 42
#define SYSCALL_NR(r) ((r)->orig_ax)
// x86-64 keeps the path calls that predate their *at forms: open, creat, rename, unlink,
// rmdir, link, symlink, chmod, chown, lchown. Their programs are built here only
// (linux/syscalls_linux_amd64.go attaches them).
#define LEGACY_PATH_SYSCALLS 1

#elif defined(__TARGET_ARCH_arm64)

// arm64 has the generic table (include/uapi/asm-generic/unistd.h): only the *at path calls.
#define NR_CONNECT 203
// bpf/vmlinux.h is x86-64's and has none of arm64's register types. libbpf's
// PT_REGS_PARMn_SYSCALL read arguments 2 to 5 through arm64's UAPI struct user_pt_regs (a fixed
// ABI, the start of the kernel's struct pt_regs), given here, and the first from pt_regs'
// orig_x0: by exit x0 holds the return value.
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
// The call's number, from arm64's struct pt_regs: a CO-RE flavour of it (the ___ suffix is
// ignored when matching the running kernel's type), so it does not clash with x86-64's
// pt_regs in vmlinux.h.
struct pt_regs___syscallno {
	__s32 syscallno;
} __attribute__((preserve_access_index));
#define SYSCALL_NR(r) (((struct pt_regs___syscallno *)(r))->syscallno)

#else
#error "bpf/gen.go builds this object for amd64 and arm64 only"
#endif

// The same numbers on every architecture.
#define NR_IO_URING_ENTER 426
#define PF_IO_WORKER_VALUE 0x10

// The syscall's arguments, read at exit from the user registers the kernel saved at entry
// (PT_REGS_PARMn_SYSCALL: only the return register has changed by then, and on arm64 the
// first argument's entry value is kept apart). This saves an enter program, and the hash
// update, lookup and delete of a per-thread stash, on every tracked open and connect.
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

// The file behind fd in task's descriptor table, or NULL. task is a BTF pointer: the table
// is reached with direct loads; only the slot, at a variable index, takes a probe read.
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = task->files->fdt;
	if (fd < 0 || fd >= fdt->max_fds)
		return 0;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]);
	return f;
}

// A file of a kernel-internal mount (a pipe, a socket, an anon inode, a memfd: what opening
// /dev/fd/N or /proc/PID/fd/N of one returns) has no path: walking it would end at its
// mount's root and read "/". It is named as /proc names it: by its dentry's name
// ("memfd:x", "[eventfd]"), or "<filesystem>:[<inode>]" when that is empty (pipes, sockets).
// Returns the bytes written to the open's walk buffer, 0 for a file of a real mount.
static const char pseudo_fmt[] = "%s:[%lu]";

static __always_inline __u32 pseudo_name(struct file *f)
{
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct mount *mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	if ((unsigned long)BPF_CORE_READ(mnt, mnt_ns) != MNT_NS_INTERNAL_VALUE)
		return 0;
	__u8 *buf = walk_buffer(WALK_TO_OPEN);
	if (!buf)
		return 0;
	long n = bpf_probe_read_kernel_str(buf, NAME_SLOT, BPF_CORE_READ(f, f_path.dentry, d_name.name));
	if (n > 1)
		return n;
	__u64 args[2] = { (__u64)BPF_CORE_READ(f, f_inode, i_sb, s_type, name), BPF_CORE_READ(f, f_inode, i_ino) };
	n = bpf_snprintf((char *)buf, NAME_SLOT, pseudo_fmt, args, sizeof(args));
	return n > 0 ? n : 0;
}

// Kernel truth for opens: a successful open reports the path walked from the file it
// installed in the descriptor table, never the caller's string, which may be another
// spelling of the file (/proc/self/root/…, "//", a symlink, "..") or rewritten by a second
// thread while the kernel resolved it. The caller's string is read only when the open failed
// (there is no file to ask), and is then resolved against the cwd or dirfd walked here.
static __always_inline int finish_open(struct track_entry *t, long ret, __u64 filename, __s32 dfd, __u32 flags,
				       __u32 mode, __u32 io_uring)
{
	if (will_restart(ret))
		return 0;
	__u32 zero = 0;
	struct task_struct *task = bpf_get_current_task_btf();
	// A successful open of a file: a repeat of the thread's run is only counted, before the
	// record is built and the path walked (merge_repeat).
	struct file *f = 0;
	struct open_run *run = 0;
	struct run_ident id;
	__u32 tid = task->pid;
	if (ret >= 0 && io_uring != OPEN_IO_URING_FIXED) {
		f = fd_file(task, ret);
		if (f) {
			run_ident_of(&id, task, t, f, flags, mode, io_uring);
			run = bpf_map_lookup_elem(&open_runs, &tid);
			if (merge_repeat(run, &id, bpf_ktime_get_boot_ns(), task))
				return 0;
		}
	}
	struct open_event *e = bpf_map_lookup_elem(&open_scratch, &zero);
	if (!e)
		return 0;
	fill_header(&e->hdr, EVENT_OPEN, task, t);
	e->ret = ret;
	e->flags = flags;
	e->mode = mode;
	e->dfd = dfd;
	e->truncated = 0;
	e->walk_kind = WALK_NONE;
	e->walk_len = 0;
	e->path_len = 0;
	e->io_uring = io_uring;
	e->merge = 0;

	__u32 trunc = 0;
	if (f) {
		__u32 pseudo = pseudo_name(f);
		if (pseudo) {
			// A pipe or socket opened again is another object each time: not merged, and
			// the run it interrupts is over.
			e->walk_len = pseudo;
			e->walk_kind = WALK_PSEUDO;
			if (run)
				bpf_map_delete_elem(&open_runs, &tid);
		} else {
			e->walk_len = walk_path(WALK_TO_OPEN, (__u64)__builtin_preserve_access_index(&f->f_path), &trunc);
			e->walk_kind = WALK_FILE;
			if (start_run(run, tid, &id, e->hdr.ts, t))
				e->merge = MERGE_RUN_START;
		}
		if (trunc)
			e->truncated |= TRUNC_WALK;
		// Sent only up to the end of the walk: most opens name short paths.
		emit(e, offsetof(struct open_event, walk) + (e->walk_len & (2 * PATH_SLOT - 1)), DROP_OPEN);
		return 0;
	}
	// A failed open, or another thread closed the descriptor already: only the caller's
	// string is left.

	long n = filename ? bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)filename) : 0;
	if (n < 0)
		n = 0;
	if (n == sizeof(e->path))
		e->truncated |= TRUNC_PATH;
	e->path_len = n;
	if (n > 0 && e->path[0] != '/' && ret < 0) {
		if (dfd == AT_FDCWD_VALUE) {
			struct fs_struct *fs = BPF_CORE_READ(task, fs);
			e->walk_len = walk_path(WALK_TO_OPEN, (__u64)__builtin_preserve_access_index(&fs->pwd), &trunc);
			e->walk_kind = WALK_CWD;
		} else {
			struct file *dir = fd_file(task, dfd);
			if (dir) {
				e->walk_len = walk_path(WALK_TO_OPEN, (__u64)__builtin_preserve_access_index(&dir->f_path), &trunc);
				e->walk_kind = WALK_DIRFD;
			}
		}
		if (trunc)
			e->truncated |= TRUNC_WALK;
	}
	emit(e, sizeof(*e), DROP_OPEN);
	return 0;
}

// One exit program per open syscall, since each passes its arguments differently.
SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t)
		return 0;
	struct pt_regs *r = syscall_regs();
	return finish_open(t, ctx->ret, PT_REGS_PARM2_SYSCALL(r), PT_REGS_PARM1_SYSCALL(r),
			   PT_REGS_PARM3_SYSCALL(r), PT_REGS_PARM4_SYSCALL(r), 0);
}

#ifdef LEGACY_PATH_SYSCALLS
SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t)
		return 0;
	struct pt_regs *r = syscall_regs();
	return finish_open(t, ctx->ret, PT_REGS_PARM1_SYSCALL(r), AT_FDCWD_VALUE, PT_REGS_PARM2_SYSCALL(r),
			   PT_REGS_PARM3_SYSCALL(r), 0);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t)
		return 0;
	struct pt_regs *r = syscall_regs();
	return finish_open(t, ctx->ret, PT_REGS_PARM1_SYSCALL(r), AT_FDCWD_VALUE,
			   O_CREAT_VALUE | O_WRONLY_VALUE | O_TRUNC_VALUE, PT_REGS_PARM2_SYSCALL(r), 0);
}
#endif

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t)
		return 0;
	struct pt_regs *r = syscall_regs();
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)PT_REGS_PARM3_SYSCALL(r));
	return finish_open(t, ctx->ret, PT_REGS_PARM2_SYSCALL(r), PT_REGS_PARM1_SYSCALL(r), how.flags,
			   how.mode, 0);
}

// connect(2) at its exit: the address is the kernel's copy the cgroup hook kept for this
// thread (the caller's buffer may have been rewritten by another thread since), or, where no
// hook ran (no cgroup2 hierarchy, an address the kernel refused first), the caller's bytes,
// marked as such.
SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t || will_restart(ctx->ret))
		return 0;
	struct pt_regs *r = syscall_regs();
	struct connect_event e = {};
	e.fd = PT_REGS_PARM1_SYSCALL(r);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_stash *k = bpf_map_lookup_elem(&connect_stashes, &tid);
	if (k && k->fd == e.fd) {
		__builtin_memcpy(e.addr, k->addr, sizeof(e.addr));
		e.addrlen = k->addrlen;
		e.net_flags = NET_KERNEL_ADDR;
	} else {
		__u64 len = PT_REGS_PARM3_SYSCALL(r);
		if (len > sizeof(e.addr))
			len = sizeof(e.addr);
		if (bpf_probe_read_user(e.addr, len, (void *)PT_REGS_PARM2_SYSCALL(r)))
			return 0;
		e.addrlen = len;
	}
	if (k)
		bpf_map_delete_elem(&connect_stashes, &tid);
	__u16 family = *(__u16 *)e.addr;
	if (family != AF_UNIX_VALUE && family != AF_INET_VALUE && family != AF_INET6_VALUE)
		return 0;
	fill_header(&e.hdr, EVENT_CONNECT, bpf_get_current_task_btf(), t);
	e.ret = ctx->ret;
	e.net_flags |= NET_RESULT;
	e.syscall = NR_CONNECT;
	emit(&e, sizeof(e), DROP_CONNECT);
	return 0;
}

// The cgroup sock_addr hooks run as the kernel begins a connect or a send to a named
// destination, on every path there is to one: connect(2), sendto/sendmsg/sendmmsg, TCP Fast
// Open's sendto, and io_uring's connect and send requests, which no syscall tracepoint sees.
// They read the kernel's copy of the address. They always allow the call: Vigil observes.
static __always_inline int on_sock_addr(struct bpf_sock_addr *ctx, __u32 kind)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t)
		return 1;
	struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 io_worker = task->flags & PF_IO_WORKER_VALUE;
	// An io worker is in no system call: it has no saved registers to read.
	struct pt_regs *r = io_worker ? 0 : syscall_regs();
	__s32 nr = r ? (__s32)SYSCALL_NR(r) : -1;
	__u32 len = sa->uaddrlen;
	if (len > sizeof(((struct connect_event *)0)->addr))
		len = sizeof(((struct connect_event *)0)->addr);

	if (kind == EVENT_CONNECT && nr == NR_CONNECT) {
		// connect(2): its exit program reports it, with the result.
		struct connect_stash k = {};
		k.fd = PT_REGS_PARM1_SYSCALL(r);
		k.addrlen = len;
		bpf_probe_read_kernel(k.addr, len, sa->uaddr);
		__u32 tid = task->pid;
		bpf_map_update_elem(&connect_stashes, &tid, &k, BPF_ANY);
		return 1;
	}
	struct connect_event e = {};
	bpf_probe_read_kernel(e.addr, len, sa->uaddr);
	e.addrlen = len;
	e.fd = -1;
	e.net_flags = NET_KERNEL_ADDR;
	if (io_worker || nr == NR_IO_URING_ENTER)
		e.net_flags |= NET_IO_URING;
	e.syscall = nr;
	fill_header(&e.hdr, kind, task, t);
	emit(&e, sizeof(e), kind == EVENT_SEND ? DROP_SEND : DROP_CONNECT);
	return 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, EVENT_CONNECT);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, EVENT_CONNECT);
}

SEC("cgroup/connect_unix")
int connect_unix(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, EVENT_CONNECT);
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, EVENT_SEND);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, EVENT_SEND);
}

SEC("cgroup/sendmsg_unix")
int sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, EVENT_SEND);
}

// io_uring requests bypass the syscall tracepoints. Connects and sends reach the cgroup
// hooks above; opens are reported here, at their completion, like a syscall open: the
// installed descriptor's file walked. File-changing requests have no probe yet and are
// counted (DROP_IO_URING_UNSEEN), so that their absence is visible.
SEC("tp_btf/io_uring_complete")
int BPF_PROG(io_uring_complete, struct io_ring_ctx *ring, void *req_ptr, struct io_uring_cqe *cqe)
{
	struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32);
	if (!t || !req_ptr)
		return 0;
	struct io_kiocb *req = req_ptr;
	__u8 op = BPF_CORE_READ(req, opcode);
	switch (op) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: {
		struct io_open *o = (void *)__builtin_preserve_access_index(&req->cmd);
		// A fixed-file open (file_slot) installs no descriptor: there is no file to walk.
		__u32 how = BPF_CORE_READ(o, file_slot) ? OPEN_IO_URING_FIXED : OPEN_IO_URING;
		// The caller's path string is the kernel's copy, already freed by now: a failed
		// io_uring open is reported without a path.
		return finish_open(t, BPF_CORE_READ(cqe, res), 0, BPF_CORE_READ(o, dfd), BPF_CORE_READ(o, how.flags),
				   BPF_CORE_READ(o, how.mode), how);
	}
	case IORING_OP_RENAMEAT:
	case IORING_OP_UNLINKAT:
	case IORING_OP_MKDIRAT:
	case IORING_OP_SYMLINKAT:
	case IORING_OP_LINKAT:
	case IORING_OP_FTRUNCATE:
		count_drop(DROP_IO_URING_UNSEEN);
		return 0;
	}
	return 0;
}

// File mutations: one record layout (struct mutate_event) and one helper for every call; the
// exit programs below differ only in where their syscall keeps its arguments.
struct mutate_args {
	__u64 str;  // the path string, or 0 when the call names its file by descriptor dfd
	__u64 str2; // the second path string (rename source, link target), or 0
	__s32 dfd;
	__s32 dfd2;
	__u32 op;
	__u32 flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 resolve2; // 0: the second string is kept as given (a symlink's target)
	__s64 length;
};

_Static_assert(sizeof(struct mutate_event) <= sizeof(struct exec_event), "zero_exec must cover a mutate record");

// Fills one path of a mutate record. A call by descriptor (no string, or an empty one with a
// directory fd: AT_EMPTY_PATH) has its file walked: the kernel's truth. A path string is the
// caller's, read at exit (a removed or renamed-away name no longer exists to walk), and when
// relative the directory it is relative to is walked: the working directory or dirfd.
static __always_inline void mutate_path(struct task_struct *task, __u32 target, __u8 *path, __u32 *path_len,
					__u32 *walk_kind, __u32 *walk_len, __u32 *truncated, __u32 trunc_path,
					__u32 trunc_walk, __u64 str, __s32 dfd, int resolve)
{
	__u32 trunc = 0;
	long n = 0;
	if (str) {
		n = bpf_probe_read_user_str(path, PATH_SLOT, (void *)str);
		if (n < 0)
			n = 0;
		if (n == PATH_SLOT)
			*truncated |= trunc_path;
		*path_len = n;
	}
	if (!resolve)
		return;
	if (n <= 1 && dfd != AT_FDCWD_VALUE) {
		struct file *f = fd_file(task, dfd);
		if (f) {
			*walk_len = walk_path(target, (__u64)__builtin_preserve_access_index(&f->f_path), &trunc);
			*walk_kind = WALK_FILE;
			*path_len = 0;
		}
	} else if (n > 1 && path[0] != '/') {
		if (dfd == AT_FDCWD_VALUE) {
			struct fs_struct *fs = task->fs;
			*walk_len = walk_path(target, (__u64)__builtin_preserve_access_index(&fs->pwd), &trunc);
			*walk_kind = WALK_CWD;
		} else {
			struct file *dir = fd_file(task, dfd);
			if (dir) {
				*walk_len = walk_path(target, (__u64)__builtin_preserve_access_index(&dir->f_path), &trunc);
				*walk_kind = WALK_DIRFD;
			}
		}
	}
	if (trunc)
		*truncated |= trunc_walk;
}

static __always_inline int finish_mutate(struct track_entry *t, long ret, struct mutate_args *a)
{
	if (will_restart(ret))
		return 0;
	__u32 zero = 0;
	struct mutate_event *e = bpf_map_lookup_elem(&mutate_scratch, &zero);
	struct exec_event *clean = bpf_map_lookup_elem(&zero_exec, &zero);
	if (!e || !clean)
		return 0;
	// Mutations are rare next to opens: the record is cleared and sent whole, so nothing of
	// an earlier record lies past its lengths.
	bpf_probe_read_kernel(e, sizeof(*e), clean);
	struct task_struct *task = bpf_get_current_task_btf();
	fill_header(&e->hdr, EVENT_MUTATE, task, t);
	e->ret = ret;
	e->op = a->op;
	e->flags = a->flags;
	e->mode = a->mode;
	e->uid = a->uid;
	e->gid = a->gid;
	e->length = a->length;
	mutate_path(task, WALK_TO_MUTATE, e->path, &e->path_len, &e->walk_kind, &e->walk_len, &e->truncated,
		    TRUNC_PATH, TRUNC_WALK, a->str, a->dfd, 1);
	if (a->str2)
		mutate_path(task, WALK_TO_MUTATE2, e->path2, &e->path2_len, &e->walk2_kind, &e->walk2_len,
			    &e->truncated, TRUNC_PATH2, TRUNC_WALK2, a->str2, a->dfd2, a->resolve2);
	emit(e, sizeof(*e), DROP_MUTATE);
	return 0;
}

#define AT_REMOVEDIR_VALUE 0x200
#define AT_SYMLINK_NOFOLLOW_VALUE 0x100

// Each program checks the tracked map first, as every probe does: an untracked process pays
// that and nothing more.
#define MUTATE_PROG(name)                                                             \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                         \
	{                                                                             \
		struct track_entry *t = lookup_tracked(bpf_get_current_pid_tgid() >> 32); \
		if (!t)                                                               \
			return 0;                                                     \
		struct pt_regs *r = syscall_regs();                                   \
		struct mutate_args a = { .dfd = AT_FDCWD_VALUE, .dfd2 = AT_FDCWD_VALUE, .resolve2 = 1 }; \
		mutate_args_##name(&a, r);                                            \
		return finish_mutate(t, ctx->ret, &a);                                \
	}

static __always_inline void mutate_args_renameat(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_RENAME;
	a->dfd2 = PT_REGS_PARM1_SYSCALL(r);
	a->str2 = PT_REGS_PARM2_SYSCALL(r);
	a->dfd = PT_REGS_PARM3_SYSCALL(r);
	a->str = PT_REGS_PARM4_SYSCALL(r);
}
MUTATE_PROG(renameat)

static __always_inline void mutate_args_renameat2(struct mutate_args *a, struct pt_regs *r)
{
	mutate_args_renameat(a, r);
	a->flags = PT_REGS_PARM5_SYSCALL(r);
}
MUTATE_PROG(renameat2)

static __always_inline void mutate_args_unlinkat(struct mutate_args *a, struct pt_regs *r)
{
	a->dfd = PT_REGS_PARM1_SYSCALL(r);
	a->str = PT_REGS_PARM2_SYSCALL(r);
	a->flags = PT_REGS_PARM3_SYSCALL(r);
	a->op = a->flags & AT_REMOVEDIR_VALUE ? MUTATE_RMDIR : MUTATE_UNLINK;
}
MUTATE_PROG(unlinkat)

static __always_inline void mutate_args_linkat(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_LINK;
	a->dfd2 = PT_REGS_PARM1_SYSCALL(r);
	a->str2 = PT_REGS_PARM2_SYSCALL(r);
	a->dfd = PT_REGS_PARM3_SYSCALL(r);
	a->str = PT_REGS_PARM4_SYSCALL(r);
	a->flags = PT_REGS_PARM5_SYSCALL(r);
}
MUTATE_PROG(linkat)

// A symlink's target is a string the kernel stores as given, resolved only when the link is
// followed: it is kept as the caller wrote it, never made absolute.
static __always_inline void mutate_args_symlinkat(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_SYMLINK;
	a->str2 = PT_REGS_PARM1_SYSCALL(r);
	a->resolve2 = 0;
	a->dfd = PT_REGS_PARM2_SYSCALL(r);
	a->str = PT_REGS_PARM3_SYSCALL(r);
}
MUTATE_PROG(symlinkat)

static __always_inline void mutate_args_fchmod(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_CHMOD;
	a->dfd = PT_REGS_PARM1_SYSCALL(r);
	a->mode = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(fchmod)

static __always_inline void mutate_args_fchmodat(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_CHMOD;
	a->dfd = PT_REGS_PARM1_SYSCALL(r);
	a->str = PT_REGS_PARM2_SYSCALL(r);
	a->mode = PT_REGS_PARM3_SYSCALL(r);
}
MUTATE_PROG(fchmodat)

// fchmodat2 (Linux 6.6): attached only where the tracepoint exists.
static __always_inline void mutate_args_fchmodat2(struct mutate_args *a, struct pt_regs *r)
{
	mutate_args_fchmodat(a, r);
	a->flags = PT_REGS_PARM4_SYSCALL(r);
}
MUTATE_PROG(fchmodat2)

static __always_inline void mutate_args_fchown(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_CHOWN;
	a->dfd = PT_REGS_PARM1_SYSCALL(r);
	a->uid = PT_REGS_PARM2_SYSCALL(r);
	a->gid = PT_REGS_PARM3_SYSCALL(r);
}
MUTATE_PROG(fchown)

static __always_inline void mutate_args_fchownat(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_CHOWN;
	a->dfd = PT_REGS_PARM1_SYSCALL(r);
	a->str = PT_REGS_PARM2_SYSCALL(r);
	a->uid = PT_REGS_PARM3_SYSCALL(r);
	a->gid = PT_REGS_PARM4_SYSCALL(r);
	a->flags = PT_REGS_PARM5_SYSCALL(r);
}
MUTATE_PROG(fchownat)

static __always_inline void mutate_args_truncate(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_TRUNCATE;
	a->str = PT_REGS_PARM1_SYSCALL(r);
	a->length = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(truncate)

static __always_inline void mutate_args_ftruncate(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_TRUNCATE;
	a->dfd = PT_REGS_PARM1_SYSCALL(r);
	a->length = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(ftruncate)

// x86-64's older path calls: the same records as their *at forms.
#ifdef LEGACY_PATH_SYSCALLS
static __always_inline void mutate_args_rename(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_RENAME;
	a->str2 = PT_REGS_PARM1_SYSCALL(r);
	a->str = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(rename)

static __always_inline void mutate_args_unlink(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_UNLINK;
	a->str = PT_REGS_PARM1_SYSCALL(r);
}
MUTATE_PROG(unlink)

static __always_inline void mutate_args_rmdir(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_RMDIR;
	a->str = PT_REGS_PARM1_SYSCALL(r);
}
MUTATE_PROG(rmdir)

static __always_inline void mutate_args_link(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_LINK;
	a->str2 = PT_REGS_PARM1_SYSCALL(r);
	a->str = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(link)

static __always_inline void mutate_args_symlink(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_SYMLINK;
	a->str2 = PT_REGS_PARM1_SYSCALL(r);
	a->resolve2 = 0;
	a->str = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(symlink)

static __always_inline void mutate_args_chmod(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_CHMOD;
	a->str = PT_REGS_PARM1_SYSCALL(r);
	a->mode = PT_REGS_PARM2_SYSCALL(r);
}
MUTATE_PROG(chmod)

static __always_inline void mutate_args_chown(struct mutate_args *a, struct pt_regs *r)
{
	a->op = MUTATE_CHOWN;
	a->str = PT_REGS_PARM1_SYSCALL(r);
	a->uid = PT_REGS_PARM2_SYSCALL(r);
	a->gid = PT_REGS_PARM3_SYSCALL(r);
}
MUTATE_PROG(chown)

static __always_inline void mutate_args_lchown(struct mutate_args *a, struct pt_regs *r)
{
	mutate_args_chown(a, r);
	a->flags = AT_SYMLINK_NOFOLLOW_VALUE;
}
MUTATE_PROG(lchown)
#endif
