package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipfHelper is run by TestSkipfFailsInCI in a child process.
func TestSkipfHelper(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "1" {
		t.Skip("helper process of TestSkipfFailsInCI")
	}
	Skipf(t, "the tool is missing")
}

// Skipf skips on a developer's machine and fails under CI=true.
func TestSkipfFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci      string
		wantErr bool
		want    string
	}{
		{ci: "", want: "--- SKIP: TestSkipfHelper"},
		{ci: "true", wantErr: true, want: "CI=true and this test cannot run: the tool is missing"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipfHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_HELPER=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.wantErr || !strings.Contains(string(out), tc.want) {
			t.Errorf("CI=%q: err %v, output:\n%s", tc.ci, err, out)
		}
	}
}
