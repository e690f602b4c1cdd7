#!/usr/bin/env python3
"""Build <docs>/samples/copilot/ from the research runs (trim values, replace paths)."""
import json, os, re, glob, shutil, subprocess, sys
R = "/var/tmp/research-copilot"; RUNS = f"{R}/runs"
OUT = "/work/main/docs/agents/samples/copilot"
def sub(s, run):
    s = s.replace(f"{RUNS}/{run}/repo", "<repo>").replace(f"{RUNS}/{run}/home", "<home>").replace(f"{RUNS}/{run}", "<run>")
    s = s.replace(f"{R}/cache/pkg/linux-x64/1.0.102", "<dist>").replace(f"{R}/cache", "<pkg-cache>")
    s = s.replace(f"{R}/node_modules", "<npm-prefix>/node_modules").replace(f"{R}/scripts", "<research>")
    s = s.replace("dummy-provider-key", "<provider-key>")
    return s
def trim(v, n=400):
    if isinstance(v, str): return v if len(v) <= n else v[:n] + f"...<{len(v)} chars>"
    if isinstance(v, list): return [trim(x, n) for x in v]
    if isinstance(v, dict): return {k: trim(x, n) for k, x in v.items()}
    return v
def wr(path, text):
    p = os.path.join(OUT, path); os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "w").write(text)
def wj(path, obj, run): wr(path, sub(json.dumps(obj, indent=1), run) + "\n")

