#!/bin/bash
# Run the real opencode CLI (opencode run) against loopback mocks, fully offline.
# usage: run_opencode.sh OUTDIR      knobs: NO_STRACE=1 NO_PLUGIN=1 INJECT_ENV=1 OTEL_ON=0 AI_OTEL=0 EXTRA_ENV="K=V ..." OC_ARGS="..."
set -u
if [ -z "${IN_NETNS:-}" ]; then exec unshare -n env IN_NETNS=1 bash "$0" "$@"; fi
ip link set lo up
HERE=$(cd "$(dirname "$0")" && pwd)
OC=${OC:-<npm-prefix>/node_modules/.bin/opencode}
OUT=$(realpath -m "$1"); shift
rm -rf "$OUT"; mkdir -p "$OUT"/{home/.config/opencode,repo,hooks}
cd "$OUT/repo"
git init -q . && printf 'hello world\nsecond line\n' > notes.txt
git -c user.email=t@t -c user.name=t add notes.txt && git -c user.email=t@t -c user.name=t commit -qm init
PLUG=""
if [ "${NO_PREINSTALL:-0}" != 1 ]; then cp <research>/plugin-tpl/package*.json "$OUT/home/.config/opencode/"; ln -s <research>/plugin-tpl/node_modules "$OUT/home/.config/opencode/node_modules"; fi
[ "${NO_PLUGIN:-0}" = 1 ] || PLUG="\"plugin\": [\"file://$HERE/dump_plugin.js\"],"
cat > "$OUT/home/.config/opencode/opencode.json" <<J
{
  "\$schema": "https://opencode.ai/config.json",
  "autoupdate": false,
  "share": "disabled",
  "model": "mock/mock-model",
  $PLUG
  "permission": {"*": "allow"},
  "experimental": {"openTelemetry": ${AI_OTEL_JSON:-true}},
  "provider": {
    "mock": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "Mock",
      "options": {"baseURL": "http://127.0.0.1:8766/v1", "apiKey": "<api-key>"},
      "models": {"mock-model": {"name": "Mock Model", "tool_call": true, "limit": {"context": 100000, "output": 4096}}}
    }
  }
}
J
python3 "$HERE/mock_chat.py" --port 8766 --log "$OUT/api_requests.jsonl" --cwd "$OUT/repo" --envdump "$OUT/shell_env.txt" ${MOCK_ARGS:-} 2>"$OUT/mock.err" & MOCK=$!
python3 "$HERE/otlp_receiver.py" --port 4318 --out "$OUT/otlp" 2>"$OUT/otlp.err" & OTLP=$!
sleep 0.7
OT=()
[ "${OTEL_ON:-1}" = 1 ] && OT=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318)
PROMPT=${PROMPT:-"Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_43"}
ENVV=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$OUT/home" TERM=dumb LANG=C.UTF-8 USER=root SHELL=/bin/bash
  XDG_CONFIG_HOME="$OUT/home/.config" XDG_DATA_HOME="$OUT/home/.local/share" XDG_CACHE_HOME="$OUT/home/.cache" XDG_STATE_HOME="$OUT/home/.local/state"
  HOOK_DUMP_DIR="$OUT/hooks" INJECT_ENV=${INJECT_ENV:-0} OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1 OPENCODE_DISABLE_SHARE=1
  "${OT[@]}" ${EXTRA_ENV:-})
TRACE=execve,execveat,openat,creat,connect,bind,clone,clone3,vfork,fork,exit_group,rename,renameat,renameat2,unlink,unlinkat,setsid,setpgid,prctl,seccomp
if [ "${NO_STRACE:-0}" = 1 ]; then ST=(); else ST=(strace -f -tt -yy -s 4096 -e trace=$TRACE -o "$OUT/strace.txt"); fi
echo "start $(date +%T.%N)" > "$OUT/timeline.txt"
timeout ${TMO:-120} "${ENVV[@]}" "${ST[@]}" "$OC" run --format json --print-logs --log-level DEBUG ${OC_ARGS:-} "$PROMPT" \
   > "$OUT/stdout.jsonl" 2> "$OUT/stderr.txt" < /dev/null
echo "exit $? $(date +%T.%N)" >> "$OUT/timeline.txt"
sleep 2
kill $MOCK $OTLP 2>/dev/null; wait 2>/dev/null
cp "$OUT/repo/notes.txt" "$OUT/notes.after.txt" 2>/dev/null
cat "$OUT/timeline.txt"
