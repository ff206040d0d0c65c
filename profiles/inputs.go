package profiles

import (
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Auth names the environment variable that holds the credentials of an input's URL:
// never the credentials themselves, which a profile (shared, and recorded in labels,
// logs and the SBOM) must not hold.
//
//	auth: {env: MAVEN_TOKEN}                 # Authorization: Bearer $MAVEN_TOKEN
//	auth: {env: NEXUS_AUTH, scheme: basic}   # NEXUS_AUTH holds user:password
//
// The credentials go to the URL's host only, over https only: a redirect to another
// host (another port included) drops them, and they never appear in output.
type Auth struct {
	// Env is the variable's name; it must be set and not empty when the profile is built.
	Env string `yaml:"env" json:"env"`
	// Scheme is "bearer" (the default: Env holds a token) or "basic" (Env holds
	// user:password).
	Scheme string `yaml:"scheme" json:"scheme,omitempty"`
}

// EnvRef names an environment variable that holds a secret.
type EnvRef struct {
	Env string `yaml:"env" json:"env"`
}

// TrustStore is a Java trust store that wso2img writes from certificates, so an image
// trusts a company's CAs without running keytool in a build step:
//
//	inputs:
//	  - truststore:
//	      certificates:
//	        - path: certs/acme-root.pem
//	        - url: https://pki.acme.example/issuing-ca.crt
//	          sha256: "…"
//	          alias: acme-issuing
//	      format: PKCS12                          # default: the product's own
//	      password: {env: TRUSTSTORE_PASSWORD}    # default: wso2carbon
//	    dest: repository/resources/security/      # the default
//
// The store replaces the product's stock one at dest, so it must also hold the CA of
// the server's own TLS certificate (the stock store's wso2carbon entry) and any public
// CA the server calls. deployment.toml must name it: for Identity Server and API
// Manager (file_name relative to repository/resources/security)
//
//	[truststore]
//	file_name = "client-truststore.p12"
//	type = "PKCS12"
//	password = "$env{TRUSTSTORE_PASSWORD}"
//
// and for Micro Integrator file_name is relative to the product home
// ("repository/resources/security/client-truststore.jks").
type TrustStore struct {
	// Certificates are the PEM (a bundle may hold several) or DER files to trust, each
	// fetched and verified like an input: a url with its sha256 or sha512, or a local
	// path, with an optional signature.
	Certificates []Certificate `yaml:"certificates" json:"certificates"`
	// Format is JKS or PKCS12 (either case). Default: what the product ships (PKCS12 for
	// Identity Server 7.1 and later, JKS otherwise).
	Format string `yaml:"format" json:"format,omitempty"`
	// Password names the variable holding the store's password; default WSO2's public
	// "wso2carbon". Its value never appears in labels, logs or attestations.
	Password *EnvRef `yaml:"password" json:"password,omitempty"`
	// AllowExpired accepts certificates that are not valid at the update's time.
	AllowExpired bool `yaml:"allowExpired" json:"allowExpired,omitempty"`
	// AllowNonCA accepts certificates that are not CAs (a server's own, pinned).
	AllowNonCA bool `yaml:"allowNonCA" json:"allowNonCA,omitempty"`
}

// Certificate is one certificate file of a trust store.
type Certificate struct {
	URL       string `yaml:"url" json:"url,omitempty"`
	Path      string `yaml:"path" json:"path,omitempty"`
	SHA256    string `yaml:"sha256" json:"sha256,omitempty"`
	SHA512    string `yaml:"sha512" json:"sha512,omitempty"`
	Signature string `yaml:"signature" json:"signature,omitempty"`
	Auth      *Auth  `yaml:"auth" json:"auth,omitempty"`
	// Alias names the entry (lower case); default derived from the certificate's
	// subject. Only for a file that holds one certificate.
	Alias string `yaml:"alias" json:"alias,omitempty"`

	// Root is the folder of the profile file that declared it.
	Root string `yaml:"-" json:"-"`
}

// DefaultTrustStoreDir is where a trust store input goes when its dest is not set.
const DefaultTrustStoreDir = "repository/resources/security/"

// ByteSize is a size in bytes, written as a number or with a unit (B, kB, MB, GB, TB,
// KiB, MiB, GiB, TiB).
type ByteSize int64

var byteSizeRE = regexp.MustCompile(`^([0-9]+)\s*([a-zA-Z]*)$`)

var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseByteSize reads "2GiB", "500 MB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: a number of bytes, or with a unit such as 500MiB or 2GiB", s)
	}
	unit, ok := byteUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return ByteSize(n * unit), nil
}

