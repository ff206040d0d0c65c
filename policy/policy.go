// Package policy writes Kubernetes admission policies that admit only what wso2img
// signs: a Sigstore policy-controller ClusterImagePolicy (policy.sigstore.dev/v1beta1)
// and a Kyverno ClusterPolicy (kyverno.io/v1, verifyImages), for given image patterns,
// trusting a cosign public key or a keyless identity, and requiring the attestations
// wso2img attaches: SLSA provenance v1, the SPDX SBOM and, when asked, a recent cosign
// vulnerability scan.
//
// It only writes YAML (deterministic: the same options give the same bytes); it talks to
// no cluster or registry, never imports cobra or viper, and prints nothing.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"
)

// Engine is an admission controller a policy is written for.
type Engine string

const (
	// PolicyController is Sigstore's policy-controller (ClusterImagePolicy).
	PolicyController Engine = "policy-controller"
	// Kyverno is Kyverno's ClusterPolicy with verifyImages rules.
	Kyverno Engine = "kyverno"
)

// Engines are the engines Generate knows, in the order it writes them.
var Engines = []Engine{PolicyController, Kyverno}

// Predicate types the policies require: what wso2img attaches when it signs (the same
// strings as sign.PredicateSLSAProvenance and sign.PredicateSPDX, which this package does
// not import: it stays light), and the vulnerability scan attestation (cosign attest
// --type vuln).
const (
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	PredicateSPDX           = "https://spdx.dev/Document"
	PredicateVuln           = "https://cosign.sigstore.dev/attestation/vuln/v1"
)

// DefaultName is the policies' name when Options.Name is empty.
const DefaultName = "wso2img"

// Options say which images a policy covers and whom it trusts.
type Options struct {
	// Name of the policies (a DNS subdomain); default DefaultName. policy-controller
	// gets two ClusterImagePolicies, NAME-signature and NAME-attestations.
	Name string
	// Repositories the images live in ("registry.acme.com/wso2/wso2is"): the policy
	// covers every tag and digest of each, and nothing else.
	Repositories []string
	// Images are extra patterns, written as is into both engines' policies. Their glob
	// rules differ: in policy-controller "*" stops at "/" and "**" does not; in Kyverno
	// "*" matches anything and "?" one character.
	Images []string
	// Engines to write for; empty: all of Engines.
	Engines []Engine

	// PublicKey is a PEM cosign public key the signatures must verify with. Either it
	// or a keyless Identity.
	PublicKey string
	// Identity is the keyless signer: a Fulcio certificate's subject and OIDC issuer.
	Identity Identity
	// FulcioURL of a private Fulcio (policy-controller's keyless.url); empty: the
	// public instance. CARoots is a PEM bundle of that Fulcio's CA certificates,
	// needed to verify its certificates (both engines).
	FulcioURL string
	CARoots   string
	// RekorURL is the transparency log; empty: the public instance.
	RekorURL string
	// IgnoreTlog admits signatures that have no transparency log entry (images signed
	// with --tlog-upload=false). For keyless signatures this only works with
	// certificates that are still valid at admission, since the log's timestamp is
	// what proves a short-lived certificate was valid at signing.
	IgnoreTlog bool

	// RequireVulnScan requires a cosign vulnerability attestation whose scan finished
	// at most MaxScanAge ago.
	RequireVulnScan bool
	MaxScanAge      time.Duration
}

// Identity names a keyless signer; exactly one of Subject and SubjectRegExp, and of
// Issuer and IssuerRegExp.
type Identity struct {
	Subject, SubjectRegExp string
	Issuer, IssuerRegExp   string
}

func (i Identity) isZero() bool { return i == Identity{} }

// dnsSubdomain is what Kubernetes accepts as a cluster-scoped object's name.
var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// pcGlob is the character set policy-controller accepts in an image glob
// (pkg/apis/glob).
var pcGlob = regexp.MustCompile(`^[a-zA-Z0-9-_:\/\*\.@]+$`)

