package sign

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/wso2img/wso2img/internal/version"
	"github.com/wso2img/wso2img/profiles"
)

// Predicate types of the attestations wso2img attaches, as `cosign verify-attestation
// --type` names them (slsaprovenance1, spdxjson).
const (
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	PredicateSPDX           = "https://spdx.dev/Document"
)

// BuildType identifies how wso2img builds, in the SLSA provenance: a profile's inputs
// added as one layer, owned by the product user, onto the pinned base.
const BuildType = "https://github.com/wso2img/wso2img/buildtypes/profile/v1"

// DefaultBuilderID is the provenance's builder when the caller names none.
const DefaultBuilderID = "https://github.com/wso2img/wso2img"

// Annotation keys of the signature payload ("optional" in cosign's simple signing), so
// that `cosign verify -a io.wso2img.product=wso2is` can select on them. They are the
// names of the image labels that say the same.
const (
	AnnotationProduct       = profiles.LabelProduct
	AnnotationVersion       = profiles.LabelProductVer
	AnnotationWUM           = profiles.LabelWUM
	AnnotationLevel         = profiles.LabelLevel
	AnnotationProfile       = profiles.LabelProfile
	AnnotationProfileDigest = profiles.LabelProfileDigest
	AnnotationBaseName      = profiles.LabelBaseName
	AnnotationBaseDigest    = profiles.LabelBaseDigest
	AnnotationSource        = profiles.LabelSource
	AnnotationRevision      = profiles.LabelRevision
)

// Subject describes a built image for its signature annotations and attestations. The
// caller fills it from the build plan.
type Subject struct {
	// Profile is the profile's name; ProfileFile where it was read from; ProfileDigest
	// its "sha256:…" digest.
	Profile, ProfileFile, ProfileDigest string
	// Product and Version: "wso2is", "5.8.0".
	Product, Version string
	// WUM is the WUM timestamp (ms), or Level the U2 update level: one of the two.
	WUM   int64
	Level int
	// Tags the image is published under.
	Tags []string
	// BaseRef is the base as the profile names it; BaseDigest the digest it was pinned to.
	BaseRef, BaseDigest string
	// Platforms built ("linux/amd64").
	Platforms []string
	// User is the owner of the added files and the image's USER, "802:802".
	User string
	// Inputs are the verified inputs in the profile's order.
	Inputs []SubjectInput
	// BuiltAt is when the build started, FinishedAt when it ended (zero: BuiltAt).
	BuiltAt, FinishedAt time.Time
	// Source and Revision locate the profile in git, when it lives in a repository.
	Source, Revision string
	// BuilderID names the builder (default DefaultBuilderID); in CI, the workflow.
	BuilderID string
	// InvocationID names this run, e.g. the CI run's URL.
	InvocationID string
}

// SubjectInput is one verified input.
type SubjectInput struct {
	// Source is the input's https URL, or its local path as the profile gives it.
	Source string
	// Digest is "sha256:<hex>" (or "sha512:<hex>") of a file; for a directory, of its
	// canonical tree listing.
	Digest string
	// Dir says whether the input is a directory.
	Dir bool
	// Dest is where it lands in the image (absolute).
	Dest string
	// Signer is the fingerprint of the GPG key that signed it, if it has a signature.
	Signer string
	// Files are the regular files it adds, with their paths in the image.
	Files []SubjectFile
}

// SubjectFile is one file the added layer holds.
type SubjectFile struct {
	// Path is the file's absolute path in the image.
	Path string
	// SHA256 is the hex sha256 of its content.
	SHA256 string
	Size   int64
}

