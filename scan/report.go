package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// PredicateType is the in-toto predicate type of the vulnerability attestation that
// Report.Predicate makes: cosign's vulnerability scan record, which
// `cosign attest --type vuln` writes and `cosign verify-attestation --type vuln` checks.
const PredicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"

// trivyReport is the part of Trivy's JSON report (SchemaVersion 2) that the gate reads.
// Trivy is not imported: its maintainers advise against using it as a library, and it
// is large.
type trivyReport struct {
	SchemaVersion int
	Trivy         struct {
		Version string
		Server  struct {
			Version         string
			VulnerabilityDB *trivyDBMetadata
		}
	}
	CreatedAt    time.Time
	ArtifactName string
	ArtifactType string
	Metadata     struct {
		ImageID     string
		RepoDigests []string
		OS          *struct{ Family, Name string }
	}
	Results []trivyResult
}

type trivyDBMetadata struct {
	Version    int
	UpdatedAt  time.Time
	NextUpdate time.Time
}

type trivyResult struct {
	Target           string
	Class            string
	Type             string
	Vulnerabilities  []trivyVulnerability
	ModifiedFindings []trivyModifiedFinding `json:"ExperimentalModifiedFindings"`
}

type trivyVulnerability struct {
	VulnerabilityID  string
	PkgName          string
	PkgPath          string
	PkgIdentifier    struct{ PURL string }
	InstalledVersion string
	FixedVersion     string
	Status           string
	Severity         string
	SeveritySource   string
	Title            string
	PrimaryURL       string
	Layer            struct{ Digest, DiffID string }
}

// trivyModifiedFinding is a finding that Trivy suppressed (--show-suppressed): Status
// "ignored" with the ignore file as Source, or "not_affected" from a VEX document.
type trivyModifiedFinding struct {
	Type      string
	Status    string
	Statement string
	Source    string
	Finding   json.RawMessage
}

// trivySchemaVersion is the report schema this parser reads.
const trivySchemaVersion = 2

// parseTrivyReport parses and checks Trivy's JSON report.
func parseTrivyReport(data []byte) (*trivyReport, error) {
	var r trivyReport
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("parsing Trivy's JSON report: %w", err)
	}
	if r.SchemaVersion != trivySchemaVersion {
		return nil, fmt.Errorf("Trivy's JSON report has SchemaVersion %d, want %d (a Trivy release this wso2img does not know)", r.SchemaVersion, trivySchemaVersion)
	}
	for i, res := range r.Results {
		for j, v := range res.Vulnerabilities {
			if v.VulnerabilityID == "" || v.PkgName == "" {
				return nil, fmt.Errorf("Trivy's JSON report: Results[%d].Vulnerabilities[%d] (target %q) has no VulnerabilityID or PkgName", i, j, res.Target)
			}
		}
	}
	return &r, nil
}

// Finding is one vulnerability of one package in the image.
type Finding struct {
	// ID is the vulnerability ID: "CVE-2021-44228", "GHSA-…".
	ID string `json:"id"`
	// Package is the package name: "musl", "org.apache.logging.log4j:log4j-core".
	Package string `json:"package"`
	// Path is where a language package lives in the image ("home/…/log4j-core-2.14.1.jar",
	// without a leading slash, as Trivy reports it); empty for OS packages.
	Path             string `json:"path,omitempty"`
	InstalledVersion string `json:"installedVersion"`
	// FixedVersion is empty when no fixed version is known.
	FixedVersion string   `json:"fixedVersion,omitempty"`
	Severity     Severity `json:"severity"`
	Title        string   `json:"title,omitempty"`
	PrimaryURL   string   `json:"primaryURL,omitempty"`
	PURL         string   `json:"purl,omitempty"`
	// Target and Class are Trivy's result the finding is in: "alpine 3.20.3" and
	// "os-pkgs", or "Java" and "lang-pkgs".
	Target string `json:"target"`
	Class  string `json:"class,omitempty"`
	// Layer is the DiffID of the layer that holds the package.
	Layer  string `json:"layer,omitempty"`
	Origin Origin `json:"origin"`
	// Statement is the ignore file's statement, for an ignored finding.
	Statement string `json:"statement,omitempty"`
}

// key identifies a finding across the base's and the image's scans.
type findingKey struct{ id, pkg, version, path string }

func (f Finding) key() findingKey {
	return findingKey{f.ID, f.Package, f.InstalledVersion, f.Path}
}

