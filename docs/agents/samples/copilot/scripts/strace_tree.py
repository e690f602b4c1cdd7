#!/usr/bin/env python3
"""Turn `strace -f -tt -yy` output into a process tree with exec argv,
connects and (optionally) opened files per process (threads folded into their TGID).
usage: strace_tree.py strace.txt [--files] [--grep REGEX]"""
import re, sys, collections
path = sys.argv[1]; show_files = "--files" in sys.argv
grep = sys.argv[sys.argv.index("--grep") + 1] if "--grep" in sys.argv else None
line_re = re.compile(r"^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$")
pending, events = {}, []
for raw in open(path, errors="replace"):
    m = line_re.match(raw.rstrip("\n"))
    if not m: continue
    tid, ts, rest = int(m[1]), m[2], m[3]
    if rest.endswith("<unfinished ...>"):
        pending[tid] = (ts, rest[:-len("<unfinished ...>")]); continue
    r = re.match(r"<\.\.\. (\w+) resumed>(.*)", rest)
    if r and tid in pending:
        ts0, head = pending.pop(tid); rest = head + r[2]; ts = ts0
    events.append((ts, tid, rest))
tgid, parent, execs, opens, conns, first = {}, {}, collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(list), {}
root = None
failed, setsid = {}, {}
for ts, tid, rest in events:
    if root is None: root = tid; tgid[tid] = tid
    g = tgid.setdefault(tid, tid)
    sc = rest.split("(", 1)[0]
    res = rest.rsplit("= ", 1)[-1].split()[0] if "= " in rest else ""
    if sc in ("clone", "clone3", "vfork", "fork") and res.isdigit():
        child = int(res)
        if "CLONE_THREAD" in rest: tgid[child] = g
        else: tgid[child] = child; parent[child] = g; first[child] = ts
    elif sc in ("execve", "execveat") and res == "0":
        argv = re.search(r"\[(.*?)\](?:, 0x|, \[)", rest)
        execs[g].append((ts, rest.split('"')[1], argv[1] if argv else "?"))
    elif sc in ("execve", "execveat"):
        argv = re.search(r"\[(.*?)\](?:, 0x|, \[)", rest)
        failed.setdefault(g, (ts, argv[1] if argv else "?"))
    elif sc == "setsid":
        setsid[g] = ts
    elif sc == "openat" and not res.startswith("-"):
        f = re.search(r'openat\([^,]+, "([^"]*)", ([A-Z_|]+)', rest)
        if f: opens[g].append((ts, tid, f[1], f[2]))
    elif sc == "connect":
        a = re.search(r"connect\((\d+<[^>]*>), (\{[^}]*\})", rest)
        if a: conns[g].append((ts, tid, a[2], rest.rsplit("=", 1)[-1].strip()))
def show(p, depth):
    ind = "  " * depth
    ex = execs.get(p) or [(first.get(p, "?"), "(no exec: fork only)" if p not in failed else "(exec FAILED, tried)", failed.get(p, ("", ""))[1])]
    if p in setsid: print(f"{ind}    {setsid[p]} setsid()")
    for ts, exe, argv in ex:
        print(f"{ind}[{p}] {ts} exec {exe} argv=[{argv[:400]}]")
    for ts, tid, addr, r in conns.get(p, []):
        print(f"{ind}    {ts} connect tid={tid} {addr} -> {r}")
    if show_files:
        seen = set()
        for ts, tid, f, fl in opens.get(p, []):
            if grep and not re.search(grep, f): continue
            if (f, fl) in seen: continue
            seen.add((f, fl)); print(f"{ind}    {ts} open tid={tid} {fl} {f}")
    for c in sorted(k for k, v in parent.items() if v == p):
        show(c, depth + 1)
show(root, 0)
