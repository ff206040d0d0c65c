// Package profiles owns the profile: the YAML recipe for one extended WSO2 image. It loads
// profiles strictly (unknown keys, wrong types and unsafe values are errors that name the
// file, the field path and what is wrong), resolves `extends`, holds the stock profiles of
// real WSO2 products, and turns a profile into the tags it publishes.
//
// It does no I/O beyond reading profile files: no network, no registry, no BuildKit.
package profiles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/tags"
)

// Profile is one extended image. Fields are documented for users in the README.
type Profile struct {
	// Extends names a stock profile or a profile file (relative to this one) whose fields
	// this profile starts from.
	Extends   string            `yaml:"extends" json:"extends,omitempty"`
	Name      string            `yaml:"name" json:"name"`
	Product   string            `yaml:"product" json:"product"`
	Version   string            `yaml:"version" json:"version"`
	OS        string            `yaml:"os" json:"os,omitempty"`
	OSVersion string            `yaml:"osVersion" json:"osVersion,omitempty"`
	Update    Update            `yaml:"update" json:"update"`
	Release   int               `yaml:"release" json:"release,omitempty"`
	Base      Base              `yaml:"base" json:"base"`
	Target    Target            `yaml:"target" json:"target"`
	User      User              `yaml:"user" json:"user"`
	Home      string            `yaml:"home" json:"home,omitempty"`
	Inputs    []Input           `yaml:"inputs" json:"inputs,omitempty"`
	GPG       GPG               `yaml:"gpg" json:"gpg,omitempty"`
	Ports     []int             `yaml:"ports" json:"ports,omitempty"`
	Env       map[string]string `yaml:"env" json:"env,omitempty"`
	Labels    map[string]string `yaml:"labels" json:"labels,omitempty"`
	Platforms []string          `yaml:"platforms" json:"platforms,omitempty"`
	// Scan is the vulnerability gate's policy for this image: how it is judged, not what
	// it is made of, so it is left out of the profile's digest.
	Scan Scan `yaml:"scan" json:"-"`
	// BaseCache says where the base is kept in the target registry when it lives in
	// another one. Where images are cached is not what they are made of, so it is left
	// out of the profile's digest.
	BaseCache BaseCache `yaml:"baseCache" json:"-"`

	// File is where the profile was read from ("stock:NAME" for a stock profile).
	File string `yaml:"-" json:"-"`
	// Dir is the folder that relative paths resolve against ("" for stock profiles).
	Dir string `yaml:"-" json:"-"`
	// pos remembers where each field was written, for validation messages.
	pos map[string]Problem
	// inherited names the profile this one extends, for messages about fields it did not write.
	inherited string
}

// Update names the WSO2 update the image is built on: one of the two, or "latest" of
// one kind, which follows WSO2's newest update of the version and OS.
type Update struct {
	// WUM is a WUM-era update timestamp: milliseconds since the epoch, 13 digits.
	WUM int64 `yaml:"wum" json:"wum,omitempty"`
	// Level is a U2 update level (1 or more).
	Level int `yaml:"level" json:"level,omitempty"`
	// Latest is "wum" or "level" when the profile says `wum: latest` or `level: latest`.
	// Plan resolves it from the base repository's tags before anything else.
	Latest string `yaml:"-" json:"latest,omitempty"`
}

// Follows reports whether the update is "latest", not yet resolved.
func (u Update) Follows() bool { return u.Latest != "" && u.WUM == 0 && u.Level == 0 }

