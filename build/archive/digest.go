package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
)

// treeDigest is the digest of the extracted tree, in the format of build/inputs'
// directory inputs, so that an extracted archive and a local directory with the same
// files have the same digest: the sha256 of a listing with one line per entry, sorted
// by Rel (byte order), each ending in "\n":
//
//	file <mode> <size> <sha256> <rel>
//	dir <mode> <rel>
//	symlink <target> <rel>
//
// <mode> is four octal digits (never setuid, setgid or sticky here); <rel> and
// <target> are Go-quoted. It is a copy rather than an import: build/inputs may come to
// extract archives itself, and must not form a cycle with this package.
func treeDigest(files []File) string {
	sort.Slice(files, func(i, j int) bool { return files[i].Rel < files[j].Rel })
	h := sha256.New()
	for _, e := range files {
		var line string
		switch e.Type {
		case "file":
			line = fmt.Sprintf("file %04o %d %s %s\n", uint32(e.Mode.Perm()), e.Size, e.SHA256, strconv.Quote(e.Rel))
		case "dir":
			line = fmt.Sprintf("dir %04o %s\n", uint32(e.Mode.Perm()), strconv.Quote(e.Rel))
		case "symlink":
			line = fmt.Sprintf("symlink %s %s\n", strconv.Quote(e.Target), strconv.Quote(e.Rel))
		}
		h.Write([]byte(line))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
