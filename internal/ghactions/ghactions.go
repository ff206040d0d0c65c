// Package ghactions writes a step's outputs and its job summary when wso2img runs as a
// GitHub Actions step, the way the runner reads them: KEY<<DELIMITER blocks appended to
// $GITHUB_OUTPUT, and markdown appended to $GITHUB_STEP_SUMMARY.
package ghactions

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Env is where a step finds the runner's files; Load reads it from the environment.
type Env struct {
	// Output is $GITHUB_OUTPUT, Summary is $GITHUB_STEP_SUMMARY; "" means not running
	// in Actions (or that file is not provided).
	Output, Summary string
}

// Load reads the runner's environment. Outside GitHub Actions both paths are empty.
func Load() Env {
	if os.Getenv("GITHUB_ACTIONS") != "true" {
		return Env{}
	}
	return Env{Output: os.Getenv("GITHUB_OUTPUT"), Summary: os.Getenv("GITHUB_STEP_SUMMARY")}
}

// SetOutputs appends the outputs to $GITHUB_OUTPUT, each as a heredoc block with a
// random delimiter, so that values may hold newlines (or text that looks like another
// output) without breaking the file.
func (e Env) SetOutputs(outputs map[string]string) error {
	if e.Output == "" {
		return nil
	}
	keys := make([]string, 0, len(outputs))
	for k := range outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		delim, err := delimiter(outputs[k])
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", k, delim, outputs[k], delim)
	}
	return appendFile(e.Output, b.String())
}

// AddSummary appends markdown to the job summary.
func (e Env) AddSummary(markdown string) error {
	if e.Summary == "" {
		return nil
	}
	if !strings.HasSuffix(markdown, "\n") {
		markdown += "\n"
	}
	return appendFile(e.Summary, markdown)
}

// delimiter is a heredoc delimiter that does not occur in value.
func delimiter(value string) (string, error) {
	for {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		d := "ghadelimiter_" + hex.EncodeToString(b)
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("writing for GitHub Actions: %w", err)
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("writing for GitHub Actions: %w", err)
	}
	return f.Close()
}

// Table renders a markdown table; cells are escaped so that a '|' or a newline in a
// value cannot break it.
func Table(header []string, rows [][]string) string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			c = strings.ReplaceAll(c, "|", `\|`)
			c = strings.ReplaceAll(c, "\n", "<br>")
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