// decodeNode reads `wum: 1565855673150`, `level: 15`, or `wum: latest` / `level: latest`.
func (u *Update) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping such as {wum: 1565855673150} or {level: latest}, found %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		if !d.spend(k, fp) {
			return
		}
		d.pos[fp] = Problem{Line: val.Line, Column: val.Column, Field: fp}
		if seen[k.Value] {
			d.fail(k, fp, "written twice")
			continue
		}
		seen[k.Value] = true
		if k.Value != "wum" && k.Value != "level" {
			d.fail(k, fp, "unknown field %q (known: wum, level)", k.Value)
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Value == "latest" {
			if u.Latest != "" {
				d.fail(val, fp, "only one of wum and level can follow the latest update")
			}
			u.Latest = k.Value
			continue
		}
		var num int64
		d.value(val, reflect.ValueOf(&num).Elem(), fp)
		if k.Value == "wum" {
			u.WUM = num
		} else if num < -1<<31 || num > 1<<31-1 {
			d.fail(val, fp, "%d is out of range", num)
		} else {
			u.Level = int(num)
		}
	}
}

// WithUpdate is the profile built for a concrete update from "latest": the update, and
// the base tag found for it (kept as written when the profile names a tag itself).
func (p *Profile) WithUpdate(u Update, baseTag string) *Profile {
	c := *p
	c.Update = Update{WUM: u.WUM, Level: u.Level, Latest: p.Update.Latest}
	if !hasTagOrDigest(p.Base.Image) && baseTag != "" {
		c.Base.Image = p.Base.Image + ":" + baseTag
	}
	return &c
}

// Base is the official image the profile extends.
type Base struct {
	// Image is the base reference. Without a tag, the tag is the WSO2 tag of the
	// profile's version, update and OS.
	Image string `yaml:"image" json:"image"`
	// Digest pins the base: a different digest behind the tag is a verification failure.
	Digest string `yaml:"digest" json:"digest,omitempty"`
	// Mirror is a repository holding a copy of the base (see `wso2img mirror`): the base
	// is pulled from there, by the same tag and digest, while labels name Image.
	Mirror string `yaml:"mirror" json:"mirror,omitempty"`
	// Verify, when set, checks the base's cosign signature before anything is built.
	Verify *BaseVerify `yaml:"verify" json:"verify,omitempty"`
}

// BaseVerify says whose cosign signature the base must carry: a public key (WSO2 signs
// its registry images and publishes wso2-public-key.pub), or a keyless identity and issuer.
// `verify: false` turns the check off (loudly: every plan and build says so).
type BaseVerify struct {
	// Off: the profile wrote `verify: false`.
	Off bool `yaml:"-" json:"off,omitempty"`
	// Key is a public key file (relative to the profile), env://VAR, a KMS URI, or a key
	// embedded in wso2img: stock:wso2-registry, WSO2's registry image-signing key.
	Key string `yaml:"key" json:"key,omitempty"`
	// Identity / IdentityRegexp and Issuer / IssuerRegexp match a keyless certificate.
	Identity       string `yaml:"identity" json:"identity,omitempty"`
	IdentityRegexp string `yaml:"identityRegexp" json:"identityRegexp,omitempty"`
	Issuer         string `yaml:"issuer" json:"issuer,omitempty"`
	IssuerRegexp   string `yaml:"issuerRegexp" json:"issuerRegexp,omitempty"`
	// InsecureIgnoreTlog accepts a signature that is not in a transparency log (a
	// private or offline registry), like cosign's --insecure-ignore-tlog.
	InsecureIgnoreTlog bool `yaml:"insecureIgnoreTlog" json:"insecureIgnoreTlog,omitempty"`
}

// decodeNode reads `verify: {key: …}` or `verify: false`.
func (b *BaseVerify) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool" && n.Value == "false":
		b.Off = true
	case n.Kind == yaml.MappingNode:
		d.structure(n, reflect.ValueOf(b).Elem(), path)
	default:
		d.fail(n, path, "expected a mapping such as {key: stock:wso2-registry}, or false to turn the check off; found %s", describe(n))
	}
}

// Target is where the built image is pushed.
type Target struct {
	// Repository is the image repository, e.g. registry.example.com/acme/wso2is.
	Repository string `yaml:"repository" json:"repository,omitempty"`
}

// User owns everything the profile adds and is the image's final USER.
type User struct {
	UID int `yaml:"uid" json:"uid"`
	GID int `yaml:"gid" json:"gid"`
}

