// Package tomlcheck parses a WSO2 product's repository/conf/deployment.toml before it
// goes into an image, so that a typo fails the build and not the rollout: the product
// only reads the file when it starts.
//
// It checks TOML 1.0 syntax and structure with github.com/pelletier/go-toml/v2 (its
// errors carry line and column and the key involved; BurntSushi/toml reports the
// column of a duplicate key wrongly and accepts a table defined both by dotted keys
// and by a header, which TOML 1.0 forbids). For a table or key defined twice it names
// both lines. It does not check WSO2's schema (which keys exist, what values mean),
// resolve $env{…}, $sys{…} or $ref{…} placeholders, read files or print.
package tomlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is a file that does not parse as TOML. It is one line, e.g.
//
//	repository/conf/deployment.toml:9:2: [database.identity_db] defined twice, at lines 3 and 9
type Error struct {
	// Name is the file's name, as the caller gave it.
	Name string
	// Line and Column (1-based; the column counts bytes) say where parsing stopped.
	Line, Column int
	// Msg is what the parser found wrong.
	Msg string
	// Key names what was defined twice, as it is written: "[database.identity_db]",
	// "[[apim.throttling.url_group]]" or "key server.hostname"; "" otherwise.
	Key string
	// First is the line where Key was first defined, or 0.
	First int
	// Context shows the lines around the error with the spot marked, for a terminal.
	Context string
}

func (e *Error) Error() string {
	what := e.Msg
	if e.Key != "" && e.First > 0 {
		what = fmt.Sprintf("%s defined twice, at lines %d and %d", e.Key, e.First, e.Line)
		if e.Msg != "" {
			what += " (" + e.Msg + ")"
		}
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Name, e.Line, e.Column, what)
}

var bom = []byte("\xef\xbb\xbf")

// Check parses data, the content of the file called name, as TOML. It returns nil or
// an *Error.
func Check(name string, data []byte) error {
	if bytes.HasPrefix(data, bom) {
		return &Error{Name: name, Line: 1, Column: 1,
			Msg: "the file starts with a UTF-8 byte order mark, which TOML does not define; save it as UTF-8 without BOM"}
	}
	var doc map[string]any
	err := toml.Unmarshal(data, &doc)
	if err == nil {
		return nil
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{Name: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	line, col := de.Position()
	e := &Error{Name: name, Line: line, Column: col, Msg: strings.TrimPrefix(de.Error(), "toml: "), Context: de.String()}
	if d, ok := findTwice(data, line); ok {
		e.Key, e.First = d.name, d.first
		if d.sameKind {
			e.Msg = "" // "defined twice" says it all
		}
	}
	return e
}

// sep joins the parts of a path in findTwice: a quoted key may hold dots.
const sep = "\x00"

// def is where a path was first defined and how.
type def struct {
	line int
	kind string // "table", "array", "key" or "dotted" (a table made by a dotted key)
}

type twice struct {
	name     string
	first    int
	sameKind bool
}

// findTwice walks the document's expressions up to line and reports a path that the
// expression on that line defines again. It only names what go-toml refused on that
// line, so a mistake here can make a message less precise but never makes a valid
// file invalid.
func findTwice(data []byte, line int) (twice, bool) {
	defs := map[string]def{}
	table := ""
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		n := p.Expression()
		if n.Kind != unstable.Table && n.Kind != unstable.ArrayTable && n.Kind != unstable.KeyValue {
			continue
		}
		keys, at := keyOf(&p, n)
		if at > line {
			break
		}
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			path := strings.Join(keys, sep)
			kind, shown := "table", "["+strings.Join(keys, ".")+"]"
			if n.Kind == unstable.ArrayTable {
				kind, shown = "array", "[["+strings.Join(keys, ".")+"]]"
			}
			if d, ok := defs[path]; ok && at == line && !(kind == "array" && d.kind == "array") {
				return twice{shown, d.line, d.kind == kind}, true
			}
			if kind == "array" {
				forget(defs, path) // a new element: what the last one defined is gone
			}
			if _, ok := defs[path]; !ok || kind == "array" {
				defs[path] = def{at, kind}
			}
			table = path
		case unstable.KeyValue:
			full := keys
			if table != "" {
				full = append(strings.Split(table, sep), keys...)
			}
			for i := len(full) - len(keys) + 1; i < len(full); i++ {
				if _, ok := defs[strings.Join(full[:i], sep)]; !ok {
					defs[strings.Join(full[:i], sep)] = def{at, "dotted"}
				}
			}
			path := strings.Join(full, sep)
			if d, ok := defs[path]; ok && at == line {
				return twice{"key " + strings.Join(full, "."), d.line, d.kind == "key"}, true
			}
			defs[path] = def{at, "key"}
		}
	}
	return twice{}, false
}

// keyOf returns an expression's key parts and the line it starts on.
func keyOf(p *unstable.Parser, n *unstable.Node) ([]string, int) {
	var keys []string
	line := 0
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = p.Shape(k.Raw).Start.Line
		}
		keys = append(keys, string(k.Data))
	}
	return keys, line
}

func forget(defs map[string]def, path string) {
	for k := range defs {
		if strings.HasPrefix(k, path+sep) {
			delete(defs, k)
		}
	}
}
