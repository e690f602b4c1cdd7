package store

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Vigil's own alerts (untrusted telemetry) have no rule: their rule_id is the line's action,
// and rule_name says what it means. A detection rule's alert has its rule's id and name.
const untrustedRuleName = "agent telemetry from a sender outside every agent tree"

// writeRecordLocked writes what a line adds beyond its events row: the typed record it carries
// (session, prompt, tool call) into its table, the binding it applies, or its alert. The
// proto ...Of functions read the records, so the mapping from line fields to record fields has
// one owner. row is the line's events row and id its rowid.
func (s *Store) writeRecordLocked(ctx context.Context, c driverConn, e *proto.Event, row *eventRow, id int64) error {
	timestamp := row.timestamp
	switch e.Event.Action {
	case proto.ActionSession:
		if r, ok := proto.SessionRecordOf(e); ok && r.SessionID != "" {
			if _, err := s.stmts.upsertSession.exec(ctx, r.SessionID, text(r.Agent), timestamp, integer(r.Sender.RootPid),
				text(r.RootEntityID), text(r.Sender.Cwd), integer(r.Sender.Pid), text(r.Sender.Executable),
				text(r.Sender.Transport), s.run); err != nil {
				return fmt.Errorf("upsert session: %w", err)
			}
		}
	case proto.ActionAgentPrompt:
		if r, ok := proto.PromptRecordOf(e); ok && r.PromptID != "" {
			if _, err := s.stmts.upsertPrompt.exec(ctx, r.PromptID, text(r.SessionID), text(r.Agent), timestamp, text(r.Text),
				integer(r.Sender.Pid), text(r.Sender.Transport), s.run); err != nil {
				return fmt.Errorf("upsert prompt: %w", err)
			}
		}
	case proto.ActionAgentToolCall:
		if r, ok := proto.ToolCallRecordOf(e); ok && r.CallID != "" {
			files, err := jsonStrings(r.FilePaths)
			if err != nil {
				return fmt.Errorf("encode tool call file paths: %w", err)
			}
			var success, started any
			if r.Success != nil {
				success = int64(0)
				if *r.Success {
					success = int64(1)
				}
			}
			if r.DurationMs > 0 {
				started = r.Time.Add(-time.Duration(r.DurationMs) * time.Millisecond).UTC().Format(proto.TimeLayout)
			}
			if _, err := s.stmts.upsertToolCall.exec(ctx, r.CallID, text(r.SessionID), text(r.PromptID), text(r.Agent),
				text(r.ToolName), text(r.Command), text(files), text(r.Decision), text(r.DecisionSource), success,
				text(e.Event.Outcome), integer(int(r.DurationMs)), started, timestamp, integer(r.Sender.Pid),
				text(r.Sender.Transport), s.run); err != nil {
				return fmt.Errorf("upsert tool call: %w", err)
			}
		}
	case proto.ActionBinding:
		if r, ok := proto.BindingRecordOf(e); ok && r.Sequence != 0 && r.Sequence <= maxSeq {
			// The fields BindingRecord.Apply sets on the line, on the line's row (its run's).
			var refs [3]any
			for i, v := range []string{r.SessionID, r.PromptID, r.CallID} {
				var err error
				if refs[i], err = s.refLocked(ctx, v); err != nil {
					return fmt.Errorf("apply binding: %w", err)
				}
			}
			if err := s.flushEventsLocked(ctx, c); err != nil {
				return err
			}
			if _, err := s.stmts.applyBinding.exec(ctx, refs[0], refs[1], refs[2], text(r.ToolName),
				text(r.Binding), text(r.Confidence), s.run<<seqBits|int64(r.Sequence)); err != nil {
				return fmt.Errorf("apply binding: %w", err)
			}
		}
	}
	if e.Event.Kind != "alert" {
		return nil
	}
	return s.writeAlertLocked(ctx, e, row, id)
}

// writeAlertLocked adds the alerts row of an alert line. A detection rule's alert names its
// rule and severity; its evidence is the line's extra fields (vigil.alert: the sequences and
// readable evidence, rule.*, tags). For untrusted telemetry the evidence is the sender and
// everything it claimed.
func (s *Store) writeAlertLocked(ctx context.Context, e *proto.Event, row *eventRow, eventID int64) error {
	var name, severity, session, prompt, call any
	ruleID := e.Event.Action
	if e.Event.Action == proto.ActionAgentUntrusted {
		name = untrustedRuleName // the claimed session, prompt and call are evidence, not context
	} else {
		session, prompt, call = text(row.sessionID), text(row.promptID), text(row.callID)
	}
	if e.Rule != nil && e.Rule.ID != "" {
		ruleID, name = e.Rule.ID, text(e.Rule.Name)
	}
	if e.Vigil.Alert != nil {
		severity = text(e.Vigil.Alert.Severity)
	}
	if _, err := s.stmts.insertAlert.exec(ctx, eventID, row.timestamp, ruleID, name, severity, session, prompt, call,
		integer(row.proc.rootPid), blobText(row.extra)); err != nil {
		return fmt.Errorf("insert alert: %w", err)
	}
	return nil
}
