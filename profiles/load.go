package profiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds a profile file: profiles are small, and a huge file is a mistake.
const maxFileSize = 1 << 20

// maxExtends bounds an `extends` chain.
const maxExtends = 8

// Load reads a profile from a file, or names a stock profile, resolves `extends` and
// validates the result. Every problem is reported at once in an *Error.
func Load(nameOrPath string) (*Profile, error) {
	if _, err := os.Stat(nameOrPath); err == nil {
		return loadFile(nameOrPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: nameOrPath, Problems: []Problem{{Message: err.Error()}}}
	}
	if _, ok := stockFiles[nameOrPath]; ok {
		p, err := finish(nameOrPath, nil)
		var perr *Error
		if errors.As(err, &perr) {
			perr.Problems = append(perr.Problems, Problem{Message: fmt.Sprintf("a stock profile is a starting point: write a profile with `extends: %s`, an update and your inputs", nameOrPath)})
		}
		return p, err
	}
	return nil, &Error{File: nameOrPath, Problems: []Problem{{Message: "no such file, and no stock profile of that name (see `wso2img profiles list`)"}}}
}

func loadFile(file string) (*Profile, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, &Error{File: file, Problems: []Problem{{Message: err.Error()}}}
	}
	data, err := readFile(abs)
	if err != nil {
		return nil, &Error{File: file, Problems: []Problem{{Message: err.Error()}}}
	}
	return Parse(file, data)
}

// Parse reads a profile from data as if it were the file named file (relative paths and
// `extends` resolve against its folder).
func Parse(file string, data []byte) (*Profile, error) {
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, &Error{File: file, Problems: []Problem{{Message: err.Error()}}}
	}
	return finish(file, &source{file: file, dir: dir, data: data})
}

// source is one profile document before `extends` is resolved.
type source struct {
	file, dir string
	data      []byte
}

// finish decodes src (or the stock profile called file when src is nil), resolves its
// `extends` chain and validates the result.
func finish(file string, src *source) (*Profile, error) {
	if src == nil {
		src = &source{file: "stock:" + file, data: stockFiles[file]}
	}
	p, err := decodeChain(src, nil)
	if err != nil {
		return nil, err
	}
	if p.Name == "" {
		p.Name = defaultName(src.file)
	}
	if probs := validate(p); len(probs) > 0 {
		return nil, &Error{File: src.file, Problems: probs}
	}
	return p, nil
}

// decodeChain decodes src strictly and, when it extends another profile, lays it over
// that one. seen guards against cycles.
func decodeChain(src *source, seen []string) (*Profile, error) {
	if len(seen) >= maxExtends {
		return nil, &Error{File: src.file, Problems: []Problem{{Field: "extends", Message: fmt.Sprintf("more than %d profiles extend each other: %s", maxExtends, strings.Join(seen, " → "))}}}
	}
	for _, s := range seen {
		if s == src.file {
			return nil, &Error{File: src.file, Problems: []Problem{{Field: "extends", Message: "profiles extend each other in a cycle: " + strings.Join(append(seen, src.file), " → ")}}}
		}
	}
	p, err := decodeOne(src)
	if err != nil {
		return nil, err
	}
	if p.Extends == "" {
		return p, nil
	}
	parentSrc, err := resolveExtends(src, p)
	if err != nil {
		return nil, err
	}
	parent, err := decodeChain(parentSrc, append(seen, src.file))
	if err != nil {
		return nil, err
	}
	return overlay(parent, p), nil
}

func resolveExtends(src *source, p *Profile) (*source, error) {
	fail := func(msg string) error {
		prob := p.pos["extends"]
		prob.Message = msg
		return &Error{File: src.file, Problems: []Problem{prob}}
	}
	if data, ok := stockFiles[p.Extends]; ok {
		return &source{file: "stock:" + p.Extends, data: data}, nil
	}
	if src.dir == "" {
		return nil, fail(fmt.Sprintf("stock profile %q does not exist", p.Extends))
	}
	file := p.Extends
	if !filepath.IsAbs(file) {
		file = filepath.Join(src.dir, file)
	}
	data, err := readFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail(fmt.Sprintf("%q is neither a stock profile (see `wso2img profiles list`) nor a file next to this one", p.Extends))
	}
	if err != nil {
		return nil, fail(err.Error())
	}
	return &source{file: file, dir: filepath.Dir(file), data: data}, nil
}

func readFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a profile file", file)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes; a profile is at most %d", file, st.Size(), maxFileSize)
	}
	return os.ReadFile(file)
}

// decodeOne parses one document strictly.
func decodeOne(src *source) (*Profile, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src.data, &root); err != nil {
		return nil, &Error{File: src.file, Problems: []Problem{{Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	if root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0) {
		return nil, &Error{File: src.file, Problems: []Problem{{Message: "empty: a profile needs at least product, version, update and base"}}}
	}
	d := newDecoder()
	p := &Profile{}
	d.decode(&root, p)
	if len(d.problems) > 0 {
		return nil, &Error{File: src.file, Problems: d.problems}
	}
	p.File, p.Dir, p.pos = src.file, src.dir, d.pos
	p.resolvePaths()
	return p, nil
}

// resolvePaths makes local paths absolute against the profile's folder, so that a
// profile extending another keeps the other's paths pointing where they were written.
func (p *Profile) resolvePaths() {
	if p.Dir == "" {
		return
	}
	abs := func(s string) string {
		if s == "" || filepath.IsAbs(s) || isURL(s) {
			return s
		}
		return filepath.Join(p.Dir, s)
	}
	for i := range p.Inputs {
		p.Inputs[i].Path = abs(p.Inputs[i].Path)
		p.Inputs[i].Signature = abs(p.Inputs[i].Signature)
		p.Inputs[i].Root = p.Dir
		if st, err := os.Stat(p.Inputs[i].Path); err == nil && p.Inputs[i].Path != "" {
			p.Inputs[i].isDir = st.IsDir()
		}
		if ts := p.Inputs[i].TrustStore; ts != nil {
			for j := range ts.Certificates {
				c := &ts.Certificates[j]
				c.Path, c.Signature, c.Root = abs(c.Path), abs(c.Signature), p.Dir
			}
		}
	}
	p.GPG.Keyring = abs(p.GPG.Keyring)
	p.Scan.Ignore = abs(p.Scan.Ignore)
	if v := p.Base.Verify; v != nil && v.Key != "" && !strings.HasPrefix(v.Key, "env://") && !strings.HasPrefix(v.Key, StockKeyPrefix) {
		v.Key = abs(v.Key)
	}
}

func isURL(s string) bool { return strings.Contains(s, "://") }

// overlay lays child over parent: every field the child wrote wins; nested blocks merge
// field by field; env and labels merge key by key; lists and update are replaced whole.
// The name is never inherited: a profile is named after its own file.
func overlay(parent, child *Profile) *Profile {
	out := *parent
	mergeWritten(reflect.ValueOf(&out).Elem(), reflect.ValueOf(child).Elem(), child.pos, "")
	out.Name = child.Name
	out.Extends = child.Extends
	out.File, out.Dir, out.pos = child.File, child.Dir, child.pos
	out.inherited = parent.File
	return &out
}

func mergeWritten(dst, src reflect.Value, pos map[string]Problem, prefix string) {
	for i := 0; i < src.NumField(); i++ {
		name, _, _ := strings.Cut(src.Type().Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fp := join(prefix, name)
		if _, written := pos[fp]; !written {
			continue
		}
		sf, df := src.Field(i), dst.Field(i)
		switch {
		case sf.Kind() == reflect.Struct && !isNodeDecoder(sf):
			mergeWritten(df, sf, pos, fp)
		case sf.Kind() == reflect.Map:
			m := reflect.MakeMap(sf.Type())
			for _, v := range []reflect.Value{df, sf} {
				for it := v.MapRange(); it.Next(); {
					m.SetMapIndex(it.Key(), it.Value())
				}
			}
			df.Set(m)
		default:
			df.Set(sf)
		}
	}
}

// isNodeDecoder reports whether a field reads its own YAML (update, baseCache): such a
// value is replaced whole, never merged field by field.
func isNodeDecoder(v reflect.Value) bool {
	_, ok := v.Addr().Interface().(nodeDecoder)
	return ok
}

func defaultName(file string) string {
	if name, ok := strings.CutPrefix(file, "stock:"); ok {
		return name
	}
	base := filepath.Base(file)
	return strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
}
