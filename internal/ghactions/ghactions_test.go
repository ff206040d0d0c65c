package ghactions_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/internal/ghactions"
)

// parseOutputs reads $GITHUB_OUTPUT the way the runner does: NAME=VALUE lines and
// NAME<<DELIMITER blocks.
func parseOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok {
			var val []string
			for sc.Scan() && sc.Text() != delim {
				val = append(val, sc.Text())
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if name, val, ok := strings.Cut(line, "="); ok {
			out[name] = val
		}
	}
	return out
}

func TestLoad(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("GITHUB_OUTPUT", "/tmp/x")
	if e := ghactions.Load(); e.Output != "" || e.Summary != "" {
		t.Errorf("outside Actions: %+v", e)
	}
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_STEP_SUMMARY", "/tmp/y")
	if e := ghactions.Load(); e.Output != "/tmp/x" || e.Summary != "/tmp/y" {
		t.Errorf("in Actions: %+v", e)
	}
}

func TestSetOutputs(t *testing.T) {
	dir := t.TempDir()
	e := ghactions.Env{Output: filepath.Join(dir, "out"), Summary: filepath.Join(dir, "summary")}
	// An earlier step's output is kept.
	if err := os.WriteFile(e.Output, []byte("earlier=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tricky := "first line\ninjected=evil\nEOF\nlast"
	if err := e.SetOutputs(map[string]string{"digest": "sha256:abc", "json": `[{"a": 1}]`, "tags": tricky}); err != nil {
		t.Fatal(err)
	}
	got := parseOutputs(t, e.Output)
	for k, want := range map[string]string{"earlier": "1", "digest": "sha256:abc", "json": `[{"a": 1}]`, "tags": tricky} {
		if got[k] != want {
			t.Errorf("output %s = %q, want %q", k, got[k], want)
		}
	}
	if _, ok := got["injected"]; ok {
		t.Errorf("a value containing a NAME=VALUE line became an output: %v", got)
	}
}

func TestSummary(t *testing.T) {
	dir := t.TempDir()
	e := ghactions.Env{Summary: filepath.Join(dir, "summary")}
	table := ghactions.Table([]string{"profile", "tags"}, [][]string{{"is", "a|b\nc"}})
	if err := e.AddSummary("### wso2img\n\n" + table); err != nil {
		t.Fatal(err)
	}
	if err := e.AddSummary("second"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(e.Summary)
	want := "### wso2img\n\n| profile | tags |\n| --- | --- |\n| is | a\\|b<br>c |\nsecond\n"
	if string(b) != want {
		t.Errorf("summary =\n%q\nwant\n%q", b, want)
	}
	// Outside Actions nothing is written.
	if err := (ghactions.Env{}).AddSummary("x"); err != nil {
		t.Error(err)
	}
}