func (b *ByteSize) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!str") {
		d.fail(n, path, "expected a size such as 500MiB or 2GiB, found %s", describe(n))
		return
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	*b = v
}

// secretParams are query parameter names (compared in lower case) that carry
// credentials: API tokens, passwords, and the signatures and credentials of
// pre-signed S3, GCS and Azure URLs.
var secretParams = map[string]bool{
	"token": true, "access_token": true, "id_token": true, "refresh_token": true, "auth": true,
	"auth_token": true, "private_token": true, "jwt": true, "api_key": true, "apikey": true,
	"api-key": true, "key": true, "access_key": true, "accesskey": true, "password": true,
	"passwd": true, "pwd": true, "pass": true, "secret": true, "client_secret": true,
	"sig": true, "signature": true, "credential": true, "credentials": true,
	"x-amz-signature": true, "x-amz-credential": true, "x-amz-security-token": true,
	"x-goog-signature": true, "x-goog-credential": true, "awsaccesskeyid": true,
}

// secretParamWords are parts of a parameter name that make it a credential wherever
// they appear ("upload_token", "X-Custom-Signature").
var secretParamWords = []string{"token", "secret", "password", "passwd", "signature", "credential", "apikey", "api_key", "api-key"}

// URLCredential says what in the URL raw looks like a credential — "a user name and
// password before the host" or `the query parameter "token"` — or "" when nothing does.
// It never repeats the credential. It reads raw as text, so that a URL that does not
// parse is judged too.
func URLCredential(raw string) string {
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	} else if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
	}
	if i := strings.IndexAny(rest, "#"); i >= 0 {
		rest = rest[:i]
	}
	authority := rest
	if i := strings.IndexAny(authority, "/?"); i >= 0 {
		authority = authority[:i]
	}
	if strings.Contains(authority, "@") {
		return "a user name or password before the host"
	}
	i := strings.Index(rest, "?")
	if i < 0 {
		return ""
	}
	for _, kv := range strings.FieldsFunc(rest[i+1:], func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(name); err == nil {
			name = u
		}
		lower := strings.ToLower(name)
		secret := secretParams[lower]
		for _, w := range secretParamWords {
			secret = secret || strings.Contains(lower, w)
		}
		if secret {
			return fmt.Sprintf("the query parameter %q", name)
		}
	}
	return ""
}

// dirLike reports whether the input fills a directory at dest: a local directory, or
// an archive it extracts.
func (in Input) dirLike() bool { return in.isDir || in.Extract }

// TrustStoreDest is where trust store input i goes when its file is called name (the
// format's file name, client-truststore.jks or .p12): the build calls it once the
// format is known.
func (p *Profile) TrustStoreDest(i int, name string) string { return p.destPath(i, name) }

// destPath is DestPath with the name a file keeps under a dest ending in "/".
func (p *Profile) destPath(i int, name string) string {
	in := p.Inputs[i]
	dest := in.Dest
	if in.TrustStore != nil && dest == "" {
		dest = DefaultTrustStoreDir
	}
	if !in.dirLike() && (strings.HasSuffix(dest, "/") || dest == ".") {
		dest = path.Join(dest, name)
	}
	if !path.IsAbs(dest) && p.Home != "" {
		dest = path.Join(p.Home, dest)
	}
	return path.Clean(dest)
}

// trustStoreName is the file name of a trust store of the given format, or "" while the
// format is the product's default, which the build decides.
func trustStoreName(format string) string {
	switch strings.ToUpper(format) {
	case "JKS":
		return "client-truststore.jks"
	case "PKCS12":
		return "client-truststore.p12"
	}
	return ""
}

