import json, os, glob, shutil, subprocess, sys, re
sys.path.insert(0, os.path.dirname(__file__))
from make_samples_common import *
R = "<research>"; RUNS = R + "/runs"
OUT = sys.argv[1]
main, inj, par = RUNS + "/o2", RUNS + "/o3", RUNS + "/o5"
red = mk_redact(R, [RUNS + "/o%d" % i for i in range(10)])
shutil.rmtree(OUT, ignore_errors=True); os.makedirs(OUT)

# config
write(OUT + "/opencode.json", red(open(main + "/home/.config/opencode/opencode.json").read()))
# OTLP: index, schema, trimmed payloads
write(OUT + "/otlp/index.jsonl", red("".join(open(main + "/otlp/index.jsonl").readlines())))
sch = subprocess.run(["python3", R + "/scripts/otlp_schema.py", main + "/otlp"], capture_output=True, text=True).stdout
write(OUT + "/otlp_schema.txt", red(sch))
KEEP = {"Tool.execute", "ai.toolCall", "ShellTool.run", "ShellTool.shellEnv", "ShellTool.ask", "Permission.ask", "ReadTool.execute",
        "FileSystem.writeWithDirs", "ai.streamText", "ai.streamText.doStream", "LLM.run", "SessionProcessor.process",
        "SessionTools.resolve", "SessionPrompt.ops", "http.server POST", "Session.create", "Format.file"}
allspans = {}
for fn in sorted(glob.glob(main + "/otlp/*_traces.json")):
    j = json.load(open(fn))
    for r in j["resourceSpans"]:
        for s in r["scopeSpans"]:
            for sp in s["spans"]:
                allspans[sp["spanId"]] = sp
for fn in sorted(glob.glob(main + "/otlp/*.json")):
    j = json.load(open(fn)); base = os.path.basename(fn)
    if "resourceSpans" in j:
        for r in j["resourceSpans"]:
            for s in r["scopeSpans"]:
                s["spans"] = [trim(sp, 160) for sp in s["spans"] if sp["name"] in KEEP]
        if not any(sp["name"] == "Tool.execute" for r in j["resourceSpans"] for s in r["scopeSpans"] for sp in s["spans"]):
            continue
        if not any(s["spans"] for r in j["resourceSpans"] for s in r["scopeSpans"]):
            continue
    else:
        if base not in ("0001_logs.json", "0006_logs.json"): continue
        j = trim(j, 300)
    write(OUT + "/otlp/" + base, red(json.dumps(j, indent=1)))
# flattened span tree for tool calls
lines = []
for sp in sorted(allspans.values(), key=lambda s: s["startTimeUnixNano"]):
    if sp["name"] not in KEEP: continue
    a = {x["key"]: aval(x["value"]) for x in sp.get("attributes", [])}
    par_ = allspans.get(sp.get("parentSpanId"), {}).get("name", "?")
    keep = {k: (str(v)[:120]) for k, v in a.items() if k in ("tool.name", "tool.call_id", "session.id", "message.id", "ai.toolCall.id", "ai.toolCall.name", "ai.toolCall.args", "ai.response.finishReason", "ai.model.id", "http.route")}
    lines.append(f"{int(sp['startTimeUnixNano'])/1e9:.6f} +{(int(sp['endTimeUnixNano'])-int(sp['startTimeUnixNano']))/1e6:8.1f}ms trace={sp['traceId'][:8]} span={sp['spanId']} parent={sp.get('parentSpanId','')}({par_}) {sp['name']} {json.dumps(keep)}")
write(OUT + "/otlp_tool_spans.txt", red("# spans of the main run (Tool.execute/ai.toolCall etc.), start epoch s, duration; the 4th tool call (edit) and the final turn are missing: never exported\n" + "\n".join(lines) + "\n"))
# log records sample
logl = []
for fn in sorted(glob.glob(main + "/otlp/*_logs.json")):
    j = json.load(open(fn))
    for r in j["resourceLogs"]:
        for s in r["scopeLogs"]:
            for lr in s["logRecords"]:
                b = aval(lr.get("body", {}))
                logl.append(json.dumps({"t": lr["timeUnixNano"], "sev": lr.get("severityText"), "traceId": lr.get("traceId"), "spanId": lr.get("spanId"), "attrs": {x["key"]: aval(x["value"]) for x in lr.get("attributes", [])}, "body": trim(b, 250)}))