def otlp(run, dest, keep_metrics=True, n=600):
    for f in sorted(glob.glob(f"{RUNS}/{run}/otlp/*.json")):
        if "metrics" in f and not keep_metrics: continue
        d = json.load(open(f))
        for rs in d.get("resourceSpans", []):
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    for a in sp.get("attributes", []):
                        if a["key"] in ("gen_ai.tool.definitions", "gen_ai.system_instructions", "gen_ai.tool.description"):
                            a["value"] = {"stringValue": "<trimmed: " + str(len(json.dumps(a["value"]))) + " chars>"}
        if "metrics" in f:
            for rm in d["resourceMetrics"]:
                for sm in rm["scopeMetrics"]:
                    for mt in sm["metrics"]:
                        for k in ("histogram", "sum", "gauge"):
                            if k in mt: mt[k]["dataPoints"] = mt[k]["dataPoints"][:1]
                            if k in mt and mt[k]["dataPoints"] and "bucketCounts" in mt[k]["dataPoints"][0]:
                                mt[k]["dataPoints"][0]["bucketCounts"] = "<trimmed>"; mt[k]["dataPoints"][0]["explicitBounds"] = "<trimmed>"
        wr(f"{dest}/otlp/{os.path.basename(f)}", sub(json.dumps(trim(d, n), separators=(",", ":")), run) + "\n")
    idx = [json.loads(l) for l in open(f"{RUNS}/{run}/otlp/index.jsonl")]
    wr(f"{dest}/otlp/index.jsonl", "".join(sub(json.dumps(i), run) + "\n" for i in idx))
    o = subprocess.run([sys.executable, f"{R}/scripts/otlp_schema.py", f"{RUNS}/{run}/otlp"], capture_output=True, text=True).stdout
    wr(f"{dest}/otlp_schema.txt", sub(o, run))
    # flat span listing
    lines = []
    for f in sorted(glob.glob(f"{RUNS}/{run}/otlp/*traces.json")):
        for rs in json.load(open(f))["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in sorted(ss["spans"], key=lambda s: int(s["startTimeUnixNano"])):
                    at = {a["key"]: list(a["value"].values())[0] for a in s.get("attributes", [])}
                    lines.append(f'{s["name"]!r} trace={s["traceId"]} span={s["spanId"]} parent={s.get("parentSpanId") or "-"} start={s["startTimeUnixNano"]} end={s["endTimeUnixNano"]} kind={s.get("kind")}')
                    for k, v in at.items(): lines.append(f"    {k} = {trim(str(v), 120)!r}")
                    for ev in s.get("events", []):
                        lines.append(f'    EVENT {ev["name"]} t={ev["timeUnixNano"]} ' + json.dumps({a["key"]: list(a["value"].values())[0] for a in ev.get("attributes", [])})[:300])
    wr(f"{dest}/otlp_spans.txt", sub("\n".join(lines) + "\n", run))

def hooks(run, dest, pick=None, envkeys=("COPILOT", "CLAUDE", "GITHUB", "GH_", "OTEL", "TRACE", "HOOK_DUMP")):
    files = sorted(glob.glob(f"{RUNS}/{run}/hooks/*.json"))
    seen = {}
    for f in files:
        name = re.sub(r"^[0-9.]+_|_[0-9]+\.json$", "", os.path.basename(f))
        if pick and not pick(name): continue
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > (3 if name.startswith("user_") and name.split("_")[1] in ("preToolUse","postToolUse","permissionRequest") else 1): continue
        d = json.load(open(f))
        d["env_selected"] = {k: v for k, v in d.pop("env").items() if k.startswith(envkeys)}
        d["env_note"] = "full env minus the selected keys = the parent env (PATH, HOME, LANG, TERM, USER, SHELL, PWD, SHLVL, _); COPILOT_PROVIDER_* was NOT present"
        d["parent_chain"] = d["parent_chain"][:2]
        wj(f"{dest}/hooks/{os.path.basename(f)}", trim(d, 250), run)

def tree(run, dest):
    raw = subprocess.run([sys.executable, f"{R}/scripts/strace_tree.py", f"{RUNS}/{run}/strace.txt"], capture_output=True, text=True).stdout
    out = []
    for l in raw.splitlines():
        if "(no exec: fork only)" in l: continue
        if re.search(r'exec (/usr/bin/python3|<research>|/var/tmp/research-copilot/scripts/copilot_hook_dump.py) ', l): continue
        out.append(re.sub(r'(argv=\[.{0,600}).*', r'\1', l))
    wr(f"{dest}/process_tree.txt", sub("\n".join(out) + "\n", run))
    withf = subprocess.run([sys.executable, f"{R}/scripts/strace_tree.py", f"{RUNS}/{run}/strace.txt", "--files", "--grep", r"(repo/|\.copilot/)"], capture_output=True, text=True).stdout
    out = [re.sub(r'(argv=\[.{0,300}).*', r'\1', l) for l in withf.splitlines() if "(no exec: fork only)" not in l and "python3" not in l and "copilot_hook_dump" not in l and "/usr/lib/python" not in l]
    wr(f"{dest}/process_tree_with_files.txt", sub("\n".join(out) + "\n", run))
    key = []
    for l in open(f"{RUNS}/{run}/strace.txt", errors="replace"):
        if re.search(r'setsid\(|execve\("/bin/bash"|connect\(.*AF_INET|(notes|out)\.txt"|rename|events\.jsonl"', l) and "python" not in l and "copilot_hook_dump" not in l:
            key.append(trim(l.rstrip("\n"), 700))
    wr(f"{dest}/strace_key_lines.txt", sub("\n".join(key) + "\n", run))

def api(run, dest):
    reqs = [json.loads(l) for l in open(f"{RUNS}/{run}/api_requests.jsonl")]
    first = reqs[0]; b = dict(first["body"])
    b["tools"] = [{"name": t["function"]["name"], "parameters": trim(t["function"].get("parameters"), 200)} for t in b.get("tools", [])]
    b["messages"] = trim(b["messages"], 600)
    first = dict(first, body=b)
    wj(f"{dest}/api_first_request.json", first, run)
    lines = []
    for e in reqs:
        bb = e["body"] or {}
        lines.append(sub(json.dumps({"ts": e["ts"], "path": e["path"], "client": e["client"], "step": e.get("step"), "reply": trim(e.get("reply"), 300),
                                     "n_messages": len(bb.get("messages", [])), "last_messages": trim(bb.get("messages", [])[-2:], 300)}), run))
    wr(f"{dest}/api_requests.jsonl", "\n".join(lines) + "\n")

def stdout(run, dest, n=160):
    lines = []
    for l in open(f"{RUNS}/{run}/stdout.jsonl"):
        e = json.loads(l)
        if e["type"] in ("tool.shell_output", "tool.execution_partial_result", "assistant.message_delta", "session.skills_loaded", "assistant.reasoning_delta"): continue
        lines.append(sub(json.dumps(trim(e, n)), run))
    wr(f"{dest}/stdout_output_format_json.jsonl", "\n".join(lines[:45]) + "\n")

def events(run, dest):
    f = glob.glob(f"{RUNS}/{run}/home/.copilot/session-state/*/events.jsonl")[0]
    lines = [sub(json.dumps(trim(json.loads(l), 120)), run) for l in open(f) if json.loads(l)["type"] not in ("system.message", "session.skills_loaded")]
    wr(f"{dest}/session_state_events.jsonl", "\n".join(lines[:45]) + f"\n... ({len(lines)} records in total)\n")

# main run
shutil.rmtree(OUT, ignore_errors=True); os.makedirs(OUT)
m = "m2"
otlp(m, "."); hooks(m, "."); tree(m, "."); api(m, "."); stdout(m, "."); events(m, ".")
wr("shell_env.txt", sub(open(f"{RUNS}/{m}/shell_env.txt").read(), m))
wr("settings_user.json", sub(open(f"{RUNS}/{m}/home/.copilot/settings.json").read(), m))
wr("hooks_project_vigil.json", sub(open(f"{RUNS}/{m}/repo/.github/hooks/vigil.json").read(), m))
wr("mock_script.json", sub(open(f"{RUNS}/{m}/script.json").read(), m))
wr("stderr.txt", sub(open(f"{RUNS}/{m}/stderr.txt").read()[:4000], m))
# parallel / async / capture / pascal / claude / policy
p = "p1"
otlp(p, "parallel-capture", keep_metrics=False, n=300)
hooks(p, "parallel-capture", pick=lambda n: n in ("pascal_PreToolUse", "claude_PreToolUse", "policy_preToolUse", "user_notification", "pascal_PermissionRequest", "pascal_SessionStart", "claude_PostToolUse"))
tree(p, "parallel-capture"); os.remove(os.path.join(OUT, "parallel-capture", "strace_key_lines.txt")); t = open(os.path.join(OUT, "parallel-capture", "process_tree.txt")).read().splitlines(); wr("parallel-capture/process_tree.txt", "\n".join(x for x in t if "copilot_hook_dump.py" not in x) + "\n(hook invocations omitted: see ../process_tree.txt)\n"); os.remove(os.path.join(OUT, "parallel-capture", "process_tree_with_files.txt"))
wr("parallel-capture/mock_script.json", sub(open(f"{RUNS}/{p}/script.json").read(), p))
wr("parallel-capture/hooks_pascal.json", sub(open(f"{RUNS}/{p}/repo/.github/hooks/pascal.json").read(), p))
wr("parallel-capture/claude_settings.json", sub(open(f"{RUNS}/{p}/repo/.claude/settings.json").read(), p))
wr("parallel-capture/policy_hooks.json", sub(open(f"{RUNS}/{p}/policy_hooks.json").read(), p))
# not offline: gh probes + api.github.com
m1 = "m1"; log = glob.glob(f"{RUNS}/{m1}/logs/*.log")[0]; L = open(log).read().splitlines()
ex = [l for l in L if "gh` was not found" in l][:3] + [f"... ({sum('gh` was not found' in l for l in L)} such lines in a 10 s run)"] + [l for l in L if "api.github.com" in l or "Authentication method resolution" in l][:16]
wr("not-offline/process_log_excerpt.txt", sub("\n".join(trim(x, 400) for x in ex) + "\n", m1))
wr("not-offline/connects.txt", sub(subprocess.run(f"grep -E 'connect\\(' {RUNS}/{m1}/strace.txt | grep -E 'AF_INET|nscd' | head -12", shell=True, capture_output=True, text=True).stdout, m1))
# untrusted folder
u = "u1"; wr("untrusted-folder/hooks_fired.txt", "\n".join(sorted(re.sub(r"^[0-9.]+_|_[0-9]+\.json$", "", os.path.basename(f)) for f in glob.glob(f"{RUNS}/{u}/hooks/*.json"))) + "\n(no --trust-folder, no COPILOT_ALLOW_ALL=true: repo hooks in .github/hooks/ silently skipped; user hooks ran)\n")
# npm loader tree
l = "l1"; tree(l, "npm-loader"); 
for f in ("process_tree_with_files.txt", "strace_key_lines.txt"): os.remove(os.path.join(OUT, "npm-loader", f))
# scripts
for s in ("run_copilot.sh", "mock_chat.py", "copilot_hook_dump.py", "make_copilot_samples.py", "strace_tree.py"):
    wr(f"scripts/{s}", open(f"{R}/scripts/{s}").read().replace(R, "/var/tmp/research-copilot"))
print(subprocess.run(["du", "-sh", OUT], capture_output=True, text=True).stdout)
