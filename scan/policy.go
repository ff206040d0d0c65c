package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Severity is a vulnerability severity in Trivy's order: Unknown < Low < Medium < High <
// Critical. The zero value is Unknown, the lowest: a threshold of Unknown fails on every
// finding.
type Severity int

// Severities, lowest first.
const (
	Unknown Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// ParseSeverity parses a severity name, in any case: "high", "CRITICAL".
func ParseSeverity(s string) (Severity, error) {
	for i, name := range severityNames {
		if strings.EqualFold(s, name) {
			return Severity(i), nil
		}
	}
	return Unknown, fmt.Errorf("severity %q: want one of %s", s, strings.Join(severityNames[:], ", "))
}

func (s Severity) String() string {
	if s < Unknown || s > Critical {
		return fmt.Sprintf("Severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Unknown || s > Critical {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Scope says which findings the gate judges.
type Scope string

const (
	// ScopeAdded gates only on findings that the base image does not have: what the
	// build added (a vulnerable jar among the inputs). The default.
	ScopeAdded Scope = "added"
	// ScopeAll gates on every finding, the base image's included.
	ScopeAll Scope = "all"
)

// ParseScope parses "added" or "all"; "" is ScopeAdded.
func ParseScope(s string) (Scope, error) {
	switch Scope(strings.ToLower(s)) {
	case "", ScopeAdded:
		return ScopeAdded, nil
	case ScopeAll:
		return ScopeAll, nil
	}
	return "", fmt.Errorf("scan scope %q: want %q or %q", s, ScopeAdded, ScopeAll)
}

// Origin says where a finding comes from.
type Origin string

const (
	// OriginBase: the base image has the same finding (same ID, package, installed
	// version and path).
	OriginBase Origin = "base"
	// OriginInputs: the base image does not have it; the build added it.
	OriginInputs Origin = "inputs"
)

// Policy is what one scan is judged by.
type Policy struct {
	// Threshold is the lowest severity that fails the gate: High fails on HIGH and
	// CRITICAL findings. The zero value, Unknown, fails on every finding.
	Threshold Severity
	// Scope is ScopeAdded (the default when empty) or ScopeAll.
	Scope Scope
	// IgnoreFile is a Trivy ignore file in YAML (.trivyignore.yaml):
	//
	//	vulnerabilities:
	//	  - id: CVE-2021-44228
	//	    paths: ["home/wso2carbon/**/log4j-core-*.jar"]   # optional, globs
	//	    purls: ["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"]  # optional
	//	    expired_at: 2026-12-31                             # optional
	//	    statement: not reachable, patched by WSO2-2021-1234
	//
	// Trivy applies it (so its matching is exactly Trivy's); wso2img reads it first,
	// strictly, so that a missing file or a misspelt key is an error rather than an
	// ignore list that silently does nothing. Entries past expired_at do not apply and
	// are listed in Report.ExpiredIgnores. Empty: nothing is ignored.
	IgnoreFile string
}

func (p Policy) withDefaults() (Policy, error) {
	scope, err := ParseScope(string(p.Scope))
	if err != nil {
		return p, err
	}
	p.Scope = scope
	if p.Threshold < Unknown || p.Threshold > Critical {
		return p, fmt.Errorf("invalid threshold %d", int(p.Threshold))
	}
	return p, nil
}

// IgnoreRule is one vulnerability entry of an ignore file.
type IgnoreRule struct {
	ID        string    `json:"id"`
	Paths     []string  `json:"paths,omitempty"`
	PURLs     []string  `json:"purls,omitempty"`
	ExpiredAt time.Time `json:"expiredAt,omitzero"`
	Statement string    `json:"statement,omitempty"`
}

// ignoreFile is Trivy's YAML ignore file (pkg/result.IgnoreConfig); only the
// vulnerabilities matter to the gate, the other lists are accepted as Trivy accepts them.
type ignoreFile struct {
	Vulnerabilities   []ignoreEntry `yaml:"vulnerabilities"`
	Misconfigurations []ignoreEntry `yaml:"misconfigurations"`
	Secrets           []ignoreEntry `yaml:"secrets"`
	Licenses          []ignoreEntry `yaml:"licenses"`
}

type ignoreEntry struct {
	ID        string    `yaml:"id"`
	Paths     []string  `yaml:"paths"`
	PURLs     []string  `yaml:"purls"`
	ExpiredAt time.Time `yaml:"expired_at"`
	Statement string    `yaml:"statement"`
}

// ReadIgnoreFile reads a Trivy YAML ignore file strictly (unknown keys and entries
// without an id are errors) and returns its vulnerability rules split into those that
// apply at now and those that expired before it.
func ReadIgnoreFile(path string, now time.Time) (active, expired []IgnoreRule, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the ignore file: %w", err)
	}
	active, expired, err = parseIgnoreFile(data, now)
	if err != nil {
		return nil, nil, fmt.Errorf("ignore file %s: %w", path, err)
	}
	return active, expired, nil
}

func parseIgnoreFile(data []byte, now time.Time) (active, expired []IgnoreRule, err error) {
	var f ignoreFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: an empty ignore list.
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("not a Trivy YAML ignore file (keys: vulnerabilities[].id, paths, purls, expired_at, statement): %w", err)
	}
	for i, e := range f.Vulnerabilities {
		if e.ID == "" {
			return nil, nil, fmt.Errorf("vulnerabilities[%d] has no id", i)
		}
		for _, p := range e.PURLs {
			if !strings.HasPrefix(p, "pkg:") {
				return nil, nil, fmt.Errorf("vulnerabilities[%d] (%s): purl %q does not start with \"pkg:\"", i, e.ID, p)
			}
		}
		r := IgnoreRule{ID: e.ID, Paths: e.Paths, PURLs: e.PURLs, ExpiredAt: e.ExpiredAt, Statement: e.Statement}
		// Trivy drops an entry whose expired_at is before now (pkg/result.IgnoreFindings.Prune).
		if !e.ExpiredAt.IsZero() && e.ExpiredAt.Before(now) {
			expired = append(expired, r)
			continue
		}
		active = append(active, r)
	}
	return active, expired, nil
}

// severityOf reads a Trivy severity name; anything else is Unknown, as Trivy treats it.
func severityOf(s string) Severity {
	v, err := ParseSeverity(s)
	if err != nil {
		return Unknown
	}
	return v
}
