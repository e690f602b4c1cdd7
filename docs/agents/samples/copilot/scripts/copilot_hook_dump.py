#!/usr/bin/env python3
"""Copilot/Cursor hook command: dump stdin JSON, argv, cwd, parent chain, pgid/sid and the FULL env
to one file per call in $HOOK_DUMP_DIR. Prints nothing (or $HOOK_STDOUT) and exits 0.
usage: copilot_hook_dump.py <tag> <event>"""
import json, os, sys, time
def proc(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
        comm = s[s.index("(") + 1:s.rindex(")")]
        f = s[s.rindex(")") + 2:].split()
        argv = [a.decode("utf-8", "replace") for a in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0") if a]
        return {"pid": pid, "ppid": int(f[1]), "pgid": int(f[2]), "sid": int(f[3]), "comm": comm,
                "exe": os.readlink(f"/proc/{pid}/exe"), "argv": [a[:300] for a in argv[:8]]}
    except Exception as e:
        return {"pid": pid, "error": str(e)}
raw = sys.stdin.read()
try: data = json.loads(raw)
except Exception: data = raw
chain, pid = [], os.getpid()
while pid > 1 and len(chain) < 12:
    p = proc(pid); chain.append(p); pid = p.get("ppid", 0)
    if p.get("comm") in ("timeout", "strace"): break
out = {"ts": time.time(), "argv": sys.argv, "cwd": os.getcwd(), "stdin_raw_len": len(raw), "stdin": data,
       "parent_chain": chain, "env": dict(sorted(os.environ.items()))}
d = os.environ.get("HOOK_DUMP_DIR", "hooks"); os.makedirs(d, exist_ok=True)
tag = sys.argv[1] if len(sys.argv) > 1 else "x"; ev = sys.argv[2] if len(sys.argv) > 2 else "unknown"
with open(os.path.join(d, f"{time.time():.6f}_{tag}_{ev}_{os.getpid()}.json"), "w") as f: json.dump(out, f, indent=1)
if os.environ.get("HOOK_STDOUT"): print(os.environ["HOOK_STDOUT"])