func (f Finding) String() string {
	fixed := f.FixedVersion
	if fixed == "" {
		fixed = "(no fix)"
	}
	s := fmt.Sprintf("%s %s %s → %s", f.ID, f.Package, f.InstalledVersion, fixed)
	if f.Path != "" {
		s += " " + f.Path
	}
	return fmt.Sprintf("%s %s (%s)", s, f.Severity, f.Origin)
}

func finding(res trivyResult, v trivyVulnerability) Finding {
	return Finding{
		ID:               v.VulnerabilityID,
		Package:          v.PkgName,
		Path:             v.PkgPath,
		InstalledVersion: v.InstalledVersion,
		FixedVersion:     v.FixedVersion,
		Severity:         severityOf(v.Severity),
		Title:            v.Title,
		PrimaryURL:       v.PrimaryURL,
		PURL:             v.PkgIdentifier.PURL,
		Target:           res.Target,
		Class:            res.Class,
		Layer:            v.Layer.DiffID,
	}
}

// findings returns the report's active findings and those its ignore file suppressed,
// each sorted (by severity, highest first, then ID, package, path).
func (r *trivyReport) findings() (active, ignored []Finding, err error) {
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			active = append(active, finding(res, v))
		}
		for i, m := range res.ModifiedFindings {
			if m.Type != "" && m.Type != "vulnerability" {
				continue
			}
			var v trivyVulnerability
			if err := json.Unmarshal(m.Finding, &v); err != nil {
				return nil, nil, fmt.Errorf("parsing Trivy's JSON report: Results (target %q) ExperimentalModifiedFindings[%d]: %w", res.Target, i, err)
			}
			if v.VulnerabilityID == "" {
				return nil, nil, fmt.Errorf("parsing Trivy's JSON report: Results (target %q) ExperimentalModifiedFindings[%d] has no VulnerabilityID", res.Target, i)
			}
			f := finding(res, v)
			f.Statement = m.Statement
			ignored = append(ignored, f)
		}
	}
	sortFindings(active)
	sortFindings(ignored)
	return active, ignored, nil
}

// keys returns the keys of all the report's findings, suppressed ones included.
func (r *trivyReport) keys() (map[findingKey]bool, error) {
	active, ignored, err := r.findings()
	if err != nil {
		return nil, err
	}
	keys := make(map[findingKey]bool, len(active)+len(ignored))
	for _, f := range append(active, ignored...) {
		keys[f.key()] = true
	}
	return keys, nil
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.InstalledVersion < b.InstalledVersion
	})
}

