#!/bin/bash
# Run the real OpenClaw CLI (openclaw agent --local) against loopback mocks, fully offline.
# usage: run_openclaw.sh OUTDIR      knobs: NO_STRACE=1 NO_PLUGIN=1 INJECT_ENV=1 OTEL=1 MODE=local|exec EXTRA_ENV="K=V ..." OC_ARGS="..."
set -u
if [ -z "${IN_NETNS:-}" ]; then exec unshare -n env IN_NETNS=1 bash "$0" "$@"; fi
ip link set lo up
HERE=$(cd "$(dirname "$0")" && pwd)
NODEBIN=<node24>/bin
OC=${OC:-<npm-prefix>/node_modules/.bin/openclaw}
OUT=$(realpath -m "$1"); shift
rm -rf "$OUT"; mkdir -p "$OUT"/{home/.openclaw,repo,hooks}
cd "$OUT/repo"
git init -q . && printf 'hello world\nsecond line\n' > notes.txt
git -c user.email=t@t -c user.name=t add notes.txt && git -c user.email=t@t -c user.name=t commit -qm init
OUT="$OUT" HERE="$HERE" python3 - <<'PY'
import json, os
out, here = os.environ["OUT"], os.environ["HERE"]
cfg = {
  "models": {"providers": {"mock": {"baseUrl": "http://127.0.0.1:8766/v1", "apiKey": "<api-key>", "api": "openai-completions",
     "models": [{"id": "mock-model", "name": "Mock Model", "reasoning": False, "input": ["text"], "contextWindow": 128000, "maxTokens": 4096,
                 "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}}]}}},
  "agents": {"defaults": {"model": {"primary": "mock/mock-model"}, "workspace": out + "/repo"}},
}
plugins = {"load": {"paths": []}, "allow": [], "entries": {}}
if os.environ.get("NO_PLUGIN") != "1":
    plugins["load"]["paths"].append(here + "/vigil-dump"); plugins["allow"].append("vigil-dump")
    plugins["entries"]["vigil-dump"] = {"enabled": True, "hooks": {"allowConversationAccess": True}}
if os.environ.get("OTEL_PLUGIN_DIR"):
    plugins["load"]["paths"].append(os.environ["OTEL_PLUGIN_DIR"]); plugins["allow"].append("diagnostics-otel")
    plugins["entries"]["diagnostics-otel"] = {"enabled": True}
if plugins["allow"]:
    cfg["plugins"] = plugins
if os.environ.get("OTEL") == "1":
    cfg["diagnostics"] = {"enabled": True, "otel": {"enabled": True, "endpoint": "http://127.0.0.1:4318", "protocol": "http/protobuf",
        "serviceName": os.environ.get("OTEL_SERVICE", "openclaw"), "traces": True, "metrics": True, "logs": True, "sampleRate": 1, "flushIntervalMs": 1000}}
extra = os.environ.get("CFG_EXTRA")
if extra:
    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict): merge(a[k], v)
            else: a[k] = v
    merge(cfg, json.loads(extra))
json.dump(cfg, open(out + "/home/.openclaw/openclaw.json", "w"), indent=1)
PY
python3 "$HERE/../../opencode/scripts/mock_chat.py" --port 8766 --log "$OUT/api_requests.jsonl" --cwd "$OUT/repo" --envdump "$OUT/shell_env.txt" ${MOCK_ARGS:-} 2>"$OUT/mock.err" & MOCK=$!
python3 "$HERE/otlp_receiver.py" --port 4318 --out "$OUT/otlp" 2>"$OUT/otlp.err" & OTLP=$!
sleep 0.7
PROMPT=${PROMPT:-"Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_43"}
ENVV=(env -i PATH=$NODEBIN:/usr/local/bin:/usr/bin:/bin HOME="$OUT/home" TERM=dumb LANG=C.UTF-8 USER=root SHELL=/bin/bash
  HOOK_DUMP_DIR="$OUT/hooks" INJECT_ENV=${INJECT_ENV:-0} ${EXTRA_ENV:-})
TRACE=execve,execveat,openat,creat,connect,bind,clone,clone3,vfork,fork,exit_group,rename,renameat,renameat2,unlink,unlinkat,setsid,setpgid,prctl,seccomp
if [ "${NO_STRACE:-0}" = 1 ]; then ST=(); else ST=(strace ${ST_EXTRA:-} -f -tt -yy -s 4096 -e trace=$TRACE -o "$OUT/strace.txt"); fi
if [ "${MODE:-local}" = exec ]; then CMD=(agent exec --json ${OC_ARGS:-} "$PROMPT"); else CMD=(agent --local --session-id ${SESSION_ID:-vigil-s1} --json ${OC_ARGS:-} --message "$PROMPT"); fi
echo "start $(date +%T.%N)" > "$OUT/timeline.txt"
timeout ${TMO:-180} "${ENVV[@]}" "${ST[@]}" "$OC" "${CMD[@]}" > "$OUT/stdout.json" 2> "$OUT/stderr.txt" < /dev/null
echo "exit $? $(date +%T.%N)" >> "$OUT/timeline.txt"
sleep 2
kill $MOCK $OTLP 2>/dev/null; wait 2>/dev/null
cp "$OUT/repo/notes.txt" "$OUT/notes.after.txt" 2>/dev/null
cat "$OUT/timeline.txt"
