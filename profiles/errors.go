package profiles

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a profile.
type Problem struct {
	// Line and Column locate it in the file; 0 when the field was not written at all.
	Line, Column int
	// Field is the path of the field, e.g. "inputs[2].sha256"; "" for the whole file.
	Field   string
	Message string
}

// Error lists everything wrong with one profile file. The CLI maps it to exit code 2.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		loc := e.File
		if p.Line > 0 {
			loc = fmt.Sprintf("%s:%d:%d", e.File, p.Line, p.Column)
		}
		if p.Field != "" {
			lines[i] = fmt.Sprintf("%s: %s: %s", loc, p.Field, p.Message)
		} else {
			lines[i] = fmt.Sprintf("%s: %s", loc, p.Message)
		}
	}
	if len(lines) == 1 {
		return "profile " + lines[0]
	}
	return fmt.Sprintf("profile %s has %d problems:\n  %s", e.File, len(lines), strings.Join(lines, "\n  "))
}
