package main

import (
	"time"
)

// opencodeToolUse is the part of a tool_use event of `opencode run --format json`.
type opencodeToolUse struct {
	Tool   string `json:"tool"`
	CallID string `json:"callID"`
	State  struct {
		Status string `json:"status"`
		Input  struct {
			Command  string `json:"command"`
			FilePath string `json:"filePath"`
		} `json:"input"`
		Metadata struct {
			Exit *int `json:"exit"`
		} `json:"metadata"`
		Time struct {
			Start int64 `json:"start"` // ms since the epoch
			End   int64 `json:"end"`
		} `json:"time"`
	} `json:"state"`
}

// opencodeToolUses reads the tool_use events of opencode's JSON output.
func opencodeToolUses(stream []byte) []opencodeToolUse {
	var out []opencodeToolUse
	for _, ev := range outputEvents[struct {
		Part opencodeToolUse `json:"part"`
	}](stream, "tool_use") {
		out = append(out, ev.Part)
	}
	return out
}

// opencodeFromOutput sets each call's RanFrom/RanTo to the time opencode's JSON output says
// it ran the tool (part.state.time.start, end: ms since the epoch; the end is widened to the
// next millisecond, which the truncation may have cut), and IsError when it says the shell
// exited non-zero (metadata.exit): the result opencode sends the model is the command's
// output alone, without its exit code.
func opencodeFromOutput(calls []Call, stream []byte) {
	for _, u := range opencodeToolUses(stream) {
		for i := range calls {
			if calls[i].ID != u.CallID {
				continue
			}
			if u.State.Time.Start > 0 && u.State.Time.End >= u.State.Time.Start {
				calls[i].RanFrom = time.UnixMilli(u.State.Time.Start)
				calls[i].RanTo = time.UnixMilli(u.State.Time.End + 1)
			}
			if u.State.Metadata.Exit != nil && *u.State.Metadata.Exit != 0 {
				calls[i].IsError = true
			}
		}
	}
}
