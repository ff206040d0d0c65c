// Package trivydb writes an offline Trivy cache directory from a handful of advisories,
// so that tests run the real Trivy CLI with no network: db/trivy.db (the vulnerability
// DB, a bbolt file in trivy-db's schema version 2) with db/metadata.json, and
// java-db/trivy-java.db (an SQLite file with trivy-java-db's schema, version 1, and no
// rows) with java-db/metadata.json. Trivy reads it with
//
//	trivy image --cache-dir DIR --skip-db-update --skip-java-db-update --offline-scan …
//
// It does what Trivy's own integration tests do (bolt fixtures plus metadata.json, and an
// initialised empty Java DB), without importing Trivy, trivy-db or an SQLite driver: the
// bucket layout and JSON values are written with go.etcd.io/bbolt and encoding/json, and
// the SQLite file is written byte by byte (see sqlite.go).
//
// It is for tests and hack/ programs only; product code must not import it.
package trivydb

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Schema versions of the files Write produces: the versions Trivy v0.74 expects.
const (
	// SchemaVersion is trivy-db's schema version (ghcr.io/aquasecurity/trivy-db:2).
	SchemaVersion = 2
	// JavaSchemaVersion is trivy-java-db's schema version (ghcr.io/aquasecurity/trivy-java-db:1).
	JavaSchemaVersion = 1
)

// Buckets of data sources as trivy-db names them. An OS bucket is "<family> <release>"
// with the release cut to what Trivy's detector looks up (major.minor for Alpine); a
// language bucket is "<ecosystem>::<data source>".
const (
	BucketAlpine320 = "alpine 3.20"
	BucketMavenGHSA = "maven::GitHub Security Advisory Maven"
)

// DataSource is the entry of the "data-source" bucket that names where a bucket's
// advisories come from; Trivy reports it with each finding and picks the vendor severity
// by its ID.
type DataSource struct {
	ID   string `json:",omitempty"` // "ghsa", "alpine", "nvd", …
	Name string `json:",omitempty"`
	URL  string `json:",omitempty"`
}

