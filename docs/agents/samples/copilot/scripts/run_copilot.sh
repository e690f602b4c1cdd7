#!/bin/bash
# Run the real GitHub Copilot CLI (copilot -p) offline against the loopback chat-completions mock.
# usage: run_copilot.sh OUTDIR [extra copilot args...]
# knobs: SCRIPT=<json> (mock script), NO_STRACE=1, OFFLINE=1 (COPILOT_OFFLINE=true), OTLP_PROTO=http/json|http/protobuf,
#        CAPTURE=1 (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true), NO_HOOKS=1, TRUST=flag|env|none,
#        OTEL_FILE=1 (file exporter instead of OTLP), VIA_LOADER=1 (run npm-loader.js via node), EXTRA_ENV="K=V ..."
#        PROMPT=..., DIRECT=1 (run cache/.../index.js? no) 
set -u
if [ -z "${IN_NETNS:-}" ]; then exec unshare -n env IN_NETNS=1 bash "$0" "$@"; fi
ip link set lo up
HERE=$(cd "$(dirname "$0")" && pwd)
R=/var/tmp/research-copilot
OUT=$(realpath -m "$1"); shift
rm -rf "$OUT"; mkdir -p "$OUT"/{home/.copilot,repo/.github/hooks,hooks}
cd "$OUT/repo"
git init -q . && printf 'hello world\nsecond line\n' > notes.txt
git -c user.email=t@t -c user.name=t add notes.txt && git -c user.email=t@t -c user.name=t commit -qm init
H="$HERE/copilot_hook_dump.py"
hooks_obj() {  # $1 tag
  local ev out="" sep=""
  for ev in sessionStart sessionEnd userPromptSubmitted preToolUse postToolUse postToolUseFailure errorOccurred agentStop subagentStart subagentStop preCompact permissionRequest notification; do
    out="$out$sep\"$ev\":[{\"type\":\"command\",\"bash\":\"$H $1 $ev\",\"timeoutSec\":30}]"; sep=","
  done
  echo "{$out}"
}
if [ "${NO_HOOKS:-0}" != 1 ]; then
  echo "{\"version\":1,\"hooks\":$(hooks_obj project)}" > "$OUT/repo/.github/hooks/vigil.json"
  echo "{\"hooks\":$(hooks_obj user)}" > "$OUT/home/.copilot/settings.json"
else
  echo "{}" > "$OUT/home/.copilot/settings.json"
fi
pascal_obj() {  # $1 tag ; VS Code compatible (PascalCase) event names
  local ev out="" sep=""
  for ev in SessionStart SessionEnd UserPromptSubmit PreToolUse PostToolUse PostToolUseFailure ErrorOccurred Stop SubagentStop PreCompact PermissionRequest; do
    out="$out$sep\"$ev\":[{\"type\":\"command\",\"bash\":\"$H $1 $ev\"}]"; sep=","
  done
  echo "{$out}"
}
[ "${PASCAL:-0}" = 1 ] && echo "{\"version\":1,\"hooks\":$(pascal_obj pascal)}" > "$OUT/repo/.github/hooks/pascal.json"
if [ "${CLAUDE_FMT:-0}" = 1 ]; then mkdir -p "$OUT/repo/.claude"
  c() { echo "[{\"matcher\":\"*\",\"hooks\":[{\"type\":\"command\",\"command\":\"$H claude $1\"}]}]"; }
  echo "{\"hooks\":{\"PreToolUse\":$(c PreToolUse),\"PostToolUse\":$(c PostToolUse),\"UserPromptSubmit\":$(c UserPromptSubmit),\"Stop\":$(c Stop)}}" > "$OUT/repo/.claude/settings.json"; fi
