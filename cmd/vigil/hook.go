package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/vigil-sensor/vigil/correlate"
)

// `vigil hook` is the hook command installed in the agents' hook configuration:
//
//	Claude Code (settings.json):  {"type": "command", "command": "vigil hook --agent claude-code"}
//	Codex (hooks.json):           "vigil hook --agent codex"
//	Cursor (hooks.json):          {"command": "vigil hook --agent cursor"}
//
// It reads the hook's stdin JSON and forwards it, with its argv and cwd, in one frame to the
// daemon's socket. It must never block or change the agent: it always exits 0, never writes
// to stdout (Claude Code and Codex read a hook's stdout as instructions), and gives up after
// hookSendTimeout. A hook it cannot deliver (no daemon, refused, timed out, no ack) is
// counted by appending one byte to <undelivered-dir>/<uid>, which the daemon reports as lost.

const (
	// hookSendTimeout bounds connect + write + ack.
	hookSendTimeout = 500 * time.Millisecond
	// hookStdinTimeout bounds reading stdin to EOF. Agents write the JSON and close stdin at
	// once; this only guards against a caller that keeps it open.
	hookStdinTimeout = 2 * time.Second
	// hookMaxArgvBytes and hookMaxCwdBytes keep argv and cwd inside a frame's overhead.
	hookMaxArgvBytes = 16 << 10
	hookMaxCwdBytes  = 4 << 10
)

const hookUsage = `Usage: vigil hook [--agent NAME] [--socket PATH] [--undelivered-dir DIR]
  Forward one agent hook call (JSON on stdin) to the Vigil daemon. Always exits 0 and
  writes nothing to stdout. Install it as a hook command of the agent.
`

// hookCommand runs `vigil hook`. It always returns nil: a hook that fails must not break the
// agent.
func hookCommand(args []string) error {
	return runHook(args, os.Stdin, os.Stderr)
}

// hookOptions are the flags of `vigil hook`.
type hookOptions struct {
	agent          string
	socket         string
	undeliveredDir string
}

// runHook is hookCommand with its stdin and diagnostics stream as parameters. Diagnostics go
// to diag only when a person runs it by hand (stdin is a terminal), never inside an agent.
func runHook(args []string, stdin io.Reader, diag io.Writer) (err error) {
	defer func() {
		// Not even a bug in here may fail the agent's hook.
		if recover() != nil {
			err = nil
		}
	}()
	interactive := isTerminal(stdin)
	opts := hookOptions{socket: correlate.DefaultHookSocket, undeliveredDir: correlate.DefaultUndeliveredDir}
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&opts.agent, "agent", "", "agent that runs the hook: claude-code, codex or cursor")
	fs.StringVar(&opts.socket, "socket", opts.socket, "the daemon's hook socket")
	fs.StringVar(&opts.undeliveredDir, "undelivered-dir", opts.undeliveredDir, "where undelivered hooks are counted")
	perr := fs.Parse(args)
	if interactive || errors.Is(perr, flag.ErrHelp) {
		// A person ran it by hand, or asked for help: explain (on diag, never stdout).
		// Inside an agent a bad flag is ignored and the defaults are used, since saying so
		// could only break the agent.
		if perr != nil && !errors.Is(perr, flag.ErrHelp) {
			fmt.Fprintf(diag, "vigil hook: %v\n", perr)
		}
		fmt.Fprint(diag, hookUsage)
		return nil
	}
	sendHookOrCount(opts, stdin)
	return nil
}

// sendHookOrCount reads stdin and delivers it, or counts it as undelivered.
func sendHookOrCount(opts hookOptions, stdin io.Reader) {
	data, err := readHookStdin(stdin, hookStdinTimeout)
	if err == nil {
		msg := correlate.HookMessage{
			Agent:  opts.agent,
			Stdin:  data,
			Argv:   boundArgv(os.Args, hookMaxArgvBytes),
			Cwd:    hookCwd(),
			SentAt: time.Now(),
		}
		err = sendHook(opts.socket, &msg, hookSendTimeout)
	}
	if err != nil {
		// Nothing more can be done if even this fails: the hook still exits 0.
		_ = correlate.RecordUndelivered(opts.undeliveredDir, os.Getuid(), os.Getpid())
	}
}

// readHookStdin reads r to EOF within timeout, keeping the first MaxHookStdinBytes+1 bytes
// (one more than the limit, so the daemon counts an oversized payload as too large) and
// discarding the rest, so the agent never sees a broken pipe while writing.
func readHookStdin(r io.Reader, timeout time.Duration) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var buf bytes.Buffer
		_, err := buf.ReadFrom(io.LimitReader(r, correlate.MaxHookStdinBytes+1))
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		done <- result{buf.Bytes(), err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("read hook stdin: %w", res.err)
		}
		return res.data, nil
	case <-t.C:
		return nil, fmt.Errorf("read hook stdin: no EOF within %v", timeout)
	}
}

// sendHook sends msg as one frame on a new connection to socket and waits for the daemon's
// ack byte, all within timeout.
func sendHook(socket string, msg *correlate.HookMessage, timeout time.Duration) error {
	frame, err := correlate.AppendHookFrame(nil, msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("send hook: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("send hook: %w", err)
	}
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("send hook: write frame: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return fmt.Errorf("send hook: read ack: %w", err)
	}
	if ack[0] != correlate.HookAck {
		return fmt.Errorf("send hook: ack byte %#x, want %#x", ack[0], correlate.HookAck)
	}
	return nil
}

// boundArgv copies argv, dropping trailing arguments and cutting the last one kept so that
// the total stays within limit bytes.
func boundArgv(argv []string, limit int) []string {
	out := make([]string, 0, len(argv))
	for _, a := range argv {
		if len(a) > limit {
			a = a[:limit]
		}
		limit -= len(a)
		out = append(out, a)
		if limit <= 0 {
			break
		}
	}
	return out
}

// hookCwd is the working directory (the agent's project directory, as the agent started the
// hook there), bounded; "" when unknown.
func hookCwd() string {
	wd, err := os.Getwd()
	if err != nil || len(wd) > hookMaxCwdBytes {
		return ""
	}
	return wd
}

// isTerminal reports whether r is a character device other than /dev/null: a person at a
// terminal rather than an agent's pipe.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
