package trivydb_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wso2img/wso2img/internal/trivydb"
)

var (
	log4shell = trivydb.Vulnerability{
		ID:       "CVE-2021-44228",
		Title:    "log4j-core: Remote code execution in Log4j 2.x when logs contain an attacker-controlled string value",
		Severity: "CRITICAL",
		VendorSeverity: map[string]string{
			"nvd": "CRITICAL",
		},
		References:    []string{"https://nvd.nist.gov/vuln/detail/CVE-2021-44228"},
		PublishedDate: time.Date(2021, 12, 10, 10, 15, 0, 0, time.UTC),
	}
	log4shellMaven = trivydb.Advisory{
		Bucket:             trivydb.BucketMavenGHSA,
		Package:            "org.apache.logging.log4j:log4j-core",
		VulnerabilityID:    "CVE-2021-44228",
		VulnerableVersions: []string{">= 2.0.0-beta9, < 2.15.0"},
		PatchedVersions:    []string{"2.15.0"},
	}
	muslVuln = trivydb.Vulnerability{ID: "CVE-2025-26519", Title: "musl: iconv out-of-bounds write", Severity: "HIGH"}
	muslApk  = trivydb.Advisory{Bucket: trivydb.BucketAlpine320, Package: "musl", VulnerabilityID: "CVE-2025-26519", FixedVersion: "1.2.5-r1"}
)

// TestWriteLayout reads the bolt file back and checks trivy-db's layout: advisories under
// bucket/package/ID, details under vulnerability/ID with vendor severities as numbers,
// and the data source of each bucket.
func TestWriteLayout(t *testing.T) {
	dir := t.TempDir()
	updated := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	if err := trivydb.WriteAt(dir, updated, []trivydb.Advisory{log4shellMaven, muslApk}, []trivydb.Vulnerability{log4shell, muslVuln}); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "db", "trivy.db"), 0o644, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	get := func(path ...string) map[string]any {
		t.Helper()
		var out map[string]any
		err := db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(path[0]))
			for _, p := range path[1 : len(path)-1] {
				if b == nil {
					break
				}
				b = b.Bucket([]byte(p))
			}
			if b == nil {
				t.Fatalf("no bucket %q", path[:len(path)-1])
			}
			v := b.Get([]byte(path[len(path)-1]))
			if v == nil {
				t.Fatalf("no key %q", path)
			}
			return json.Unmarshal(v, &out)
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		path []string
		want map[string]any
	}{
		{[]string{trivydb.BucketMavenGHSA, "org.apache.logging.log4j:log4j-core", "CVE-2021-44228"},
			map[string]any{"VulnerableVersions": []any{">= 2.0.0-beta9, < 2.15.0"}, "PatchedVersions": []any{"2.15.0"}}},
		{[]string{trivydb.BucketAlpine320, "musl", "CVE-2025-26519"}, map[string]any{"FixedVersion": "1.2.5-r1"}},
		{[]string{"vulnerability", "CVE-2021-44228"}, map[string]any{
			"Title":          log4shell.Title,
			"Severity":       "CRITICAL",
			"VendorSeverity": map[string]any{"nvd": 4.0, "ghsa": 4.0},
			"References":     []any{"https://nvd.nist.gov/vuln/detail/CVE-2021-44228"},
			"PublishedDate":  "2021-12-10T10:15:00Z",
		}},
		{[]string{"vulnerability", "CVE-2025-26519"}, map[string]any{
			"Title": muslVuln.Title, "Severity": "HIGH", "VendorSeverity": map[string]any{"alpine": 3.0},
		}},
		{[]string{"data-source", trivydb.BucketMavenGHSA}, map[string]any{
			"ID": "ghsa", "Name": "GitHub Security Advisory Maven", "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Amaven",
		}},
		{[]string{"data-source", trivydb.BucketAlpine320}, map[string]any{"ID": "alpine", "Name": "Alpine Secdb", "URL": "https://secdb.alpinelinux.org/"}},
	}
	for _, tt := range tests {
		if got := get(tt.path...); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q = %v, want %v", tt.path, got, tt.want)
		}
	}

	for _, sub := range []struct {
		file    string
		version int
	}{{"db/metadata.json", trivydb.SchemaVersion}, {"java-db/metadata.json", trivydb.JavaSchemaVersion}} {
		data, err := os.ReadFile(filepath.Join(dir, sub.file))
		if err != nil {
			t.Fatal(err)
		}
		var m trivydb.Metadata
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		want := trivydb.Metadata{Version: sub.version, UpdatedAt: updated, DownloadedAt: updated, NextUpdate: updated.Add(24 * time.Hour)}
		if m != want {
			t.Errorf("%s = %+v, want %+v", sub.file, m, want)
		}
	}
	if m, err := trivydb.ReadMetadata(dir); err != nil || !m.UpdatedAt.Equal(updated) {
		t.Errorf("ReadMetadata = %+v, %v; want UpdatedAt %s", m, err, updated)
	}
}

