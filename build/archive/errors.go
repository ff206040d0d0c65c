package archive

import "strings"

// What an Error is about.
const (
	WhatFormat      = "format"            // not a zip, tar or tar.gz
	WhatCorrupt     = "corrupt"           // the archive cannot be read to the end
	WhatPath        = "path"              // an entry name that leaves the destination
	WhatSymlink     = "symlink"           // a symlink that leaves the destination
	WhatHardLink    = "hard link"         // a hard link to anything but an earlier regular file
	WhatSpecial     = "special file"      // a device, fifo or socket
	WhatDuplicate   = "duplicate entry"   // a path that two entries claim
	WhatEntries     = "entry count"       // more entries than Options.MaxEntries
	WhatSize        = "size"              // more bytes than Options.MaxSize
	WhatRatio       = "compression ratio" // a zip bomb
	WhatUnsupported = "unsupported entry" // encryption, an unknown compression method or entry type
)

// Error is an archive that must not be extracted: the CLI maps it to exit code 3 (an
// input failed verification), like inputs.VerifyError. Failures to read or write the
// host's files are plain errors.
type Error struct {
	// Archive names the archive: Options.Name, or its path.
	Archive string
	// Entry is the entry's name as the archive stores it, or "" when the problem is
	// the whole archive.
	Entry string
	// What was wrong: one of the What constants.
	What     string
	Expected string
	Found    string
	// Err is the underlying error, if any.
	Err error
}

// Error is one line: where, what, then expected and found, e.g.
//
//	archive https://h/x.zip, entry "../../etc/passwd": path: expected a relative path inside the destination, found a path with a ".." element
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("archive ")
	b.WriteString(e.Archive)
	if e.Entry != "" {
		b.WriteString(", entry ")
		b.WriteString(quote(e.Entry))
	}
	b.WriteString(": ")
	b.WriteString(e.What)
	if e.Expected != "" || e.Found != "" {
		b.WriteString(": expected ")
		b.WriteString(e.Expected)
		b.WriteString(", found ")
		b.WriteString(e.Found)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