// KnownDataSources are the data sources of the buckets named above, as the real DB has
// them. Write records the data source of every bucket it writes that is listed here.
var KnownDataSources = map[string]DataSource{
	BucketAlpine320: {ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"},
	BucketMavenGHSA: {ID: "ghsa", Name: "GitHub Security Advisory Maven", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Amaven"},
}

// Advisory says that a package of one bucket is affected by a vulnerability.
type Advisory struct {
	// Bucket is the data source bucket: BucketAlpine320, BucketMavenGHSA, "debian 12", …
	Bucket string
	// Package is the package name as the ecosystem spells it: "musl" (for OS packages the
	// source package name), "org.apache.logging.log4j:log4j-core" (Maven groupId:artifactId).
	Package string
	// VulnerabilityID is the CVE or vendor ID, also the key of its Vulnerability.
	VulnerabilityID string
	// FixedVersion is the first fixed version, for OS buckets ("1.2.5-r1"); empty means
	// every version is affected.
	FixedVersion string
	// VulnerableVersions and PatchedVersions are version ranges for language buckets, in
	// the ecosystem's syntax: ">= 2.0.0-beta9, < 2.15.0" and "2.15.0".
	VulnerableVersions []string
	PatchedVersions    []string
}

// Vulnerability is the detail Trivy shows for a vulnerability ID.
type Vulnerability struct {
	ID          string
	Title       string
	Description string
	// Severity is UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL. Write also records it as the
	// vendor severity of the data source of every bucket with an advisory for ID (as
	// the real DB does), unless VendorSeverity names that source already.
	Severity string
	// VendorSeverity maps a data source ID ("ghsa", "nvd", "alpine") to its severity.
	VendorSeverity map[string]string
	References     []string
	// PublishedDate and LastModifiedDate are optional.
	PublishedDate, LastModifiedDate time.Time
}

// Metadata is what db/metadata.json and java-db/metadata.json hold.
type Metadata struct {
	Version      int `json:",omitempty"`
	NextUpdate   time.Time
	UpdatedAt    time.Time
	DownloadedAt time.Time
}

// severities in Trivy's order; the index is trivy-db's numeric severity.
var severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func severityNumber(s string) (int, error) {
	for i, name := range severities {
		if s == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("severity %q is not one of %s", s, strings.Join(severities, ", "))
}

// Write makes dir a Trivy cache directory (--cache-dir) holding a vulnerability DB with
// exactly these advisories and vulnerabilities, and an empty Java DB, both marked as
// updated now and due for an update in 24 hours. Files already there are replaced.
// Every advisory must name a vulnerability of vulns.
func Write(dir string, advisories []Advisory, vulns []Vulnerability) error {
	now := time.Now().UTC().Truncate(time.Second)
	return WriteAt(dir, now, advisories, vulns)
}

// WriteAt is Write with the DBs' update time set to updatedAt, for tests that check
// what a scanner reports as the DB's age.
func WriteAt(dir string, updatedAt time.Time, advisories []Advisory, vulns []Vulnerability) error {
	byID := map[string]*Vulnerability{}
	for i := range vulns {
		v := &vulns[i]
		if v.ID == "" {
			return errors.New("trivydb: a vulnerability has no ID")
		}
		if _, err := severityNumber(v.Severity); err != nil {
			return fmt.Errorf("trivydb: vulnerability %s: %w", v.ID, err)
		}
		byID[v.ID] = v
	}
	for _, a := range advisories {
		if a.Bucket == "" || a.Package == "" || a.VulnerabilityID == "" {
			return fmt.Errorf("trivydb: advisory %+v: Bucket, Package and VulnerabilityID are required", a)
		}
		if byID[a.VulnerabilityID] == nil {
			return fmt.Errorf("trivydb: advisory for %s in %q names %s, which is not among the vulnerabilities", a.Package, a.Bucket, a.VulnerabilityID)
		}
	}

	meta := Metadata{
		NextUpdate:   updatedAt.Add(24 * time.Hour),
		UpdatedAt:    updatedAt,
		DownloadedAt: updatedAt,
	}
	dbDir := filepath.Join(dir, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return fmt.Errorf("trivydb: %w", err)
	}
	if err := writeBolt(filepath.Join(dbDir, "trivy.db"), advisories, vulns); err != nil {
		return err
	}
	meta.Version = SchemaVersion
	if err := writeJSON(filepath.Join(dbDir, "metadata.json"), meta); err != nil {
		return err
	}

	javaDir := filepath.Join(dir, "java-db")
	if err := os.MkdirAll(javaDir, 0o755); err != nil {
		return fmt.Errorf("trivydb: %w", err)
	}
	sqlite, err := emptySQLite(javaDBSchema)
	if err != nil {
		return fmt.Errorf("trivydb: writing the Java DB: %w", err)
	}
	if err := os.WriteFile(filepath.Join(javaDir, "trivy-java.db"), sqlite, 0o644); err != nil {
		return fmt.Errorf("trivydb: writing the Java DB: %w", err)
	}
	meta.Version = JavaSchemaVersion
	return writeJSON(filepath.Join(javaDir, "metadata.json"), meta)
}

// ReadMetadata reads db/metadata.json of the cache directory dir.
func ReadMetadata(dir string) (Metadata, error) {
	var m Metadata
	data, err := os.ReadFile(filepath.Join(dir, "db", "metadata.json"))
	if err != nil {
		return m, fmt.Errorf("trivydb: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("trivydb: parsing %s: %w", filepath.Join(dir, "db", "metadata.json"), err)
	}
	return m, nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("trivydb: encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("trivydb: %w", err)
	}
	return nil
}

// dbAdvisory is the JSON value of an advisory in trivy-db (types.Advisory; the key is
// the vulnerability ID, so it is not repeated).
type dbAdvisory struct {
	FixedVersion       string   `json:",omitempty"`
	VulnerableVersions []string `json:",omitempty"`
	PatchedVersions    []string `json:",omitempty"`
}

// dbVulnerability is trivy-db's types.Vulnerability: severities are numbers in
// VendorSeverity and a name in Severity.
type dbVulnerability struct {
	Title            string         `json:",omitempty"`
	Description      string         `json:",omitempty"`
	Severity         string         `json:",omitempty"`
	VendorSeverity   map[string]int `json:",omitempty"`
	References       []string       `json:",omitempty"`
	PublishedDate    *time.Time     `json:",omitempty"`
	LastModifiedDate *time.Time     `json:",omitempty"`
}

// writeBolt writes the bbolt file in trivy-db's layout:
//
//	<bucket> / <package> / <vulnerability ID> = advisory JSON
//	"vulnerability" / <vulnerability ID>        = vulnerability JSON
//	"data-source" / <bucket>                    = data source JSON
func writeBolt(path string, advisories []Advisory, vulns []Vulnerability) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("trivydb: %w", err)
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("trivydb: creating %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// The vendor severity of each vulnerability for each data source that has an
		// advisory for it.
		sources := map[string][]string{} // vulnerability ID -> data source IDs
		for _, a := range advisories {
			b, err := nested(tx, a.Bucket, a.Package)
			if err != nil {
				return err
			}
			if err := putJSON(b, a.VulnerabilityID, dbAdvisory{a.FixedVersion, a.VulnerableVersions, a.PatchedVersions}); err != nil {
				return err
			}
			if ds, ok := KnownDataSources[a.Bucket]; ok {
				sources[a.VulnerabilityID] = append(sources[a.VulnerabilityID], ds.ID)
				dsb, err := nested(tx, "data-source")
				if err != nil {
					return err
				}
				if err := putJSON(dsb, a.Bucket, ds); err != nil {
					return err
				}
			}
		}
		vb, err := nested(tx, "vulnerability")
		if err != nil {
			return err
		}
		for _, v := range vulns {
			dv := dbVulnerability{
				Title:          v.Title,
				Description:    v.Description,
				Severity:       v.Severity,
				VendorSeverity: map[string]int{},
				References:     v.References,
			}
			for src, s := range v.VendorSeverity {
				n, err := severityNumber(s)
				if err != nil {
					return fmt.Errorf("vulnerability %s, vendor %s: %w", v.ID, src, err)
				}
				dv.VendorSeverity[src] = n
			}
			srcs := sources[v.ID]
			sort.Strings(srcs)
			for _, src := range srcs {
				if _, ok := dv.VendorSeverity[src]; !ok {
					dv.VendorSeverity[src], _ = severityNumber(v.Severity)
				}
			}
			if !v.PublishedDate.IsZero() {
				t := v.PublishedDate.UTC()
				dv.PublishedDate = &t
			}
			if !v.LastModifiedDate.IsZero() {
				t := v.LastModifiedDate.UTC()
				dv.LastModifiedDate = &t
			}
			if err := putJSON(vb, v.ID, dv); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("trivydb: writing %s: %w", path, err)
	}
	return nil
}

// nested returns the bucket at the path of names, creating what is missing.
func nested(tx *bolt.Tx, names ...string) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists([]byte(names[0]))
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %w", names[0], err)
	}
	for _, n := range names[1:] {
		if b, err = b.CreateBucketIfNotExists([]byte(n)); err != nil {
			return nil, fmt.Errorf("bucket %q in %q: %w", n, names[0], err)
		}
	}
	return b, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}