if [ "${POLICY:-0}" = 1 ]; then mkdir -p /etc/github-copilot/policy.d && echo "{\"version\":1,\"hooks\":$(hooks_obj policy)}" > /etc/github-copilot/policy.d/vigil-research.json && chmod 644 /etc/github-copilot/policy.d/vigil-research.json; fi
if [ -n "${SCRIPT:-}" ]; then sed "s#REPO/#$OUT/repo/#g" "$SCRIPT" > "$OUT/script.json"; fi
python3 "$HERE/mock_chat.py" --port 8768 --log "$OUT/api_requests.jsonl" ${SCRIPT:+--script "$OUT/script.json"} 2>"$OUT/mock.err" & MOCK=$!
python3 "$HERE/otlp_receiver.py" --port 4318 --out "$OUT/otlp" 2>"$OUT/otlp.err" & OTLP=$!
( for i in $(seq 1 900); do echo "## $(date +%T.%N)"; ss -tnpaH 2>/dev/null; sleep 0.2; done > "$OUT/ss.txt" ) & SSLOOP=$!
sleep 0.7
PROMPT=${PROMPT:-"Run a shell command, view notes.txt, create out.txt and edit notes.txt. SECRET_PROMPT_MARKER_43"}
OT=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=${OTLP_PROTO:-http/json})
[ "${OTEL_FILE:-0}" = 1 ] && OT=(COPILOT_OTEL_FILE_EXPORTER_PATH="$OUT/otel.jsonl")
[ "${CAPTURE:-0}" = 1 ] && OT+=(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)
[ "${OFFLINE:-0}" = 1 ] && OT+=(COPILOT_OFFLINE=true)
TR=(); TA=()
case "${TRUST:-flag}" in flag) TA=(--trust-folder);; env) TR=(COPILOT_ALLOW_ALL=true);; esac
ENVV=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$OUT/home" TERM=dumb LANG=C.UTF-8 USER=root SHELL=/bin/bash
  COPILOT_PKG_CACHE_HOME=$R/cache COPILOT_AUTO_UPDATE=false HOOK_DUMP_DIR="$OUT/hooks"
  COPILOT_PROVIDER_BASE_URL=http://127.0.0.1:8768/v1 COPILOT_PROVIDER_API_KEY=dummy-provider-key COPILOT_MODEL=${MODEL:-gpt-4.1}
  "${OT[@]}" "${TR[@]}" ${EXTRA_ENV:-})
TRACE=${STRACE_TRACE:-execve,execveat,open,openat,creat,connect,bind,clone,clone3,vfork,fork,exit_group,sendto,sendmsg,rename,renameat,renameat2,unlink,unlinkat,unshare,setns,setsid,setpgid,prctl,seccomp,landlock_create_ruleset,landlock_restrict_self,mkdir,mkdirat}
if [ "${NO_STRACE:-0}" = 1 ]; then ST=(); else ST=(strace -f -tt -yy -s 4096 -e trace=$TRACE -o "$OUT/strace.txt"); fi
if [ "${VIA_LOADER:-0}" = 1 ]; then CP=($R/node_modules/.bin/copilot); else CP=($R/node_modules/@github/copilot-linux-x64/copilot); fi
echo "start $(date +%T.%N)" > "$OUT/timeline.txt"
timeout ${TMO:-240} "${ENVV[@]}" "${ST[@]}" "${CP[@]}" -p "$PROMPT" --allow-all "${TA[@]}" --no-auto-update --output-format json --log-dir "$OUT/logs" --log-level debug "$@" \
   > "$OUT/stdout.jsonl" 2> "$OUT/stderr.txt" < /dev/null
echo "exit $? $(date +%T.%N)" >> "$OUT/timeline.txt"
sleep 2
kill $MOCK $OTLP $SSLOOP 2>/dev/null; wait 2>/dev/null
cp "$OUT/repo/notes.txt" "$OUT/notes.after.txt" 2>/dev/null
if [ "${POLICY:-0}" = 1 ]; then cp /etc/github-copilot/policy.d/vigil-research.json "$OUT/policy_hooks.json"; rm -rf /etc/github-copilot; fi
cat "$OUT/timeline.txt"
