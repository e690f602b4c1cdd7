package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/ocsf"
)

// ocsfFixture is the trace fixture as output.format ocsf writes it.
func ocsfFixture(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e proto.Event
		if err := proto.UnmarshalJSON(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if out, err = ocsf.AppendLine(out, &e, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return string(out)
}

// vigil trace and vigil query --jsonl read native records only: given a file written with
// output.format ocsf they fail, saying why and what to read instead, rather than showing no
// activity.
func TestReadersRefuseOCSF(t *testing.T) {
	in := ocsfFixture(t)
	var out, errOut bytes.Buffer
	err := runTrace([]string{"--jsonl", "-"}, strings.NewReader(in), &out, &errOut, traceRepos)
	if !errors.Is(err, ocsf.ErrNotNative) || !strings.Contains(err.Error(), "trace: read -: line 1: an OCSF event") {
		t.Errorf("trace: %v", err)
	}
	if _, _, err := query(t, in, "--jsonl", "-", "SELECT count(*) FROM events"); !errors.Is(err, ocsf.ErrNotNative) ||
		!strings.Contains(err.Error(), "vigil query --db") {
		t.Errorf("query: %v", err)
	}
}
