package trivydb

import (
	"encoding/binary"
	"fmt"
)

// The Java DB is an SQLite file. Trivy needs its tables to exist: a jar whose file name
// does not match its own pom.properties (WSO2's OSGi bundles, renamed jars) is looked up
// by SHA-1, and a missing table makes that lookup fail, which drops the whole jar and
// every package nested in it with only a debug line. An empty database with the real
// schema answers "not found" instead, as a real Java DB without that jar does.
//
// Rather than pull an SQLite driver (modernc.org/sqlite and its C-to-Go libc, tens of MB
// of generated code) into the root module for six CREATE statements, emptySQLite writes
// the file format directly: a header, page 1 holding sqlite_master with the schema
// rows, and one empty b-tree leaf page for each table and index.

// javaDBSchema is trivy-java-db's schema (pkg/db.(*DB).Init, SchemaVersion 1), in the
// order Init creates it; the statements are stored verbatim, as SQLite keeps them.
var javaDBSchema = []schemaObject{
	{"table", "artifacts", "artifacts", "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT)"},
	{"table", "indices", "indices", "CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT, foreign key (artifact_id) references artifacts(id))"},
	{"index", "artifacts_idx", "artifacts", "CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id)"},
	{"index", "indices_artifact_idx", "indices", "CREATE INDEX indices_artifact_idx ON indices(artifact_id)"},
	{"index", "indices_sha1_idx", "indices", "CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1)"},
}

// schemaObject is one row of sqlite_master (its rootpage is assigned by emptySQLite).
type schemaObject struct {
	typ, name, table, sql string
}

const (
	sqlitePageSize = 4096
	// sqliteVersion is the library version recorded in the header (3.46.0); readers
	// only use it for diagnostics.
	sqliteVersion = 3046000

	pageTableLeaf = 0x0d
	pageIndexLeaf = 0x0a
)

// emptySQLite returns an SQLite 3 database file (UTF-8, rollback journal, 4 KiB pages)
// that holds the given tables and indexes, all empty.
func emptySQLite(objects []schemaObject) ([]byte, error) {
	npages := 1 + len(objects)
	if npages > 127 {
		return nil, fmt.Errorf("sqlite: %d schema objects: root page numbers above 127 are not supported", len(objects))
	}
	file := make([]byte, npages*sqlitePageSize)

	// The 100-byte database header (https://www.sqlite.org/fileformat.html#the_database_header).
	h := file[:100]
	copy(h, "SQLite format 3\x00")
	binary.BigEndian.PutUint16(h[16:], sqlitePageSize)
	h[18], h[19] = 1, 1                                // file format write/read version: legacy (rollback journal)
	h[20] = 0                                          // reserved bytes per page
	h[21], h[22], h[23] = 64, 32, 32                   // payload fractions, fixed by the format
	binary.BigEndian.PutUint32(h[24:], 1)              // file change counter
	binary.BigEndian.PutUint32(h[28:], uint32(npages)) // database size in pages
	binary.BigEndian.PutUint32(h[40:], 1)              // schema cookie
	binary.BigEndian.PutUint32(h[44:], 4)              // schema format number
	binary.BigEndian.PutUint32(h[56:], 1)              // text encoding: UTF-8
	binary.BigEndian.PutUint32(h[92:], 1)              // version-valid-for: equals the change counter, so the size above is trusted
	binary.BigEndian.PutUint32(h[96:], sqliteVersion)

	// Page 1: the sqlite_master table, a table b-tree leaf whose header follows the
	// database header. Cells fill the page from its end; the pointer array, in rowid
	// order, follows the 8-byte page header.
	cells := make([][]byte, len(objects))
	for i, o := range objects {
		rec := record(text(o.typ), text(o.name), text(o.table), integer(int64(i+2)), text(o.sql))
		cell := appendVarint(nil, uint64(len(rec)))
		cell = appendVarint(cell, uint64(i+1)) // rowid
		cell = append(cell, rec...)
		// A payload larger than the page's local maximum would spill to overflow pages.
		if len(rec) > sqlitePageSize-35 {
			return nil, fmt.Errorf("sqlite: schema row %q is %d bytes, more than fits one page", o.name, len(rec))
		}
		cells[i] = cell
	}
	page := file[:sqlitePageSize]
	hdr := 100
	ptrs := hdr + 8
	end := sqlitePageSize
	for i, c := range cells {
		end -= len(c)
		if end < ptrs+2*len(cells) {
			return nil, fmt.Errorf("sqlite: the schema does not fit one page")
		}
		copy(page[end:], c)
		binary.BigEndian.PutUint16(page[ptrs+2*i:], uint16(end))
	}
	page[hdr] = pageTableLeaf
	binary.BigEndian.PutUint16(page[hdr+3:], uint16(len(cells)))
	binary.BigEndian.PutUint16(page[hdr+5:], uint16(end))

	// Pages 2…: one empty leaf a table or index. A content-area offset of 4096 on a
	// 4096-byte page means "no content".
	for i, o := range objects {
		p := file[(i+1)*sqlitePageSize : (i+2)*sqlitePageSize]
		p[0] = pageTableLeaf
		if o.typ == "index" {
			p[0] = pageIndexLeaf
		}
		binary.BigEndian.PutUint16(p[5:], sqlitePageSize)
	}
	return file, nil
}

// value is one column of a record: its serial type and its body bytes.
type value struct {
	serial uint64
	body   []byte
}

func text(s string) value { return value{serial: uint64(len(s))*2 + 13, body: []byte(s)} }

// integer encodes n in the smallest of the 1-, 2-, 4- or 8-byte integer serial types
// that holds it (0 and 1 have serial types of their own in schema format 4).
func integer(n int64) value {
	switch {
	case n == 0:
		return value{serial: 8}
	case n == 1:
		return value{serial: 9}
	case n >= -128 && n <= 127:
		return value{serial: 1, body: []byte{byte(n)}}
	case n >= -32768 && n <= 32767:
		return value{serial: 2, body: binary.BigEndian.AppendUint16(nil, uint16(n))}
	case n >= -1<<31 && n <= 1<<31-1:
		return value{serial: 4, body: binary.BigEndian.AppendUint32(nil, uint32(n))}
	default:
		return value{serial: 6, body: binary.BigEndian.AppendUint64(nil, uint64(n))}
	}
}

// record is the SQLite record format: a header (its own size, then one serial type a
// column, all varints) followed by the column bodies.
func record(values ...value) []byte {
	var types, body []byte
	for _, v := range values {
		types = appendVarint(types, v.serial)
		body = append(body, v.body...)
	}
	// The header size counts itself; its varint grows by a byte when the total
	// crosses a 7-bit boundary.
	n := uint64(len(types)) + 1
	for uint64(len(appendVarint(nil, n)))+uint64(len(types)) != n {
		n++
	}
	out := appendVarint(nil, n)
	out = append(out, types...)
	return append(out, body...)
}

// appendVarint appends v as an SQLite varint: big-endian groups of 7 bits with the high
// bit set on all but the last byte, and a ninth byte (if needed) carrying 8 bits.
func appendVarint(b []byte, v uint64) []byte {
	if v > 1<<56-1 {
		var buf [9]byte
		buf[8] = byte(v)
		v >>= 8
		for i := 7; i >= 0; i-- {
			buf[i] = byte(v&0x7f) | 0x80
			v >>= 7
		}
		return append(b, buf[:]...)
	}
	var buf [8]byte
	i := len(buf) - 1
	buf[i] = byte(v & 0x7f)
	v >>= 7
	for v > 0 {
		i--
		buf[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	return append(b, buf[i:]...)
}
