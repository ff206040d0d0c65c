package scan

import (
	"errors"
	"fmt"
	"strings"
)

// GateError is returned by Scan, together with the Report, when the image has findings
// that fail the policy. The command maps it to exit code 5.
type GateError struct {
	Profile   string
	Image     string
	Threshold Severity
	Scope     Scope
	// Failed are the failing findings, highest severity first.
	Failed []Finding
}

func (e *GateError) Error() string {
	var b strings.Builder
	b.WriteString("vulnerability gate refused ")
	b.WriteString(e.Image)
	if e.Profile != "" {
		fmt.Fprintf(&b, " (profile %s)", e.Profile)
	}
	what := "finding"
	if len(e.Failed) != 1 {
		what = "findings"
	}
	scope := "added by the build"
	if e.Scope == ScopeAll {
		scope = "in the image"
	}
	fmt.Fprintf(&b, ": %d %s %s at or above %s:", len(e.Failed), what, scope, e.Threshold)
	for _, f := range e.Failed {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	return b.String()
}

// ErrTrivyNotFound is wrapped by the error New returns when no Trivy binary is found.
var ErrTrivyNotFound = errors.New("trivy not found")

// ErrNoDB is wrapped by the error Scan returns when Trivy had no usable vulnerability
// DB (or Java DB): none in the cache directory in offline mode, or none it could
// download.
var ErrNoDB = errors.New("no usable vulnerability database")

// dbHint says how to give Trivy a vulnerability DB.
const dbHint = `Trivy needs its vulnerability DB and Java DB. Either let it download them (network access to ghcr.io/aquasecurity/trivy-db and ghcr.io/aquasecurity/trivy-java-db, or mirror.gcr.io), or point it at mirrors of those OCI artifacts (the DB repository and Java DB repository options), or prepare a cache directory once where the network is reachable (trivy image --download-db-only --cache-dir DIR; trivy image --download-java-db-only --cache-dir DIR) and scan offline with that cache directory`
