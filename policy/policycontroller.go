package policy

import (
	"fmt"
	"time"
)

// DefaultRekorURL and DefaultFulcioURL are the public-good Sigstore instances.
const (
	DefaultRekorURL  = "https://rekor.sigstore.dev"
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
)

// The ClusterImagePolicy (policy.sigstore.dev/v1beta1) of policy-controller v0.13, as
// far as wso2img writes it. Field order is output order.
type clusterImagePolicy struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       cipSpec  `yaml:"spec"`
}

type metadata struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

type cipSpec struct {
	Mode        string         `yaml:"mode"`
	Images      []cipImage     `yaml:"images"`
	Authorities []cipAuthority `yaml:"authorities"`
}

type cipImage struct {
	Glob string `yaml:"glob"`
}

type cipAuthority struct {
	Name         string           `yaml:"name"`
	Key          *cipKey          `yaml:"key,omitempty"`
	Keyless      *cipKeyless      `yaml:"keyless,omitempty"`
	CTLog        *cipTLog         `yaml:"ctlog,omitempty"`
	Attestations []cipAttestation `yaml:"attestations,omitempty"`
}

type cipKey struct {
	Data string `yaml:"data"`
}

type cipKeyless struct {
	URL        string        `yaml:"url,omitempty"`
	CACert     *cipKey       `yaml:"ca-cert,omitempty"`
	Identities []cipIdentity `yaml:"identities"`
}

type cipIdentity struct {
	Issuer        string `yaml:"issuer,omitempty"`
	IssuerRegExp  string `yaml:"issuerRegExp,omitempty"`
	Subject       string `yaml:"subject,omitempty"`
	SubjectRegExp string `yaml:"subjectRegExp,omitempty"`
}

// cipTLog is the authority's Rekor. Without it a key authority verifies no log entry,
// and a keyless one checks the entry offline against the public Rekor's keys (TUF); an
// empty one (no url) makes a keyless authority skip the log too.
type cipTLog struct {
	URL string `yaml:"url,omitempty"`
}

type cipAttestation struct {
	Name          string     `yaml:"name"`
	PredicateType string     `yaml:"predicateType"`
	Policy        *cipPolicy `yaml:"policy,omitempty"`
}

type cipPolicy struct {
	Type string `yaml:"type"`
	Data string `yaml:"data"`
}

var labels = map[string]string{"app.kubernetes.io/managed-by": "wso2img"}

// policyController writes two ClusterImagePolicies. policy-controller admits an image
// when one authority of each matching policy passes, and an authority with attestations
// checks only those (not the signature): so one policy requires the signature and
// another the attestations, both by the same key or identity.
func policyController(o Options) []document {
	var images []cipImage
	for _, p := range o.patterns(PolicyController) {
		images = append(images, cipImage{Glob: p})
	}
	sig := o.cipAuthority("signature")
	att := o.cipAuthority("attestations")
	for _, a := range o.required() {
		ca := cipAttestation{Name: a.name, PredicateType: a.predicateType}
		if a.predicateType == PredicateVuln {
			ca.Policy = &cipPolicy{Type: "rego", Data: vulnAgeRego(o.MaxScanAge)}
		}
		att.Attestations = append(att.Attestations, ca)
	}
	mk := func(suffix string, a cipAuthority) clusterImagePolicy {
		return clusterImagePolicy{
			APIVersion: "policy.sigstore.dev/v1beta1",
			Kind:       "ClusterImagePolicy",
			Metadata:   metadata{Name: o.name() + "-" + suffix, Labels: labels},
			Spec:       cipSpec{Mode: "enforce", Images: images, Authorities: []cipAuthority{a}},
		}
	}
	trust := o.trustText()
	return []document{
		{PolicyController, "Sigstore policy-controller: the images must carry a cosign signature.\n" + trust, mk("signature", sig)},
		{PolicyController, "Sigstore policy-controller: the images must carry wso2img's attestations.\n" + trust, mk("attestations", att)},
	}
}

func (o Options) cipAuthority(name string) cipAuthority {
	a := cipAuthority{Name: name}
	if o.PublicKey != "" {
		a.Key = &cipKey{Data: o.PublicKey}
		if !o.IgnoreTlog {
			a.CTLog = &cipTLog{URL: firstOf(o.RekorURL, DefaultRekorURL)}
		}
		return a
	}
	id := o.Identity
	kl := &cipKeyless{Identities: []cipIdentity{{Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp}}}
	// policy-controller takes a Fulcio URL or its CA certificate, not both.
	if o.CARoots != "" {
		kl.CACert = &cipKey{Data: o.CARoots}
	} else {
		kl.URL = firstOf(o.FulcioURL, DefaultFulcioURL)
	}
	a.Keyless = kl
	switch {
	case o.IgnoreTlog:
		a.CTLog = &cipTLog{}
	case o.RekorURL != "":
		a.CTLog = &cipTLog{URL: o.RekorURL}
	}
	return a
}

// vulnAgeRego is the attestation policy of the vulnerability scan. policy-controller
// evaluates it with cosign's rego evaluator (package sigstore, rule isCompliant, Rego
// v0 syntax) against the verified in-toto statement. Rego, not CUE: CUE has no clock,
// so only Rego can compare scanFinishedOn with the time of admission.
func vulnAgeRego(maxAge time.Duration) string {
	return fmt.Sprintf(`package sigstore

# The scan must have finished at most %s (%d ns) before admission.
max_age_ns := %d

default isCompliant = false

isCompliant {
	input.predicateType == %q
	finished := time.parse_rfc3339_ns(input.predicate.metadata.scanFinishedOn)
	time.now_ns() - finished <= max_age_ns
}
`, maxAge, maxAge.Nanoseconds(), maxAge.Nanoseconds(), PredicateVuln)
}