write(OUT + "/otlp_log_records.jsonl", red("\n".join(logl[:60]) + "\n"))
# hooks
hk = sorted(glob.glob(main + "/hooks/*.json"))
sel = [h for h in hk if re.search(r"_(plugin\.init|chat\.message|chat\.params|chat\.headers|permission|tool\.execute\.before|tool\.execute\.after|shell\.env|event\.session\.created|event\.session\.idle)\.json$", h)]
seen = set()
for h in sel:
    name = re.sub(r"^\d+_", "", os.path.basename(h))
    if name in ("chat.params.json", "chat.headers.json") and name in seen: continue
    seen.add(name)
    j = json.load(open(h))
    write(OUT + "/hooks/" + os.path.basename(h), red(json.dumps(trim(j, 500), indent=1)))
# a tool part event
for h in hk:
    if "event.message.part.updated" in h:
        j = json.load(open(h))
        if j["input"].get("properties", {}).get("part", {}).get("type") == "tool" and j["input"]["properties"]["part"]["state"]["status"] == "running":
            write(OUT + "/hooks/" + os.path.basename(h), red(json.dumps(trim(j, 500), indent=1))); break
import collections
cnt = collections.Counter(re.sub(r"^\d+_", "", os.path.basename(h))[:-5] for h in hk)
write(OUT + "/hooks/_counts.txt", "".join(f"{v:4d} {k}\n" for k, v in sorted(cnt.items())))
for h in sorted(glob.glob(inj + "/hooks/*shell.env.json"))[:1]:
    write(OUT + "/inject-env/" + os.path.basename(h), red(json.dumps(trim(json.load(open(h)), 500), indent=1)))
write(OUT + "/inject-env/shell_env.txt", red(open(inj + "/shell_env.txt").read()))
# shell env
write(OUT + "/shell_env.txt", red(open(main + "/shell_env.txt").read()))
# process tree
pt = subprocess.run(["python3", R + "/scripts/strace_tree.py", main + "/strace.txt"], capture_output=True, text=True).stdout
write(OUT + "/process_tree.txt", red("\n".join(l[:260] for l in pt.splitlines()) + "\n"))
ptf = subprocess.run(["python3", R + "/scripts/strace_tree.py", main + "/strace.txt", "--files", "--grep", r"repo/(notes|out)\.txt|^(notes|out)\.txt|opencode\.json|\.config/opencode|opencode\.db"], capture_output=True, text=True).stdout
write(OUT + "/process_tree_with_files.txt", red("\n".join(l[:260] for l in ptf.splitlines() if " open " in l or "bash" in l or l.startswith("[") or "connect" in l) + "\n"))
# strace key lines
key = []
for l in open(main + "/strace.txt", errors="replace"):
    if re.search(r'execve\("/bin/bash"|setsid|connect\(.*(8766|4318)|repo/(notes|out)\.txt", O_(WR|RDWR|RDONLY)|PR_SET_NAME.*(Bun Pool|HTTP Client|fff|notify)', l) and "ENOENT" not in l:
        key.append(l[:700])
write(OUT + "/strace_key_lines.txt", red("".join(key[:80])))
# parallel
pp = subprocess.run(["python3", R + "/scripts/strace_tree.py", par + "/strace.txt"], capture_output=True, text=True).stdout
write(OUT + "/parallel/process_tree.txt", red("\n".join(l for l in pp.splitlines() if "bash" in l or "PAR_" in l or l.startswith("[")) + "\n"))
write(OUT + "/parallel/stdout_tool_parts.jsonl", red("".join(l for l in open(par + "/stdout.jsonl") if '"tool_use"' in l)))
# stdout
write(OUT + "/run_format_json_stdout.jsonl", red("".join(json.dumps(trim(json.loads(l), 300)) + "\n" for l in open(main + "/stdout.jsonl"))))
write(OUT + "/stderr_excerpt.txt", red("".join(l for l in open(main + "/stderr.txt") if "level=DEBUG" not in l)[:12000]))
# api
reqs = [json.loads(l) for l in open(main + "/api_requests.jsonl")]
first = next(r for r in reqs if (r.get("body") or {}).get("tools"))
write(OUT + "/api_first_request.json", red(json.dumps(trim(first, 300), indent=1)))
write(OUT + "/api_requests.jsonl", red("".join(json.dumps({"ts": r["ts"], "path": r["path"], "client": r["client"], "headers": {k: v for k, v in r["headers"].items() if k.lower() != "authorization"}, "n_messages": len((r.get("body") or {}).get("messages") or []), "n_tools": len((r.get("body") or {}).get("tools") or []), "reply": trim(r.get("reply"), 200)}) + "\n" for r in reqs)))
# scripts
for f in ("mock_chat.py", "dump_plugin.js", "run_opencode.sh", "make_samples_common.py", "make_opencode_samples.py"):
    write(OUT + "/scripts/" + f, red(open(R + "/scripts/" + f).read()))
