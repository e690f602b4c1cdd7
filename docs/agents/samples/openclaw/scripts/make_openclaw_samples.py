import json, os, glob, shutil, subprocess, sys, re, collections
sys.path.insert(0, os.path.dirname(__file__))
import sys, os; sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../opencode/scripts"))  # shared with opencode
from make_samples_common import *
R = "<research>"; RUNS = R + "/runs"; S = R + "/scripts"
OUT = sys.argv[1]
main, otelcfg, inj, par, envv, ex = (RUNS + "/c%d" % i for i in (2, 3, 4, 5, 6, 7))
red0 = mk_redact(R, [RUNS + "/c%d" % i for i in range(10)])
def red(s):
    s = red0(s)
    return re.sub(r"/tmp/openclaw-agent-exec-[A-Za-z0-9]+", "/tmp/openclaw-agent-exec-<rnd>", s)
shutil.rmtree(OUT, ignore_errors=True); os.makedirs(OUT)
write(OUT + "/openclaw.json", red(open(main + "/home/.openclaw/openclaw.json").read()))
write(OUT + "/openclaw.otel-without-plugin.json", red(open(otelcfg + "/home/.openclaw/openclaw.json").read()))
write(OUT + "/otel-without-plugin.stderr.txt", red("".join(l for l in open(otelcfg + "/stderr.txt") if "otel" in l.lower())))
# hooks
hk = sorted(glob.glob(main + "/hooks/*.json"))
cnt = collections.Counter(re.sub(r"^\d+_", "", os.path.basename(h))[:-5] for h in hk)
write(OUT + "/hooks/_counts.txt", "".join(f"{v:4d} {k}\n" for k, v in sorted(cnt.items())))
for h in hk:
    n = os.path.basename(h)
    lim = 300 if re.search(r"llm_input|llm_output|agent_end|before_prompt_build|before_agent_reply|tool_result_persist", n) else 600
    if re.search(r"tool_result_persist", n) and not n.startswith("009"): continue
    j = trim(json.load(open(h)), lim)
    if "llm_input" in n or "before_prompt_build" in n or "llm_output" in n or "agent_end" in n:
        # drop the big arrays
        for k in ("messages", "historyMessages", "systemPrompt", "prompt", "assistantTexts", "tools"):
            if isinstance(j.get("event"), dict) and k in j["event"]:
                v = j["event"][k]
                j["event"][k] = ([(x.get("name") if isinstance(x, dict) and "name" in x else x) for x in v] if k == "tools" else v[:2]) if isinstance(v, list) else v
    write(OUT + "/hooks/" + n, red(json.dumps(j, indent=1)))
# diagnostic events (dedup)
seen, dl = set(), []
for l in open(main + "/hooks/diagnostic_events.jsonl"):
    j = json.loads(l); e = j["ev"]
    key = (j["src"], e.get("seq"))
    if key in seen: continue
    seen.add(key)
    if e.get("type") == "log.record": continue
    dl.append(json.dumps(trim(j, 300)))
write(OUT + "/diagnostic_events.jsonl", red("\n".join(dl) + "\n"))
# env
write(OUT + "/shell_env.txt", red(open(main + "/shell_env.txt").read()))
write(OUT + "/inject-env/shell_env.txt", red(open(inj + "/shell_env.txt").read()))
for h in sorted(glob.glob(inj + "/hooks/*before_tool_call.json"))[:1] + sorted(glob.glob(inj + "/hooks/*resolve_exec_env.json"))[:1]:
    write(OUT + "/inject-env/" + os.path.basename(h), red(json.dumps(trim(json.load(open(h)), 400), indent=1)))
write(OUT + "/inject-env/vigil-dump-index.js", red(open(S + "/vigil-dump/index.js").read()))
# relay/anchor/shell env from strace -v
el = []
for l in open(envv + "/strace.txt", errors="replace"):
    if "execve(" in l and re.search(r"service-child-relay|service-child-group-anchor|echo 1000 > /proc/self/oom_score_adj|--disable-warning=ExperimentalWarning", l) and "= 0" in l:
        m = re.search(r'^(\d+) (\S+) execve\("([^"]+)", \[(.*?)\], \[(.*)\]\) = 0', l.strip())
        if m:
            el.append(f"[{m[1]}] {m[2]} exec {m[3]}\n   argv: {m[4][:300]}\n   env:  {m[5]}\n")