// Annotations are the signature annotations: product, version, update, profile, base
// and source revision; empty values are left out.
func (s *Subject) Annotations() map[string]string {
	a := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(AnnotationProduct, s.Product)
	set(AnnotationVersion, s.Version)
	if s.WUM != 0 {
		set(AnnotationWUM, strconv.FormatInt(s.WUM, 10))
	}
	if s.Level != 0 {
		set(AnnotationLevel, strconv.Itoa(s.Level))
	}
	set(AnnotationProfile, s.Profile)
	set(AnnotationProfileDigest, s.ProfileDigest)
	set(AnnotationBaseName, s.BaseRef)
	set(AnnotationBaseDigest, s.BaseDigest)
	set(AnnotationSource, s.Source)
	set(AnnotationRevision, s.Revision)
	return a
}

func (s *Subject) validate() error {
	var errs []error
	if s.Profile == "" {
		errs = append(errs, errors.New("no profile name"))
	}
	if s.BaseRef == "" || s.BaseDigest == "" {
		errs = append(errs, errors.New("no base reference and digest"))
	}
	if s.BuiltAt.IsZero() {
		errs = append(errs, errors.New("no build time"))
	}
	for i, in := range s.Inputs {
		if in.Source == "" || in.Digest == "" {
			errs = append(errs, fmt.Errorf("input %d: no source or digest", i))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("subject of profile %q: %w", s.Profile, errors.Join(errs...))
	}
	return nil
}

// resourceDescriptor is an in-toto ResourceDescriptor.
type resourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// slsaProvenance is the SLSA v1 provenance predicate.
type slsaProvenance struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		InternalParameters   map[string]any       `json:"internalParameters,omitempty"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string     `json:"invocationId,omitempty"`
			StartedOn    *time.Time `json:"startedOn,omitempty"`
			FinishedOn   *time.Time `json:"finishedOn,omitempty"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

// Provenance is the SLSA v1 provenance predicate (PredicateSLSAProvenance) of the
// build: the builder, the profile and its digest, the update, the base reference and
// digest, and every input's URL or path and digest, with the build time.
func (s *Subject) Provenance() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	var p slsaProvenance
	bd := &p.BuildDefinition
	bd.BuildType = BuildType
	ext := map[string]any{
		"profile":   s.Profile,
		"product":   s.Product,
		"version":   s.Version,
		"base":      s.BaseRef,
		"platforms": s.Platforms,
	}
	if s.ProfileFile != "" {
		ext["profileFile"] = s.ProfileFile
	}
	if s.WUM != 0 {
		ext["update"] = map[string]any{"wum": s.WUM}
	} else if s.Level != 0 {
		ext["update"] = map[string]any{"level": s.Level}
	}
	if len(s.Tags) > 0 {
		ext["tags"] = s.Tags
	}
	if s.Source != "" {
		ext["source"] = s.Source
	}
	if s.Revision != "" {
		ext["revision"] = s.Revision
	}
	bd.ExternalParameters = ext
	if s.User != "" {
		bd.InternalParameters = map[string]any{"user": s.User}
	}

	if s.ProfileDigest != "" {
		uri := s.ProfileFile
		if s.Source != "" && s.Revision != "" {
			uri = "git+" + s.Source + "@" + s.Revision
		}
		bd.ResolvedDependencies = append(bd.ResolvedDependencies, resourceDescriptor{
			Name: "profile", URI: uri, Digest: digestSet(s.ProfileDigest),
		})
	}
	base := resourceDescriptor{Name: "base", URI: ociPURL(s.BaseRef, s.BaseDigest), Digest: digestSet(s.BaseDigest)}
	base.Annotations = map[string]any{"reference": s.BaseRef}
	bd.ResolvedDependencies = append(bd.ResolvedDependencies, base)
	for i, in := range s.Inputs {
		rd := resourceDescriptor{
			Name:        fmt.Sprintf("inputs[%d]", i),
			URI:         inputURI(in.Source),
			Digest:      digestSet(in.Digest),
			Annotations: map[string]any{"dest": in.Dest},
		}
		if in.Dir {
			// The digest of a directory is of its canonical listing (path, type, mode,
			// size and sha256 of every entry), not of an archive.
			rd.Annotations["directory"] = true
			rd.Annotations["files"] = len(in.Files)
		}
		if in.Signer != "" {
			rd.Annotations["gpgSigner"] = in.Signer
		}
		bd.ResolvedDependencies = append(bd.ResolvedDependencies, rd)
	}

	rd := &p.RunDetails
	rd.Builder.ID = s.BuilderID
	if rd.Builder.ID == "" {
		rd.Builder.ID = DefaultBuilderID
	}
	rd.Builder.Version = map[string]string{"wso2img": version.String()}
	rd.Metadata.InvocationID = s.InvocationID
	start := s.BuiltAt.UTC()
	end := s.FinishedAt.UTC()
	if s.FinishedAt.IsZero() {
		end = start
	}
	rd.Metadata.StartedOn, rd.Metadata.FinishedOn = &start, &end
	return marshal(p)
}