// Input is one thing the image adds: a file from a url, a local file or directory
// (path), or a trust store made from certificates (truststore). Exactly one of the three.
type Input struct {
	// URL of a remote file (https only); needs a sha256 or sha512. It may not carry
	// credentials (user info, or a query parameter such as token or X-Amz-Signature):
	// see Auth.
	URL string `yaml:"url" json:"url,omitempty"`
	// Path of a local file or directory, relative to the profile's folder.
	Path   string `yaml:"path" json:"path,omitempty"`
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
	SHA512 string `yaml:"sha512" json:"sha512,omitempty"`
	// Signature is the https URL, or the path relative to the profile, of a detached GPG
	// signature of the file, checked against gpg.keyring and gpg.fingerprints.
	Signature string `yaml:"signature" json:"signature,omitempty"`
	// Auth says where the credentials for URL come from (an environment variable, never
	// the profile). Without it, a netrc entry for the URL's host is used, if any.
	Auth *Auth `yaml:"auth" json:"auth,omitempty"`
	// MaxSize bounds the input's bytes: the download (a declared Content-Length above it
	// fails before anything is read) or the local file, and with extract the unpacked
	// files too. Bytes as a number, or with a unit: "500MiB", "3GiB", "100MB". Default
	// 2 GiB (--max-input-size).
	MaxSize ByteSize `yaml:"maxSize" json:"maxSize,omitempty"`
	// Extract unpacks the file (zip, jar, car, tar or tar.gz, recognised by its first
	// bytes) after its checksum and signature are verified, and adds its files to dest
	// like a directory's: dest names a directory, modes come from the archive, and
	// entries that leave dest, links out of it, devices and zip bombs are refused.
	Extract bool `yaml:"extract" json:"extract,omitempty"`
	// TrustStore makes a Java trust store (JKS or PKCS#12) from certificates and adds
	// it as one file; see TrustStore.
	TrustStore *TrustStore `yaml:"truststore" json:"truststore,omitempty"`
	// Dest is where it goes, relative to the product home (or absolute inside it); a
	// trailing slash means "into this directory, under the source's own name". A
	// directory, or a file with extract, fills dest. Optional for a trust store: default
	// repository/resources/security/client-truststore.jks (.p12 for PKCS12).
	Dest string `yaml:"dest" json:"dest"`
	// Mode is the octal permission of a file input ("0640"); default 0644, or 0755 for a
	// local file that is executable.
	Mode string `yaml:"mode" json:"mode,omitempty"`

	// Root is the folder of the profile file that declared this input: local paths and
	// their symlinks must stay inside it.
	Root string `yaml:"-" json:"-"`
	// isDir is whether a local path was a directory when the profile was loaded.
	isDir bool
}

// Scan is the vulnerability gate: which findings refuse the image.
type Scan struct {
	// Severity is the lowest severity that fails the gate: LOW, MEDIUM, HIGH (the
	// default, as in WSO2's own pipeline) or CRITICAL.
	Severity string `yaml:"severity" json:"severity,omitempty"`
	// Ignore is a Trivy ignore file (.trivyignore.yaml, relative to the profile):
	// findings it lists, until their expired_at, do not fail the gate.
	Ignore string `yaml:"ignore" json:"ignore,omitempty"`
	// Scope is "added" (the default: only findings the base does not already have fail
	// the gate — what the profile adds is what its user can fix) or "all".
	Scope string `yaml:"scope" json:"scope,omitempty"`
}

// IsZero lets encoding/json's omitempty drop an unused scan block.
func (s Scan) IsZero() bool { return s == Scan{} }

// BaseCache is where a base from another registry is copied in the target registry:
// `baseCache: registry.acme.com/cache` (a repository prefix), or `baseCache: false`.
type BaseCache struct {
	// Off: never copy; the build pulls the base's layers from the vendor.
	Off bool
	// Prefix replaces the default <target registry>/wso2img-bases.
	Prefix string
}