write(OUT + "/execve_env_of_chain.txt", red("# from `strace -v` (run c6): env of the worker node, the per-call relay and anchor, and the tool shell (sh→bash)\n" + "".join(el)))
# process trees
pt = subprocess.run(["python3", S + "/strace_tree.py", main + "/strace.txt"], capture_output=True, text=True).stdout
write(OUT + "/process_tree.txt", "\n".join(l[:420] for l in red(pt).splitlines()) + "\n")
ptf = subprocess.run(["python3", S + "/strace_tree.py", main + "/strace.txt", "--files", "--grep", r"repo/(notes|out)\.txt|^(notes|out)\.txt|openclaw\.json|shell-snapshots"], capture_output=True, text=True).stdout
write(OUT + "/process_tree_with_files.txt", "\n".join(l[:300] for l in red(ptf).splitlines()) + "\n")
pp = subprocess.run(["python3", S + "/strace_tree.py", par + "/strace.txt"], capture_output=True, text=True).stdout
write(OUT + "/parallel/process_tree.txt", "\n".join(l[:300] for l in red(pp).splitlines() if "connect" not in l) + "\n")
for h in sorted(glob.glob(par + "/hooks/*before_tool_call.json")):
    write(OUT + "/parallel/" + os.path.basename(h), red(json.dumps(trim(json.load(open(h)), 300), indent=1)))
# key strace lines
key = []
for l in open(main + "/strace.txt", errors="replace"):
    if re.search(r'execve\(.*(service-child|/bin/sh", \["/bin/sh"|/bin/bash)|setsid|connect\(.*(8766|4318)|repo/(notes|out)\.txt", O_|PR_SET_NAME.*(libuv|MainThread)', l) and "ENOENT" not in l:
        key.append(l[:600])
write(OUT + "/strace_key_lines.txt", red("".join(key[:120])))
# stdout / agent exec
j = json.load(open(main + "/stdout.json"))
write(OUT + "/agent_local_stdout.json", red(json.dumps(trim(j, 300), indent=1)[:20000]))
write(OUT + "/agent-exec/stdout.json", red(open(ex + "/stdout.json").read()[:6000]))
write(OUT + "/agent-exec/shell_env.txt", red(open(ex + "/shell_env.txt").read()))
write(OUT + "/agent-exec/hooks_fired.txt", "\n".join(sorted(os.listdir(ex + "/hooks"))) + "\n")
write(OUT + "/stderr.txt", red(open(main + "/stderr.txt").read()[:8000]))
# api
reqs = [json.loads(l) for l in open(main + "/api_requests.jsonl")]
write(OUT + "/api_first_request.json", red(json.dumps(trim(reqs[0], 300), indent=1)))
write(OUT + "/api_requests.jsonl", red("".join(json.dumps({"ts": r["ts"], "path": r["path"], "client": r["client"], "headers": {k: v for k, v in r["headers"].items() if k.lower() != "authorization"}, "n_messages": len((r.get("body") or {}).get("messages") or []), "tools": [t["function"]["name"] for t in (r.get("body") or {}).get("tools") or []], "reply": trim(r.get("reply"), 200)}) + "\n" for r in reqs)))
# file log
try:
    fl = [l for l in open(glob.glob("/tmp/openclaw/openclaw-*.log")[0]) if "traceId" in l][:3]
    write(OUT + "/tmp_openclaw_file_log_excerpt.jsonl", red("".join(fl)))
except Exception as e:
    print("no file log", e)
for f in ("mock_chat.py", "run_openclaw.sh", "make_samples_common.py", "make_openclaw_samples.py"):
    write(OUT + "/scripts/" + f, red(open(S + "/" + f).read()))
for f in ("index.js", "package.json", "openclaw.plugin.json"):
    write(OUT + "/scripts/vigil-dump/" + f, red(open(S + "/vigil-dump/" + f).read()))
