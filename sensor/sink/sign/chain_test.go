package sign

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

// Lines as the writer writes them: a kernel line of vigil run, an OCSF-shaped line, an empty
// object.
var realLines = []string{
	`{"@timestamp":"2025-11-24T08:31:07.000000004Z","event":{"action":"open","outcome":"success","kind":"event","category":"file","dataset":"vigil.kernel","sequence":4},"process":{"pid":52398,"name":"go","executable":"/usr/local/go/bin/go"},"file":{"path":"/home/alice/src/payments/pkg4/file.go","access":"read"}}`,
	`{"class_uid":1007,"category_uid":1,"activity_id":1,"time":1764000000000,"process":{"pid":7,"cmd_line":"a \"}}\" b"},"metadata":{"version":"1.5.0"}}`,
	`{}`,
}

func TestAppendChainedThenParseLink(t *testing.T) {
	h := Head{Seq: 41, Hash: sha256.Sum256([]byte("previous line"))}
	for _, l := range realLines {
		buf := []byte("earlier lines\n" + l + "\n")
		start := len("earlier lines\n")
		out, next, ok := appendChained(buf, start, h)
		if !ok {
			t.Fatalf("appendChained(%s) refused the line", l)
		}
		if !bytes.HasPrefix(out, []byte("earlier lines\n")) || out[len(out)-1] != '\n' {
			t.Fatalf("appendChained touched the lines before, or lost the newline: %q", out)
		}
		line := out[start : len(out)-1]
		if len(line)-len(l) > Overhead {
			t.Errorf("the chain field took %d bytes, more than Overhead (%d)", len(line)-len(l), Overhead)
		}
		link, ok := ParseLink(line)
		if !ok {
			t.Fatalf("ParseLink(%s) = not a chained line", line)
		}
		if link.Seq != 42 || link.Prev != h.Hash || next.Seq != 42 || next.Hash != sha256.Sum256(line) {
			t.Errorf("link %+v, next %+v: want seq 42, prev %s, next hash of the line", link, next, h.Hash)
		}
		if got := string(line[:link.Body]) + "}"; got != l {
			t.Errorf("the body before the chain field is %s, want the original line %s", got, l)
		}
	}
}

func TestAppendChainedRefusesWhatIsNotAnObjectLine(t *testing.T) {
	for _, l := range []string{"[1,2]\n", `{"a":1}`, "{\"a\":1} \n", "\n", "x}\n"} {
		if _, _, ok := appendChained([]byte(l), 0, Head{}); ok {
			t.Errorf("appendChained(%q) accepted it", l)
		}
	}
}

func TestParseLinkIsStrict(t *testing.T) {
	zero := strings.Repeat("0", 64)
	valid := `{"a":1,"chain":{"seq":7,"prev":"` + zero + `"}}`
	if _, ok := ParseLink([]byte(valid)); !ok {
		t.Fatalf("ParseLink refused %s", valid)
	}
	for name, l := range map[string]string{
		"no chain field":        `{"a":1}`,
		"seq 0":                 `{"a":1,"chain":{"seq":0,"prev":"` + zero + `"}}`,
		"leading zero":          `{"a":1,"chain":{"seq":07,"prev":"` + zero + `"}}`,
		"uppercase hash":        `{"a":1,"chain":{"seq":7,"prev":"` + strings.Repeat("A", 64) + `"}}`,
		"short hash":            `{"a":1,"chain":{"seq":7,"prev":"` + zero[2:] + `"}}`,
		"not the last member":   `{"chain":{"seq":7,"prev":"` + zero + `"},"a":1}`,
		"space after comma":     `{"a":1, "chain":{"seq":7,"prev":"` + zero + `"}}`,
		"seq overflow":          `{"a":1,"chain":{"seq":18446744073709551616,"prev":"` + zero + `"}}`,
		"nested, not top level": `{"a":{"chain":{"seq":7,"prev":"` + zero + `"}}`,
		"trailing space":        valid + " ",
		"not an object":         `["chain":{"seq":7,"prev":"` + zero + `"}}`,
	} {
		if _, ok := ParseLink([]byte(l)); ok {
			t.Errorf("%s: ParseLink accepted %s", name, l)
		}
	}
}

// FuzzParseLink: the verifier reads files anyone with root may have written. ParseLink must
// not panic, and what it accepts must be exactly what appendChained writes for that body.
func FuzzParseLink(f *testing.F) {
	for _, l := range realLines {
		out, _, _ := appendChained([]byte(l+"\n"), 0, Head{Seq: 9, Hash: sha256.Sum256([]byte(l))})
		f.Add(out[:len(out)-1])
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		link, ok := ParseLink(line)
		if !ok {
			return
		}
		body := append(append([]byte{}, line[:link.Body]...), "}\n"...)
		out, _, ok := appendChained(body, 0, Head{Seq: link.Seq - 1, Hash: link.Prev})
		if !ok || !bytes.Equal(out[:len(out)-1], line) {
			t.Fatalf("ParseLink(%q) = %+v, but chaining its body again gives %q", line, link, out)
		}
	})
}

// FuzzParseSeal: a seal line is decoded as JSON from outside input; what parseSeal accepts as a
// well-formed seal re-encodes to the same bytes.
func FuzzParseSeal(f *testing.F) {
	s := Seal{Reason: ReasonInterval, Epoch: 3, First: 1, Next: make([]byte, 32), Sig: make([]byte, 64)}
	s.Time = s.Time.AddDate(2025, 0, 0)
	body := s.appendBody(nil)
	f.Add(body[:len(body)-2])
	f.Add([]byte(`{"@timestamp":"x","event":{"dataset":"vigil.integrity","action":"seal"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, ok := parseSeal(body)
		if !ok || s.Time.IsZero() {
			return
		}
		if got := s.appendBody(nil); !bytes.Equal(got, append(append([]byte{}, body...), "}\n"...)) {
			t.Fatalf("parseSeal accepted %q, which re-encodes as %q", body, got)
		}
	})
}
