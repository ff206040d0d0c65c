package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/sign"
)

// Policy is what the audit holds an image to. DefaultPolicy is sensible for images
// wso2img builds; a policy file (LoadPolicy) overrides it field by field.
type Policy struct {
	// AllowRoot lets the image run as root (CIS 4.1 fails otherwise).
	AllowRoot bool `yaml:"allowRoot" json:"allowRoot"`
	// Ports are the ports an image may expose ("9443", "9443/tcp"); default the ports
	// of every stock WSO2 profile.
	Ports []string `yaml:"ports" json:"ports"`
	// BaseDigests, when not empty, are the only base digests allowed (the label
	// org.opencontainers.image.base.digest must be one of them).
	BaseDigests []string `yaml:"baseDigests" json:"baseDigests,omitempty"`
	// RequiredLabels must be present and non-empty.
	RequiredLabels []string `yaml:"requiredLabels" json:"requiredLabels"`
	// AllowSetuid lists absolute paths that may keep a setuid or setgid bit.
	AllowSetuid []string `yaml:"allowSetuid" json:"allowSetuid,omitempty"`
	// AllowEnv lists environment variable names that look secret but are not.
	AllowEnv []string `yaml:"allowEnv" json:"allowEnv,omitempty"`
	// RequireHealthcheck turns a missing HEALTHCHECK from advice into a failure.
	RequireHealthcheck bool `yaml:"requireHealthcheck" json:"requireHealthcheck"`
	// Attestations are the predicate types that must be attached and verify with the
	// signature's key or identity; default SLSA provenance and SPDX SBOM. Empty: none.
	Attestations []string `yaml:"attestations" json:"attestations"`
}

// DefaultPolicy: non-root, only WSO2 products' ports, the base labels and product
// label present, no setuid/setgid files, no secrets, provenance and SBOM attested.
func DefaultPolicy() *Policy {
	return &Policy{
		Ports:          WSO2Ports(),
		RequiredLabels: []string{profiles.LabelBaseName, profiles.LabelBaseDigest, profiles.LabelProduct},
		Attestations:   []string{sign.PredicateSLSAProvenance, sign.PredicateSPDX},
	}
}

// otherWSO2Ports are WSO2 ports that no stock profile exposes: the APIM universal
// gateway's 8099, 9021 and 8021, and Micro Integrator's management API 9164 (which
// WSO2's Helm charts open).
var otherWSO2Ports = []int{8021, 8099, 9021, 9164}

// WSO2Ports are the ports WSO2 products expose: those of the stock profiles (Identity
// Server, API Manager and its components, Micro Integrator) and otherWSO2Ports, sorted.
func WSO2Ports() []string {
	seen := map[int]bool{}
	for _, p := range otherWSO2Ports {
		seen[p] = true
	}
	for _, s := range profiles.StockProfiles() {
		for _, p := range s.Profile.Ports {
			seen[p] = true
		}
	}
	ports := make([]int, 0, len(seen))
	for p := range seen {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = strconv.Itoa(p)
	}
	return out
}

// PolicyError is a policy file that cannot be used.
type PolicyError struct {
	File string
	Err  error
}

func (e *PolicyError) Error() string { return fmt.Sprintf("policy %s: %v", e.File, e.Err) }
func (e *PolicyError) Unwrap() error { return e.Err }

// LoadPolicy reads a YAML policy file over DefaultPolicy: the keys it sets replace the
// defaults (an empty list clears one). Unknown keys are errors, so that a typo never
// silently drops a check.
func LoadPolicy(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &PolicyError{File: file, Err: err}
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, &PolicyError{File: file, Err: err}
	}
	return p, nil
}

// ParsePolicy is LoadPolicy for the file's content.
func ParsePolicy(data []byte) (*Policy, error) {
	p := DefaultPolicy()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	return p, p.validate()
}

func (p *Policy) validate() error {
	var errs []error
	for _, s := range p.Ports {
		if _, _, err := parsePort(s); err != nil {
			errs = append(errs, fmt.Errorf("ports: %w", err))
		}
	}
	for _, d := range p.BaseDigests {
		if alg, hex, ok := strings.Cut(d, ":"); !ok || alg != "sha256" || len(hex) != 64 {
			errs = append(errs, fmt.Errorf("baseDigests: %q is not a sha256:<64 hex> digest", d))
		}
	}
	for _, f := range p.AllowSetuid {
		if !strings.HasPrefix(f, "/") {
			errs = append(errs, fmt.Errorf("allowSetuid: %q is not an absolute path", f))
		}
	}
	return errors.Join(errs...)
}

// parsePort reads "9443" or "9443/tcp" (or "/udp", "/sctp").
func parsePort(s string) (int, string, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return 0, "", fmt.Errorf("%q is not a port (1-65535, optionally /tcp, /udp or /sctp)", s)
	}
	switch proto = strings.ToLower(proto); proto {
	case "tcp", "udp", "sctp":
	default:
		return 0, "", fmt.Errorf("%q: unknown protocol %q", s, proto)
	}
	return n, proto, nil
}
