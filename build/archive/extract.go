package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/wso2img/wso2img/internal/fstree"

	"github.com/wso2img/wso2img/internal/units"
)

// maxLinkHops bounds how many symlinks one resolution follows, as Linux does (ELOOP).
const maxLinkHops = 40

// maxTarget bounds a symlink's target, as Linux's PATH_MAX does.
const maxTarget = 4096

const dirMode fs.FileMode = 0o755

// node is one path of the tree being extracted.
type node struct {
	typ    string // "file", "dir" or "symlink"
	mode   fs.FileMode
	size   int64
	sha256 string
	target string
	entry  string // the entry that made it, "" for a directory an entry implied
}

// extractor writes entries below root and remembers every path it made, so that it
// never writes through a symlink, never writes a path twice, and can judge symlinks
// once the whole tree is known.
type extractor struct {
	ctx   context.Context
	root  *os.Root
	opts  Options
	nodes map[string]*node
	// links are the symlinks, in archive order: they are made last, once every
	// target can be resolved inside the finished tree.
	links   []string
	entries int
	// written counts the bytes written so far; totalIn, the bytes read from the
	// archive (for a zip, its size: its entries' data may overlap).
	written int64
	totalIn func() int64
	buf     []byte
}

func newExtractor(ctx context.Context, root *os.Root, opts Options) *extractor {
	return &extractor{ctx: ctx, root: root, opts: opts, nodes: map[string]*node{}, buf: make([]byte, 32<<10)}
}

func (x *extractor) refuse(entry, what, expected, found string) *Error {
	return &Error{Archive: x.opts.Name, Entry: entry, What: what, Expected: expected, Found: found}
}

func (x *extractor) corrupt(entry string, err error) error {
	// A failure to read the file itself is the host's problem, not the archive's.
	var pe *fs.PathError
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Archive: x.opts.Name, Entry: entry, What: WhatCorrupt, Err: err}
}

// count admits one more entry.
func (x *extractor) count(entry string) error {
	if err := x.ctx.Err(); err != nil {
		return err
	}
	x.entries++
	if x.entries > x.opts.MaxEntries {
		return x.refuse(entry, WhatEntries, fmt.Sprintf("at most %d entries", x.opts.MaxEntries), "more")
	}
	return nil
}