// Validate reports every mistake in the options at once.
func (o Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// "-attestations" is appended for policy-controller; names are at most 253.
	if n := o.name(); len(n) > 253-len("-attestations") || !dnsSubdomain.MatchString(n) {
		add("policy name %q: want lower-case letters, digits, '-' and '.', at most %d characters", n, 253-len("-attestations"))
	}
	if len(o.Repositories) == 0 && len(o.Images) == 0 {
		add("no images: give repositories (from profiles) or image patterns")
	}
	for _, r := range o.Repositories {
		if _, err := name.NewRepository(r); err != nil {
			add("repository %q: %v", r, err)
		}
	}
	for _, e := range o.Engines {
		if !slices.Contains(Engines, e) {
			add("engine %q: want one of %v", e, Engines)
		}
	}
	for _, img := range o.Images {
		if img == "" || strings.ContainsAny(img, " \t\n") || !printable(img) {
			add("image pattern %q: empty, or with spaces or non-printable characters", img)
		} else if o.wants(PolicyController) && !pcGlob.MatchString(img) {
			add("image pattern %q: policy-controller accepts only letters, digits and -_:/*.@ in a glob", img)
		}
	}
	switch {
	case o.PublicKey != "" && !o.Identity.isZero():
		add("both a public key and a keyless identity: a policy trusts one of them")
	case o.PublicKey == "" && o.Identity.isZero():
		add("no trust: give a public key or a keyless identity (subject and issuer)")
	case o.PublicKey != "":
		if !strings.Contains(o.PublicKey, "-----BEGIN PUBLIC KEY-----") {
			add("the public key is not a PEM public key (-----BEGIN PUBLIC KEY-----)")
		}
		if o.CARoots != "" || o.FulcioURL != "" {
			add("Fulcio roots or URL given with a public key: they only apply to keyless signatures")
		}
	default:
		id := o.Identity
		switch {
		case id.Subject != "" && id.SubjectRegExp != "":
			add("keyless: both a subject and a subject regexp; give one")
		case id.Subject == "" && id.SubjectRegExp == "":
			add("keyless: no subject (the certificate identity, or a regexp of it)")
		}
		switch {
		case id.Issuer != "" && id.IssuerRegExp != "":
			add("keyless: both an issuer and an issuer regexp; give one")
		case id.Issuer == "" && id.IssuerRegExp == "":
			add("keyless: no OIDC issuer (or a regexp of it)")
		}
		for _, v := range []struct{ what, s string }{{"subject", id.Subject}, {"subject regexp", id.SubjectRegExp}, {"issuer", id.Issuer}, {"issuer regexp", id.IssuerRegExp}} {
			if !printable(v.s) {
				add("keyless: the %s %q has control or non-printable characters", v.what, v.s)
			}
		}
		for _, re := range []struct{ what, expr string }{{"subject", id.SubjectRegExp}, {"issuer", id.IssuerRegExp}} {
			if _, err := regexp.Compile(re.expr); re.expr != "" && err != nil {
				add("keyless: the %s regexp %q: %v", re.what, re.expr, err)
			}
		}
		if o.CARoots != "" && !strings.Contains(o.CARoots, "-----BEGIN CERTIFICATE-----") {
			add("the Fulcio roots are not PEM certificates")
		}
	}
	for _, u := range []struct{ what, url string }{{"Fulcio", o.FulcioURL}, {"Rekor", o.RekorURL}} {
		if u.url != "" && !strings.HasPrefix(u.url, "https://") {
			add("%s URL %q: want https://", u.what, u.url)
		}
	}
	if o.IgnoreTlog && o.RekorURL != "" {
		add("a Rekor URL with the transparency log ignored: give one or the other")
	}
	if o.RequireVulnScan && o.MaxScanAge <= 0 {
		add("a vulnerability scan is required but its maximum age is %v: want a positive duration", o.MaxScanAge)
	}
	if !o.RequireVulnScan && o.MaxScanAge != 0 {
		add("a maximum scan age without requiring a vulnerability scan")
	}
	return errors.Join(errs...)
}

// printable reports whether s is valid UTF-8 with no control characters: what an
// identity or a pattern in a YAML policy (and its header comment) can carry.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

func (o Options) name() string {
	if o.Name == "" {
		return DefaultName
	}
	return o.Name
}

func (o Options) wants(e Engine) bool {
	return len(o.Engines) == 0 || slices.Contains(o.Engines, e)
}

// Generate writes the policies as one multi-document YAML stream: policy-controller's,
// then Kyverno's, each preceded by a comment that says what it admits.
func Generate(o Options) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("writing admission policies: %w", err)
	}
	var docs []document
	for _, e := range Engines {
		if !o.wants(e) {
			continue
		}
		switch e {
		case PolicyController:
			docs = append(docs, policyController(o)...)
		case Kyverno:
			docs = append(docs, kyverno(o))
		}
	}
	var buf bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		for _, line := range strings.Split(strings.TrimSpace(d.comment), "\n") {
			buf.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(d.object); err != nil {
			return nil, fmt.Errorf("encoding the %s policy: %w", d.engine, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

type document struct {
	engine  Engine
	comment string
	object  any
}

// patterns are the image patterns of an engine: each repository's tags and digests, in
// the engine's own spelling of Docker Hub, then the extra patterns.
func (o Options) patterns(e Engine) []string {
	var out []string
	for _, r := range o.Repositories {
		repo, err := name.NewRepository(r)
		if err != nil {
			continue // Validate reported it
		}
		full := repo.Name()
		if repo.RegistryStr() == name.DefaultRegistry {
			// policy-controller matches "index.docker.io/…" (go-containerregistry's
			// name); Kyverno "docker.io/…" (its default registry).
			host := "index.docker.io"
			if e == Kyverno {
				host = "docker.io"
			}
			full = host + "/" + repo.RepositoryStr()
		}
		// REPO:* and REPO@* rather than REPO*: the latter would also cover
		// REPO-other and (in Kyverno) REPO/anything.
		out = append(out, full+":*", full+"@*")
	}
	out = append(out, o.Images...)
	return uniq(out)
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// required lists the attestations a policy requires, by name and predicate type.
func (o Options) required() []attestation {
	atts := []attestation{
		{"slsa-provenance", PredicateSLSAProvenance},
		{"spdx-sbom", PredicateSPDX},
	}
	if o.RequireVulnScan {
		atts = append(atts, attestation{"vulnerability-scan", PredicateVuln})
	}
	return atts
}

type attestation struct{ name, predicateType string }

// trustText describes whom a policy trusts, for its header comment.
func (o Options) trustText() string {
	var b strings.Builder
	if o.PublicKey != "" {
		b.WriteString("Signed with the cosign key below")
	} else {
		id := o.Identity
		subject, issuer := id.Subject, id.Issuer
		if subject == "" {
			subject = "an identity matching " + id.SubjectRegExp
		}
		if issuer == "" {
			issuer = "matching " + id.IssuerRegExp
		}
		fmt.Fprintf(&b, "Signed keyless by %s (issuer %s)", subject, issuer)
	}
	if o.IgnoreTlog {
		b.WriteString(", with no transparency log entry required")
	}
	b.WriteString(".\nRequires the attestations")
	for _, a := range o.required() {
		b.WriteString(" " + a.predicateType)
	}
	if o.RequireVulnScan {
		fmt.Fprintf(&b, "\n(the vulnerability scan finished at most %s before admission)", o.MaxScanAge)
	}
	b.WriteString(".")
	return b.String()
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