// Report is the result of scanning one image: every finding with its origin, which of
// them fail the gate, and what was scanned with what.
type Report struct {
	// Profile names the profile the image was built from, for messages.
	Profile string `json:"profile,omitempty"`
	// Image is the reference scanned, by digest: "registry/repo@sha256:…".
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Base is the base image, by digest, whose findings have origin "base".
	Base    string      `json:"base"`
	Scanner ScannerInfo `json:"scanner"`
	DB      DBInfo      `json:"db"`

	Threshold Severity `json:"threshold"`
	Scope     Scope    `json:"scope"`
	// Findings are all findings that no ignore rule suppressed, highest severity first.
	Findings []Finding `json:"findings"`
	// Failed are the findings that fail the gate: at or above Threshold and, in
	// ScopeAdded, of origin "inputs". Empty means the image passed.
	Failed []Finding `json:"failed"`
	// Ignored are the findings an ignore rule suppressed, with its statement.
	Ignored []Finding `json:"ignored"`
	// ExpiredIgnores are the ignore file's rules that had expired, so did not apply.
	ExpiredIgnores []IgnoreRule `json:"expiredIgnores,omitempty"`

	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`

	// Invocation goes into the attestation as is; Scan sets Parameters to Trivy's
	// arguments, the caller may set URI (a CI run), EventID and BuilderID.
	Invocation Invocation `json:"-"`
	// Result is Trivy's JSON report of the image, unchanged: the attestation's result.
	Result json.RawMessage `json:"-"`
}

// ScannerInfo names the scanner.
type ScannerInfo struct {
	Name    string `json:"name"`    // "trivy"
	Version string `json:"version"` // as the Trivy binary reports itself: "0.74.0"
	// URI is the scanner's package URL, as Trivy's own cosign-vuln output writes it.
	URI string `json:"uri"`
	// Server is the Trivy server's URL in client/server mode.
	Server string `json:"server,omitempty"`
}

// DBInfo describes the vulnerability DB the scan used.
type DBInfo struct {
	// URI is the DB repository Trivy was told to use (Options.DBRepository), or
	// Trivy's default repository when none was given.
	URI string `json:"uri"`
	// UpdatedAt is when the DB was built (its metadata's UpdatedAt).
	UpdatedAt time.Time `json:"updatedAt"`
}

// Passed reports whether no finding fails the gate.
func (r *Report) Passed() bool { return len(r.Failed) == 0 }

// Invocation is the attestation's invocation (cosign's attestation.Invocation).
type Invocation struct {
	Parameters any    `json:"parameters"`
	URI        string `json:"uri"`
	EventID    string `json:"event_id"`
	BuilderID  string `json:"builder.id"`
}

// vulnPredicate is cosign's CosignVulnPredicate (pkg/cosign/attestation), field for
// field, so that `cosign attest --type vuln` and `verify-attestation --type vuln`
// read it back unchanged.
type vulnPredicate struct {
	Invocation Invocation   `json:"invocation"`
	Scanner    vulnScanner  `json:"scanner"`
	Metadata   vulnMetadata `json:"metadata"`
}

type vulnScanner struct {
	URI     string          `json:"uri"`
	Version string          `json:"version"`
	DB      vulnDB          `json:"db"`
	Result  json.RawMessage `json:"result"`
}

type vulnDB struct {
	URI     string `json:"uri"`
	Version string `json:"version"`
}

type vulnMetadata struct {
	ScanStartedOn  time.Time `json:"scanStartedOn"`
	ScanFinishedOn time.Time `json:"scanFinishedOn"`
}

// Predicate returns the vulnerability attestation's predicate (type PredicateType) as
// JSON: the invocation, the scanner (its package URL and version, the DB's repository
// and its update time, RFC 3339, as version) with Trivy's JSON report as the result,
// and when the scan started and finished.
func (r *Report) Predicate() ([]byte, error) {
	if len(r.Result) == 0 || !json.Valid(r.Result) {
		return nil, fmt.Errorf("vulnerability predicate of %s: the report holds no Trivy result", r.Image)
	}
	p := vulnPredicate{
		Invocation: r.Invocation,
		Scanner: vulnScanner{
			URI:     r.Scanner.URI,
			Version: r.Scanner.Version,
			DB:      vulnDB{URI: r.DB.URI, Version: r.DB.UpdatedAt.UTC().Format(time.RFC3339)},
			Result:  r.Result,
		},
		Metadata: vulnMetadata{ScanStartedOn: r.StartedAt.UTC(), ScanFinishedOn: r.FinishedAt.UTC()},
	}
	if r.DB.UpdatedAt.IsZero() {
		p.Scanner.DB.Version = ""
	}
	return json.Marshal(p)
}

// PlatformReport is one platform's report of a multi-platform image.
type PlatformReport struct {
	Platform string
	Report   *Report
}

// CombinedPredicate is the vulnerability predicate of an image built for several
// platforms, each scanned on its own: one predicate (the attestation is about the
// image's one digest), the first report's invocation, scanner and times spanning all
// scans, and as result {"platforms": {"linux/amd64": <Trivy's report>, …}}. One
// platform gives that platform's Predicate.
func CombinedPredicate(reports []PlatformReport) ([]byte, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("vulnerability predicate: no report")
	}
	if len(reports) == 1 {
		return reports[0].Report.Predicate()
	}
	first := reports[0].Report
	results := map[string]json.RawMessage{}
	started, finished := first.StartedAt, first.FinishedAt
	for _, pr := range reports {
		if len(pr.Report.Result) == 0 || !json.Valid(pr.Report.Result) {
			return nil, fmt.Errorf("vulnerability predicate of %s (%s): the report holds no Trivy result", pr.Report.Image, pr.Platform)
		}
		results[pr.Platform] = pr.Report.Result
		if pr.Report.StartedAt.Before(started) {
			started = pr.Report.StartedAt
		}
		if pr.Report.FinishedAt.After(finished) {
			finished = pr.Report.FinishedAt
		}
	}
	result, err := json.Marshal(map[string]any{"platforms": results})
	if err != nil {
		return nil, err
	}
	c := *first
	c.Result, c.StartedAt, c.FinishedAt = result, started, finished
	return c.Predicate()
}