func (b *BaseCache) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		b.Off = n.Value == "false"
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		b.Prefix = strings.TrimSuffix(n.Value, "/")
	default:
		d.fail(n, path, "expected a repository prefix in the target registry (registry.acme.com/cache) or false, found %s", describe(n))
	}
}

// GPG names the keys that may sign inputs.
type GPG struct {
	Keyring      string   `yaml:"keyring" json:"keyring,omitempty"`
	Fingerprints []string `yaml:"fingerprints" json:"fingerprints,omitempty"`
}

// IsZero lets encoding/json's omitempty drop an unused gpg block.
func (g GPG) IsZero() bool { return g.Keyring == "" && len(g.Fingerprints) == 0 }

// DefaultPlatforms is what a profile builds when it names none. It is fixed rather than
// the host's, so that the same profile gives the same image on every machine.
var DefaultPlatforms = []string{"linux/amd64"}

// Tag is the unique WSO2 tag of the image this profile builds.
func (p *Profile) Tag() tags.Tag {
	t := tags.Tag{Version: p.Version, Release: p.Release, OS: p.OS, OSVersion: p.OSVersion}
	switch {
	case p.Update.WUM != 0:
		t.Kind, t.WUM = tags.WUM, p.Update.WUM
	case p.Update.Level != 0:
		t.Kind, t.Level = tags.Level, p.Update.Level
	}
	return t
}

// Tags lists the tags the image is published under, unique first; nil while the
// update follows "latest" (see WithUpdate).
func (p *Profile) Tags() []tags.Published {
	if p.Update.Follows() {
		return nil
	}
	pub, err := tags.Publish(p.Tag())
	if err != nil {
		// Load validated the tag; reaching this is a bug in Load.
		panic("profiles: publishing a validated profile: " + err.Error())
	}
	return pub
}

// BaseTag is the WSO2 tag of the base image for this profile's update: the image's own
// tag without our release.
func (p *Profile) BaseTag() tags.Tag {
	t := p.Tag()
	t.Release = 0
	return t
}

// BaseRef is the base image reference, with the tag filled in when the profile gave only
// a repository.
func (p *Profile) BaseRef() string {
	if hasTagOrDigest(p.Base.Image) {
		return p.Base.Image
	}
	return p.Base.Image + ":" + p.BaseTag().String()
}

// hasTagOrDigest reports whether a reference names more than a repository.
func hasTagOrDigest(ref string) bool {
	repo, _ := SplitTag(ref)
	return repo != ref
}

// SplitTag splits "repo:tag" into repo and tag, and "repo@digest" into repo and "". A
// colon only counts after the last slash, because "host:5000/repo" has a port, not a tag.
func SplitTag(ref string) (repo, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i], ""
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// InMirror is ref (a base reference, by tag or digest) in the profile's base.mirror.
func (p *Profile) InMirror(ref string) string {
	repo, _ := SplitTag(ref)
	return p.Base.Mirror + strings.TrimPrefix(ref, repo)
}

// Repository is the target repository, with the name's last element kept under a
// registry prefix when one is given (--registry).
func (p *Profile) Repository(registryPrefix string) string {
	repo := p.Target.Repository
	if registryPrefix == "" {
		return repo
	}
	last := p.Product
	if repo != "" {
		last = path.Base(repo)
	}
	return strings.TrimSuffix(registryPrefix, "/") + "/" + last
}

// BuildPlatforms is what the profile builds: its platforms, or DefaultPlatforms.
func (p *Profile) BuildPlatforms() []string {
	if len(p.Platforms) == 0 {
		return DefaultPlatforms
	}
	return p.Platforms
}

// Digest identifies the profile's content: the sha256 of its canonical JSON after
// `extends` is resolved. Two files that say the same thing have the same digest.
func (p *Profile) Digest() string {
	b, err := json.Marshal(p)
	if err != nil {
		panic("profiles: marshalling a profile: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