// cleanName turns an entry's name into a clean slash-separated path relative to the
// destination, "" for the destination itself. Backslashes count as separators, as the
// Windows tools that write them mean them, so that `..\` cannot slip through.
func (x *extractor) cleanName(entry, name string) (string, error) {
	bad := func(found string) error {
		return x.refuse(entry, WhatPath, "a relative path inside the destination", found)
	}
	if strings.ContainsRune(name, 0) {
		return "", bad("a name with a NUL byte")
	}
	n := strings.ReplaceAll(name, `\`, "/")
	switch {
	case n == "":
		return "", bad("an empty name")
	case strings.HasPrefix(n, "/"):
		return "", bad("an absolute path")
	case len(n) >= 2 && n[1] == ':' && (n[0]|0x20 >= 'a' && n[0]|0x20 <= 'z'):
		return "", bad("a path with a Windows drive letter")
	}
	for _, elem := range strings.Split(n, "/") {
		if elem == ".." {
			return "", bad(`a path with a ".." element`)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// claim checks that rel is new and that every parent is a directory (making the
// missing ones), so that no entry is written twice or through a symlink or a file.
func (x *extractor) claim(entry, rel string) error {
	if n := x.nodes[rel]; n != nil {
		return x.refuse(entry, WhatDuplicate, "one entry per path", fmt.Sprintf("%s already extracted as a %s%s", rel, describeType(n.typ), by(n)))
	}
	return x.parents(entry, rel)
}

func (x *extractor) parents(entry, rel string) error {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		p := rel[:i]
		switch n := x.nodes[p]; {
		case n == nil:
			if err := x.root.Mkdir(p, dirMode); err != nil {
				return err
			}
			x.nodes[p] = &node{typ: "dir", mode: dirMode}
		case n.typ == "symlink":
			return x.refuse(entry, WhatSymlink, "no path through a symlink", fmt.Sprintf("%s, below the symlink %s -> %s", rel, p, n.target))
		case n.typ != "dir":
			return x.refuse(entry, WhatDuplicate, "one entry per path", fmt.Sprintf("%s below %s, which is a %s%s", rel, p, describeType(n.typ), by(n)))
		}
	}
	return nil
}

func (x *extractor) dir(entry, rel string) error {
	if rel == "" {
		return nil // the destination itself ("./")
	}
	if n := x.nodes[rel]; n != nil {
		if n.typ == "dir" {
			if n.entry == "" {
				n.entry = entry
			}
			return nil // a directory named again, or after entries below it
		}
		return x.refuse(entry, WhatDuplicate, "one entry per path", fmt.Sprintf("%s as a directory, already extracted as a %s%s", rel, describeType(n.typ), by(n)))
	}
	if err := x.parents(entry, rel); err != nil {
		return err
	}
	if err := x.root.Mkdir(rel, dirMode); err != nil {
		return err
	}
	x.nodes[rel] = &node{typ: "dir", mode: dirMode, entry: entry}
	return nil
}

// file writes r to rel; in reports the bytes of the archive this entry has read so
// far, for its compression ratio.
func (x *extractor) file(entry, rel string, perm fs.FileMode, r io.Reader, in func() int64) (crc uint32, err error) {
	if rel == "" {
		return 0, x.refuse(entry, WhatPath, "a file name", "a file entry naming the destination itself")
	}
	if err := x.claim(entry, rel); err != nil {
		return 0, err
	}
	f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n := &node{typ: "file", mode: perm.Perm(), entry: entry}
	x.nodes[rel] = n // recorded before writing, so that a failure cleans it up
	h, c := sha256.New(), crc32.NewIEEE()
	for empty := 0; ; {
		if err := x.ctx.Err(); err != nil {
			f.Close()
			return 0, err
		}
		k, rerr := r.Read(x.buf)
		if k == 0 && rerr == nil {
			if empty++; empty > 100 {
				rerr = io.ErrNoProgress
			}
		}
		if k > 0 {
			if err := x.admit(entry, n.size, k, in()); err != nil {
				f.Close()
				return 0, err
			}
			n.size += int64(k)
			x.written += int64(k)
			h.Write(x.buf[:k])
			c.Write(x.buf[:k])
			if _, err := f.Write(x.buf[:k]); err != nil {
				f.Close()
				return 0, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			f.Close()
			return 0, x.corrupt(entry, rerr)
		}
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	// Chmod after writing: the umask must not change what the archive asked for.
	if err := x.root.Chmod(rel, n.mode); err != nil {
		return 0, err
	}
	n.sha256 = hex.EncodeToString(h.Sum(nil))
	return c.Sum32(), nil
}

// admit checks the limits before k more bytes are written to an entry that holds
// size bytes and has read in bytes of the archive: the total size, then the ratio of
// the entry and of the whole archive once past RatioAfter. Nothing past a limit is
// written.
func (x *extractor) admit(entry string, size int64, k int, in int64) error {
	o := x.opts
	size += int64(k)
	total := x.written + int64(k)
	if total > o.MaxSize {
		return x.refuse(entry, WhatSize, "at most "+units.Bytes(o.MaxSize)+" uncompressed", "more")
	}
	if size > o.RatioAfter && size > o.MaxRatio*max(in, 1) {
		return x.refuse(entry, WhatRatio, fmt.Sprintf("at most %d:1 for an entry", o.MaxRatio),
			fmt.Sprintf("%s written from %s of compressed data", units.Bytes(size), units.Bytes(in)))
	}
	if all := x.totalIn(); total > o.RatioAfter && total > o.MaxRatio*max(all, 1) {
		return x.refuse(entry, WhatRatio, fmt.Sprintf("at most %d:1 for the archive", o.MaxRatio),
			fmt.Sprintf("%s written from %s read", units.Bytes(total), units.Bytes(all)))
	}
	return nil
}

// symlink records a symlink; it is judged and made in finish.
func (x *extractor) symlink(entry, rel, target string) error {
	bad := func(found string) error {
		return x.refuse(entry, WhatSymlink, "a relative target inside the destination", found)
	}
	switch {
	case rel == "":
		return x.refuse(entry, WhatPath, "a symlink name", "a symlink entry naming the destination itself")
	case target == "":
		return bad("an empty target")
	case len(target) > maxTarget:
		return bad(fmt.Sprintf("a target of %d bytes", len(target)))
	case strings.ContainsRune(target, 0):
		return bad("a target with a NUL byte")
	case strings.HasPrefix(target, "/"):
		// Where it points depends on where the tree lands in the image: never inside
		// the tree as extracted here.
		return bad(fmt.Sprintf("%s -> %s, an absolute target", rel, target))
	}
	if err := x.claim(entry, rel); err != nil {
		return err
	}
	x.nodes[rel] = &node{typ: "symlink", mode: 0o777, target: target, entry: entry}
	x.links = append(x.links, rel)
	return nil
}

// hardlink makes rel a copy of target, an earlier regular file of this archive:
// tar archives of trees with hard-linked files (JDKs, some product packs) are common,
// and a link to a file this extraction wrote reaches nothing outside the tree and
// nothing unchecked. Links to anything else are refused, as is a link that would
// need a later entry.
func (x *extractor) hardlink(entry, rel, target string) error {
	if rel == "" {
		return x.refuse(entry, WhatPath, "a hard link name", "a hard link entry naming the destination itself")
	}
	t, err := x.cleanName(entry, target)
	if err != nil {
		return x.refuse(entry, WhatHardLink, "a link to an earlier regular file of the archive", fmt.Sprintf("%s -> %s, outside the destination", rel, target))
	}
	n := x.nodes[t]
	if n == nil || n.typ != "file" {
		found := "nothing extracted before it"
		if n != nil {
			found = "a " + describeType(n.typ)
		}
		return x.refuse(entry, WhatHardLink, "a link to an earlier regular file of the archive", fmt.Sprintf("%s -> %s, which is %s", rel, target, found))
	}
	if err := x.claim(entry, rel); err != nil {
		return err
	}
	// A copy, not a link: the tree then holds one name per file, as wso2img's local
	// inputs must, and BuildKit would copy the bytes into the layer anyway.
	if err := x.copyFile(t, rel, n.mode); err != nil {
		return err
	}
	c := *n
	c.entry = entry
	x.nodes[rel] = &c
	return nil
}

// copyFile copies the regular file from to to, inside the destination.
func (x *extractor) copyFile(from, to string, mode fs.FileMode) error {
	in, err := x.root.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := x.root.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// finish judges every symlink against the finished tree, makes them, and sets times.
func (x *extractor) finish() error {
	for _, rel := range x.links {
		if err := x.judge(rel); err != nil {
			return err
		}
	}
	for _, rel := range x.links {
		if err := x.root.Symlink(x.nodes[rel].target, rel); err != nil {
			return err
		}
	}
	if x.opts.ModTime.IsZero() {
		return nil
	}
	rels := x.sorted()
	// Deepest first: setting a file's time does not touch its directory's, but
	// making the entries did, so directories come after what they hold.
	for i := len(rels) - 1; i >= 0; i-- {
		if n := x.nodes[rels[i]]; n.typ != "symlink" {
			if err := x.root.Chtimes(rels[i], x.opts.ModTime, x.opts.ModTime); err != nil {
				return err
			}
		}
	}
	return nil
}

// judge resolves the symlink at rel inside the tree the archive made, following the
// links it meets (they may come later in the archive), and refuses it when any step
// climbs above the destination: a link is judged by where it points, not by how its
// target reads ("a/../.." is outside, "d/.." is outside when d links to ".").
func (x *extractor) judge(rel string) error {
	n := x.nodes[rel]
	var stack []string
	if d := path.Dir(rel); d != "." {
		stack = strings.Split(d, "/")
	}
	todo := strings.Split(n.target, "/")
	hops := 0
	via := ""
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return x.refuse(n.entry, WhatSymlink, "a target that resolves inside the destination",
					fmt.Sprintf("%s -> %s, which leaves it%s", rel, n.target, via))
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		p := strings.Join(stack, "/")
		if m := x.nodes[p]; m != nil && m.typ == "symlink" {
			hops++
			if hops > maxLinkHops {
				return x.refuse(n.entry, WhatSymlink, fmt.Sprintf("a target reached in at most %d links", maxLinkHops),
					fmt.Sprintf("%s -> %s, which loops", rel, n.target))
			}
			via = fmt.Sprintf(" through %s -> %s", p, m.target)
			stack = stack[:len(stack)-1]
			todo = append(strings.Split(m.target, "/"), todo...)
		}
	}
	return nil
}

func (x *extractor) sorted() []string {
	rels := make([]string, 0, len(x.nodes))
	for rel := range x.nodes {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	return rels
}

func (x *extractor) result() *Result {
	res := &Result{}
	for _, rel := range x.sorted() {
		n := x.nodes[rel]
		res.Files = append(res.Files, File{Rel: rel, Type: n.typ, Mode: n.mode, Size: n.size, SHA256: n.sha256, Target: n.target})
		res.Size += n.size
	}
	res.Digest = fstree.Digest(res.Files)
	return res
}

// clean removes what this extraction made, so that a refused archive leaves nothing
// for a later step to pick up by mistake.
func (x *extractor) clean() {
	for rel := range x.nodes {
		if !strings.Contains(rel, "/") {
			_ = x.root.RemoveAll(rel)
		}
	}
}

func describeType(typ string) string {
	if typ == "dir" {
		return "directory"
	}
	return typ
}

func by(n *node) string {
	if n.entry == "" {
		return " (implied by an earlier entry)"
	}
	return " by entry " + quote(n.entry)
}