// remoteURL checks the URL of an input or a certificate: a host, and no credentials. A
// URL that carries a credential is named by its field alone, never repeated. (A scheme
// other than https is refused when the input is verified, as a verification failure.)
func (v *validator) remoteURL(field, raw string) {
	if v.credential(field, raw) {
		return
	}
	if u, err := url.Parse(raw); err != nil || u.Host == "" || u.Scheme == "" {
		v.add(field, "%q is not a URL", raw)
	}
}

// credential refuses a URL that carries a credential, and says whether it did.
func (v *validator) credential(field, raw string) bool {
	what := URLCredential(raw)
	if what != "" {
		v.add(field, "carries a credential (%s): a profile is shared, and its URLs are recorded in labels, logs and the SBOM; remove it, and give the input auth: {env: VARIABLE} or a netrc entry for the host", what)
	}
	return what != ""
}

// signature checks a signature's location, when it is a URL (a path is resolved against
// the profile's folder).
func (v *validator) signature(field, sig string) {
	if isURL(sig) {
		v.credential(field, sig)
	}
}

func (v *validator) auth(field string, a *Auth, hasURL bool) {
	if a == nil {
		return
	}
	if !hasURL {
		v.add(field, "credentials are for a url; a local path needs none")
		return
	}
	switch {
	case a.Env == "":
		v.add(field+".env", "required: the environment variable that holds the credentials")
	case !envKeyRE.MatchString(a.Env):
		v.add(field+".env", "%q is not an environment variable name", a.Env)
	}
	if a.Scheme != "" && a.Scheme != "bearer" && a.Scheme != "basic" {
		v.add(field+".scheme", "%q is not a scheme: bearer (the variable holds a token) or basic (it holds user:password)", a.Scheme)
	}
}

// trustStore checks a truststore input: certificates, format and password; the input
// itself may add only dest and mode.
func (v *validator) trustStore(f string, in Input) {
	ts := in.TrustStore
	for _, c := range []struct {
		field string
		set   bool
	}{{"sha256", in.SHA256 != ""}, {"sha512", in.SHA512 != ""}, {"signature", in.Signature != ""}, {"auth", in.Auth != nil}, {"extract", in.Extract}, {"maxSize", in.MaxSize != 0}} {
		if c.set {
			v.add(f+"."+c.field, "does not apply to a trust store: set it on each of truststore.certificates")
		}
	}
	if len(ts.Certificates) == 0 {
		v.add(f+".truststore.certificates", "required: the PEM or DER files of the CAs to trust")
	}
	if ts.Format != "" && trustStoreName(ts.Format) == "" {
		v.add(f+".truststore.format", "%q is not a trust store format: JKS or PKCS12", ts.Format)
	}
	if ts.Password != nil {
		switch {
		case ts.Password.Env == "":
			v.add(f+".truststore.password.env", "required: the environment variable that holds the password (omit password for WSO2's default, wso2carbon)")
		case !envKeyRE.MatchString(ts.Password.Env):
			v.add(f+".truststore.password.env", "%q is not an environment variable name", ts.Password.Env)
		}
	}
	for j, c := range ts.Certificates {
		cf := fmt.Sprintf("%s.truststore.certificates[%d]", f, j)
		switch {
		case c.URL == "" && c.Path == "":
			v.add(cf, "needs a url or a path")
			continue
		case c.URL != "" && c.Path != "":
			v.add(cf, "has both url and path: one certificate file is one source")
			continue
		}
		if c.URL != "" {
			v.remoteURL(cf+".url", c.URL)
			if c.SHA256 == "" && c.SHA512 == "" {
				v.add(cf+".sha256", "a url needs a sha256 (or sha512) checksum: wso2img never trusts a download it cannot verify")
			}
		}
		v.checksum(cf+".sha256", c.SHA256, 64)
		v.checksum(cf+".sha512", c.SHA512, 128)
		v.signature(cf+".signature", c.Signature)
		v.auth(cf+".auth", c.Auth, c.URL != "")
		if c.Alias != "" && (strings.TrimSpace(c.Alias) != c.Alias || strings.ContainsAny(c.Alias, "\n\r\t")) {
			v.add(cf+".alias", "%q is not an alias: no surrounding spaces or control characters", c.Alias)
		}
	}
}
