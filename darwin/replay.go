package darwin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigil-sensor/vigil/sensor"
)

// NewReplay returns a source that reads a recorded eslogger capture (JSON lines, as
// `eslogger exec fork ... > FILE` writes them) through the same decoder, tree filter and loss
// accounting as the live source, on any OS; its Run returns once the capture is read, so the
// pipeline drains and `vigil run` exits (forensics, tests).
//
// What the replay cannot know, it does not invent:
//   - no bootstrap: the processes running when the capture began are unknown, so a tree is
//     followed only from its root's exec in the capture (Started.Seeded is empty);
//   - the boot id is "replay:" and the first 16 hex digits of the capture's SHA-256: process
//     identities are unique within one capture and the same at every replay of it, and never
//     collide with a live boot's;
//   - the agents' installed files are not this machine's business: a tree starts at an
//     agent's name, path or script only, never at the identity of a local file;
//   - no telemetry sender can be found (Peers is nil).
func NewReplay(path string, opts Options) (*Source, error) {
	t0 := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open eslogger capture: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("hash eslogger capture %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("rewind eslogger capture %s: %w", path, err)
	}
	bootID := "replay:" + hex.EncodeToString(h.Sum(nil)[:8])
	return newSource(opts, &capture{f: f}, nil, sensor.Started{BootID: bootID, Ready: time.Since(t0)}), nil
}

// capture is a recorded eslogger output, read once.
type capture struct {
	f    *os.File
	read bool
}

// next returns the capture the first time. Where it starts in ES's numbering is unknown (a
// capture may begin mid-run), so its first sequence numbers are not counted as drops unless
// they start at zero.
func (c *capture) next(context.Context) (io.ReadCloser, bool, error) {
	if c.read {
		return nil, false, io.EOF
	}
	c.read = true
	return io.NopCloser(c.f), false, nil
}

func (c *capture) close() error { return c.f.Close() }