// SPDX 2.3 JSON, the subset wso2img writes.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files,omitempty"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
	Comment  string   `json:"comment,omitempty"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	SourceInfo            string            `json:"sourceInfo,omitempty"`
	LicenseConcluded      string            `json:"licenseConcluded"`
	LicenseDeclared       string            `json:"licenseDeclared"`
	CopyrightText         string            `json:"copyrightText"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Comment               string            `json:"comment,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxFile struct {
	SPDXID           string         `json:"SPDXID"`
	FileName         string         `json:"fileName"`
	Checksums        []spdxChecksum `json:"checksums"`
	LicenseConcluded string         `json:"licenseConcluded"`
	CopyrightText    string         `json:"copyrightText"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// SBOM is an SPDX 2.3 JSON document (PredicateSPDX) of what the added layer holds:
// the image as a package that descends from the base image (a referenced package,
// with its digest) and contains one package per input (its URL or path and digest),
// each containing its files with their paths in the image, sha256 and size.
func (s *Subject) SBOM() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        s.Profile,
		CreationInfo: spdxCreationInfo{
			Created:  s.BuiltAt.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: wso2img-" + version.String()},
			Comment:  "The files the wso2img profile " + s.Profile + " adds to " + s.BaseRef + " as one layer.",
		},
		DocumentDescribes: []string{"SPDXRef-Image"},
	}
	image := spdxPackage{
		SPDXID:                "SPDXRef-Image",
		Name:                  s.Profile,
		VersionInfo:           firstNonEmpty(firstOf(s.Tags), s.Version),
		DownloadLocation:      noAssertion,
		PrimaryPackagePurpose: "CONTAINER",
		Comment:               fmt.Sprintf("%s %s built by wso2img from profile %s", s.Product, s.Version, s.Profile),
	}
	base := spdxPackage{
		SPDXID:                "SPDXRef-BaseImage",
		Name:                  s.BaseRef,
		VersionInfo:           s.BaseDigest,
		DownloadLocation:      noAssertion,
		PrimaryPackagePurpose: "CONTAINER",
		Comment:               "The base image, referenced by digest; its contents are not listed here.",
		ExternalRefs: []spdxExternalRef{{
			ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: ociPURL(s.BaseRef, s.BaseDigest),
		}},
	}
	if c, ok := spdxSum(s.BaseDigest); ok {
		base.Checksums = []spdxChecksum{c}
	}
	doc.Packages = append(doc.Packages, image, base)
	doc.Relationships = append(doc.Relationships,
		spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"},
		spdxRelationship{"SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-BaseImage"},
	)
	for i, in := range s.Inputs {
		id := fmt.Sprintf("SPDXRef-Input-%d", i)
		pkg := spdxPackage{
			SPDXID:           id,
			Name:             inputName(in.Source),
			DownloadLocation: noAssertion,
			SourceInfo:       fmt.Sprintf("inputs[%d] of profile %s, added at %s", i, s.Profile, in.Dest),
		}
		if isURL(in.Source) {
			pkg.DownloadLocation = in.Source
		} else {
			pkg.SourceInfo += ", from the local path " + in.Source
		}
		if in.Dir {
			pkg.Comment = "Directory; its digest " + in.Digest + " is of its canonical listing (wso2img)."
		} else if c, ok := spdxSum(in.Digest); ok {
			pkg.Checksums = []spdxChecksum{c}
		}
		if in.Signer != "" {
			pkg.Comment = strings.TrimSpace(pkg.Comment + " GPG signature verified against key " + in.Signer + ".")
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Image", "CONTAINS", id})
		// Sorted by path, so that the SBOM does not depend on the order of the caller's list.
		files := slices.Clone(in.Files)
		slices.SortFunc(files, func(a, b SubjectFile) int { return strings.Compare(a.Path, b.Path) })
		for j, f := range files {
			fid := fmt.Sprintf("SPDXRef-File-%d-%d", i, j)
			doc.Files = append(doc.Files, spdxFile{
				SPDXID:           fid,
				FileName:         "." + path.Clean("/"+f.Path),
				Checksums:        []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: f.SHA256}},
				LicenseConcluded: noAssertion,
				CopyrightText:    noAssertion,
				Comment:          fmt.Sprintf("%d bytes, from %s", f.Size, in.Source),
			})
			doc.Relationships = append(doc.Relationships, spdxRelationship{id, "CONTAINS", fid})
		}
	}
	for i := range doc.Packages {
		doc.Packages[i].LicenseConcluded = noAssertion
		doc.Packages[i].LicenseDeclared = noAssertion
		doc.Packages[i].CopyrightText = noAssertion
	}
	// The namespace must be unique per document: it is named after what it describes.
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	doc.DocumentNamespace = "https://github.com/wso2img/wso2img/spdx/" + url.PathEscape(s.Profile) + "-" + hex.EncodeToString(sum[:8])
	return marshal(doc)
}

