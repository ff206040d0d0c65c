// Package fstree describes a tree of files the way wso2img identifies it: one entry a
// path, with its type, mode, size and sha256 or link target, and the digest of the tree
// computed from those alone (no owners, no times: the build sets them). Directory inputs
// (build/inputs) and unpacked archives (build/archive) share it, so that the same tree
// has the same digest whichever way it came.
//
// It does no I/O.
package fstree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
)

// Entry is one entry of a tree.
type Entry struct {
	// Rel is the slash-separated path relative to the tree's root; never "".
	Rel string
	// Type is "file", "dir" or "symlink".
	Type string
	// Mode holds the permission bits (and setuid, setgid, sticky) as found; the build
	// normalises them later.
	Mode fs.FileMode
	// Size is the size in bytes of a file.
	Size int64
	// SHA256 is the hex sha256 of a file.
	SHA256 string
	// Target is the target of a symlink.
	Target string
}

// Digest is the digest of a tree: the sha256 of a listing with one line per entry,
// sorted by Rel (byte order; entries is sorted in place), each ending in "\n":
//
//	file <mode> <size> <sha256> <rel>
//	dir <mode> <rel>
//	symlink <target> <rel>
//
// <mode> is the unix permission bits in octal, with setuid/setgid/sticky (0644, 4755);
// <rel> and <target> are Go-quoted (strconv.Quote), so that spaces or newlines in names
// cannot make two trees list the same.
func Digest(entries []Entry) string {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Rel < entries[j].Rel })
	h := sha256.New()
	for _, e := range entries {
		var line string
		switch e.Type {
		case "file":
			line = fmt.Sprintf("file %s %d %s %s\n", Octal(e.Mode), e.Size, e.SHA256, strconv.Quote(e.Rel))
		case "dir":
			line = fmt.Sprintf("dir %s %s\n", Octal(e.Mode), strconv.Quote(e.Rel))
		case "symlink":
			line = fmt.Sprintf("symlink %s %s\n", strconv.Quote(e.Target), strconv.Quote(e.Rel))
		}
		h.Write([]byte(line))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Octal writes m as unix mode bits: fs.FileMode keeps setuid, setgid and sticky outside
// the low 12 bits.
func Octal(m fs.FileMode) string {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return fmt.Sprintf("%04o", bits)
}

// Kind names a file that is not a regular file, directory or symlink, for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (fifo)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file (" + m.Type().String() + ")"
}
