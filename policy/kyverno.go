package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Kyverno's ClusterPolicy (kyverno.io/v1) with one verifyImages rule, as far as wso2img
// writes it. Field order is output order.
type clusterPolicy struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       kySpec   `yaml:"spec"`
}

type kySpec struct {
	// Image verification runs at admission only: a background scan cannot mutate
	// tags to digests and would re-verify every image periodically.
	Background            bool     `yaml:"background"`
	WebhookTimeoutSeconds int      `yaml:"webhookTimeoutSeconds"`
	Rules                 []kyRule `yaml:"rules"`
}

type kyRule struct {
	Name         string          `yaml:"name"`
	Match        kyMatch         `yaml:"match"`
	VerifyImages []kyVerifyImage `yaml:"verifyImages"`
}

type kyMatch struct {
	Any []kyResourceFilter `yaml:"any"`
}

type kyResourceFilter struct {
	Resources kyResources `yaml:"resources"`
}

type kyResources struct {
	Kinds []string `yaml:"kinds"`
}

type kyVerifyImage struct {
	ImageReferences []string        `yaml:"imageReferences"`
	FailureAction   string          `yaml:"failureAction"`
	MutateDigest    bool            `yaml:"mutateDigest"`
	VerifyDigest    bool            `yaml:"verifyDigest"`
	Required        bool            `yaml:"required"`
	Attestors       []kyAttestorSet `yaml:"attestors"`
	Attestations    []kyAttestation `yaml:"attestations"`
}

type kyAttestorSet struct {
	Count   int       `yaml:"count"`
	Entries []kyEntry `yaml:"entries"`
}

type kyEntry struct {
	Keys    *kyKeys    `yaml:"keys,omitempty"`
	Keyless *kyKeyless `yaml:"keyless,omitempty"`
}

type kyKeys struct {
	PublicKeys string  `yaml:"publicKeys"`
	Rekor      kyRekor `yaml:"rekor"`
	CTLog      *kyCT   `yaml:"ctlog,omitempty"`
}

type kyKeyless struct {
	Subject       string  `yaml:"subject,omitempty"`
	SubjectRegExp string  `yaml:"subjectRegExp,omitempty"`
	Issuer        string  `yaml:"issuer,omitempty"`
	IssuerRegExp  string  `yaml:"issuerRegExp,omitempty"`
	Roots         string  `yaml:"roots,omitempty"`
	Rekor         kyRekor `yaml:"rekor"`
}

type kyRekor struct {
	URL        string `yaml:"url,omitempty"`
	IgnoreTlog bool   `yaml:"ignoreTlog,omitempty"`
}

type kyCT struct {
	IgnoreSCT bool `yaml:"ignoreSCT"`
}

type kyAttestation struct {
	Type       string          `yaml:"type"`
	Attestors  []kyAttestorSet `yaml:"attestors"`
	Conditions []kyAnyAllConds `yaml:"conditions,omitempty"`
}

type kyAnyAllConds struct {
	All []kyCondition `yaml:"all"`
}

type kyCondition struct {
	Key      quoted `yaml:"key"`
	Operator string `yaml:"operator"`
	Value    string `yaml:"value"`
	Message  string `yaml:"message"`
}

// kyverno writes one ClusterPolicy: a verifyImages rule whose attestors check the
// signature and whose attestations (each verified by the same attestor) check the
// predicates; Kyverno requires all of them.
func kyverno(o Options) document {
	attestors := []kyAttestorSet{{Count: 1, Entries: []kyEntry{o.kyEntry()}}}
	var atts []kyAttestation
	for _, a := range o.required() {
		ka := kyAttestation{Type: a.predicateType, Attestors: attestors}
		if a.predicateType == PredicateVuln {
			// time_since(layout, t1, t2): t2 empty is now, layout empty is RFC 3339.
			ka.Conditions = []kyAnyAllConds{{All: []kyCondition{{
				Key:      "{{ time_since('', '{{ metadata.scanFinishedOn }}', '') }}",
				Operator: "LessThanOrEquals",
				Value:    o.MaxScanAge.String(),
				Message:  fmt.Sprintf("the image's vulnerability scan is older than %s: scan it again and attest the result", o.MaxScanAge),
			}}}}
		}
		atts = append(atts, ka)
	}
	cp := clusterPolicy{
		APIVersion: "kyverno.io/v1",
		Kind:       "ClusterPolicy",
		Metadata:   metadata{Name: o.name(), Labels: labels},
		Spec: kySpec{
			Background:            false,
			WebhookTimeoutSeconds: 30,
			Rules: []kyRule{{
				Name:  "verify-wso2img-images",
				Match: kyMatch{Any: []kyResourceFilter{{Resources: kyResources{Kinds: []string{"Pod"}}}}},
				VerifyImages: []kyVerifyImage{{
					ImageReferences: o.patterns(Kyverno),
					FailureAction:   "Enforce",
					// Kyverno replaces the tag with the verified digest, so the
					// kubelet runs exactly what was verified.
					MutateDigest: true,
					VerifyDigest: true,
					Required:     true,
					Attestors:    attestors,
					Attestations: atts,
				}},
			}},
		},
	}
	return document{Kyverno, "Kyverno: the images must carry a cosign signature and wso2img's attestations.\n" + o.trustText(), cp}
}

func (o Options) kyEntry() kyEntry {
	rekor := kyRekor{URL: firstOf(o.RekorURL, DefaultRekorURL)}
	if o.IgnoreTlog {
		rekor = kyRekor{IgnoreTlog: true}
	}
	if o.PublicKey != "" {
		k := &kyKeys{PublicKeys: o.PublicKey, Rekor: rekor}
		if o.IgnoreTlog {
			// A key signature has no certificate; without the log Kyverno must not
			// look for a certificate timestamp either (its documented pairing).
			k.CTLog = &kyCT{IgnoreSCT: true}
		}
		return kyEntry{Keys: k}
	}
	id := o.Identity
	return kyEntry{Keyless: &kyKeyless{
		Subject: id.Subject, SubjectRegExp: id.SubjectRegExp,
		Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp,
		// Kyverno verifies Fulcio certificates against roots, not a Fulcio URL:
		// without CARoots it uses the public Sigstore roots.
		Roots: o.CARoots,
		Rekor: rekor,
	}}
}

// quoted is a string written in double quotes: Kyverno's variables read better so than
// in YAML's single quotes, which double every quote inside.
type quoted string

func (q quoted) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}