// marshal is json.Marshal without escaping &, < and > (purls hold &).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// digestSet turns "alg:hex" into an in-toto DigestSet.
func digestSet(d string) map[string]string {
	alg, h, ok := strings.Cut(d, ":")
	if !ok {
		return nil
	}
	return map[string]string{alg: h}
}

// spdxSum turns "sha256:hex" into an SPDX checksum.
func spdxSum(d string) (spdxChecksum, bool) {
	alg, h, ok := strings.Cut(d, ":")
	switch {
	case !ok:
		return spdxChecksum{}, false
	case alg == "sha256", alg == "sha512", alg == "sha1":
		return spdxChecksum{Algorithm: strings.ToUpper(alg), ChecksumValue: h}, true
	}
	return spdxChecksum{}, false
}

// ociPURL is the package URL of an image by digest:
// pkg:oci/wso2is@sha256%3A…?repository_url=docker.wso2.com/wso2is&tag=5.8.0.
func ociPURL(ref, digest string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	repo := r.Context()
	q := url.Values{}
	q.Set("repository_url", repo.Name())
	if t, ok := r.(name.Tag); ok {
		q.Set("tag", t.TagStr())
	}
	return "pkg:oci/" + strings.ToLower(path.Base(repo.RepositoryStr())) + "@" + strings.ReplaceAll(digest, ":", "%3A") + "?" +
		strings.ReplaceAll(q.Encode(), "%2F", "/")
}

func isURL(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") }

// inputURI is an input's URL, or a file: URI of its local path.
func inputURI(src string) string {
	if isURL(src) {
		return src
	}
	return "file:" + filepathToSlash(src)
}

func filepathToSlash(p string) string { return strings.ReplaceAll(p, "\\", "/") }

// inputName is the file name an input is known by.
func inputName(src string) string {
	if u, err := url.Parse(src); err == nil && isURL(src) {
		return path.Base(u.Path)
	}
	return path.Base(filepathToSlash(src))
}

func firstOf(s []string) string {
	if len(s) > 0 {
		return s[0]
	}
	return ""
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
