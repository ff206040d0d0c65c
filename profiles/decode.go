package profiles

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder turns a YAML node tree into a struct strictly: unknown keys, duplicate keys and
// wrong types are problems that name the field path ("inputs[2].sha256") and position.
// yaml.v3's own decoder reports neither the path nor more than one problem at a time.
type decoder struct {
	problems []Problem
	// pos maps a field path to where it was written, so that checks made after decoding
	// (validation) can point at the right line.
	pos map[string]Problem
	// budget bounds the nodes visited, so that aliases cannot expand a small file into
	// an enormous one ("billion laughs") or loop.
	budget int
}

// maxNodes is far more than any real profile has. Every node visited, every key and
// every problem reported counts against it, so that aliases can make neither the work
// nor the list of problems grow past it.
const maxNodes = 100_000

// maxProblems bounds the problems reported for one file: past it, a list of problems
// helps no one.
const maxProblems = 50

// nodeDecoder is a type that reads its own YAML, for values of more than one shape.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

func newDecoder() *decoder { return &decoder{pos: map[string]Problem{}, budget: maxNodes} }

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.budget--
	switch {
	case len(d.problems) < maxProblems:
		d.problems = append(d.problems, Problem{Line: n.Line, Column: n.Column, Field: path, Message: fmt.Sprintf(format, args...)})
	case len(d.problems) == maxProblems:
		d.problems = append(d.problems, Problem{Line: n.Line, Column: n.Column, Field: path, Message: fmt.Sprintf("more than %d problems; fix these first", maxProblems)})
	}
}

// spend counts one node against the budget and reports whether any is left; the first
// overdraft is reported.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.problems = append(d.problems, Problem{Line: n.Line, Column: n.Column, Field: path,
				Message: fmt.Sprintf("the document expands to more than %d values (through aliases?)", maxNodes)})
		}
		return false
	}
	return true
}

// decode fills v (a pointer) from n.
func (d *decoder) decode(n *yaml.Node, v any) {
	rv := reflect.ValueOf(v).Elem()
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	d.value(n, rv, "")
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		d.pos[path] = Problem{Line: n.Line, Column: n.Column, Field: path}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with no value leaves the zero value, as in yaml.v3
	}
	if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
		nd.decodeNode(d, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, found %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, found %s", describe(n))
			return
		}
		// The text as written: `osVersion: 3.10` means "3.10", not the float 3.1, and
		// `mode: 0640` means "0640".
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.fail(n, path, "expected a whole number, found %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.fail(n, path, "expected a decimal whole number in range, found %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true")
	default:
		panic(fmt.Sprintf("profiles: no decoding for %s at %s", v.Type(), path))
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of fields, found %s", describe(n))
		return
	}
	fields := map[string]int{}
	var known []string
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		fp := join(path, key)
		if !d.spend(k, fp) {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a field name, found %s", describe(k))
			continue
		}
		if seen[key] {
			d.fail(k, fp, "written twice")
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", key)
			if s := closest(key, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				sort.Strings(known)
				msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
			}
			d.fail(k, fp, "%s", msg)
			continue
		}
		d.value(val, v.Field(idx), fp)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, found %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.spend(k, path) {
			break
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a key, found %s", describe(k))
			continue
		}
		fp := join(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.fail(k, fp, "written twice")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, fp)
		m.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
	v.Set(m)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a node is, for "expected X, found Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// closest suggests a known field for a typo: the one within two edits, if any.
func closest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(s), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