// TestJavaDBIsSQLite checks the hand-written Java DB with SQLite itself (the sqlite3
// command line tool, when installed): the file passes an integrity check and has
// trivy-java-db's tables and indexes, empty.
func TestJavaDBIsSQLite(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("sqlite3 is not installed (apt-get install sqlite3); the end-to-end scan tests still prove that Trivy reads the Java DB")
	}
	dir := t.TempDir()
	if err := trivydb.Write(dir, nil, nil); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, "java-db", "trivy-java.db")
	run := func(sql string) string {
		t.Helper()
		out, err := exec.Command(sqlite3, "-readonly", dbFile, sql).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %q: %v\n%s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("PRAGMA integrity_check;"); got != "ok" {
		t.Errorf("integrity_check = %q, want ok", got)
	}
	want := strings.Join([]string{
		"table|artifacts|artifacts|2",
		"table|indices|indices|3",
		"index|artifacts_idx|artifacts|4",
		"index|indices_artifact_idx|indices|5",
		"index|indices_sha1_idx|indices|6",
	}, "\n")
	if got := run("SELECT type, name, tbl_name, rootpage FROM sqlite_master ORDER BY rowid;"); got != want {
		t.Errorf("sqlite_master:\n%s\nwant:\n%s", got, want)
	}
	// The queries trivy-java-db runs (SelectIndexBySha1, SelectIndexesByArtifactIDAndFileType).
	for _, q := range []string{
		"SELECT a.group_id, a.artifact_id, i.version, i.sha1, i.archive_type FROM indices i JOIN artifacts a ON a.id = i.artifact_id WHERE i.sha1 = x'00';",
		"SELECT f.group_id, f.artifact_id, i.version, i.sha1, i.archive_type FROM indices i JOIN (SELECT a.id, a.group_id, a.artifact_id FROM artifacts a WHERE a.artifact_id = 'log4j-core') f ON i.artifact_id = f.id WHERE i.version = '2.14.1' AND i.archive_type = 'jar';",
		"SELECT count(*) FROM artifacts WHERE artifact_id = 'a' AND group_id = 'g' AND 0;",
	} {
		if got := run(q); got != "" && got != "0" {
			t.Errorf("%s = %q, want no rows", q, got)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name  string
		adv   []trivydb.Advisory
		vulns []trivydb.Vulnerability
		want  string
	}{
		{"advisory without vulnerability", []trivydb.Advisory{log4shellMaven}, nil, "not among the vulnerabilities"},
		{"bad severity", nil, []trivydb.Vulnerability{{ID: "CVE-1", Severity: "SEVERE"}}, `severity "SEVERE"`},
		{"no bucket", []trivydb.Advisory{{Package: "p", VulnerabilityID: "CVE-1"}}, []trivydb.Vulnerability{{ID: "CVE-1", Severity: "LOW"}}, "required"},
		{"bad vendor severity", nil, []trivydb.Vulnerability{{ID: "CVE-1", Severity: "LOW", VendorSeverity: map[string]string{"nvd": "x"}}}, `severity "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := trivydb.Write(t.TempDir(), tt.adv, tt.vulns)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestMavenJar(t *testing.T) {
	data, err := trivydb.MavenJar("org.apache.logging.log4j", "log4j-core", "2.14.1")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var props string
	for _, f := range zr.File {
		if f.Name != "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		props = string(b)
	}
	if want := "groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n"; props != want {
		t.Errorf("pom.properties = %q, want %q", props, want)
	}
	if _, err := trivydb.MavenJar("g", "a/b", "1"); err == nil {
		t.Error("MavenJar accepted an artifact ID with a slash")
	}
}
