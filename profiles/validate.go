package profiles

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/wso2img/wso2img/tags"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	productRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	osRE      = regexp.MustCompile(`^[a-z]+$`)
	osVerRE   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
	digestRE  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	hexRE     = regexp.MustCompile(`^[a-f0-9]+$`)
	envKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	fprRE     = regexp.MustCompile(`^([A-F0-9]{40}|[A-F0-9]{64})$`)
)

// validator collects problems, locating each at the field it concerns.
type validator struct {
	p     *Profile
	probs []Problem
}

func (v *validator) add(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	prob, written := v.p.pos[field]
	// Point at the nearest enclosing field that was written ("inputs[2]" for a missing
	// "inputs[2].sha256").
	for f := field; !written && f != ""; {
		f = parentPath(f)
		prob, written = v.p.pos[f]
	}
	if !written && v.p.inherited != "" && inheritable(field) {
		msg += fmt.Sprintf(" (inherited from %s)", v.p.inherited)
	}
	prob.Field, prob.Message = field, msg
	v.probs = append(v.probs, prob)
}

// inheritable reports whether a field can come from the extended profile, for messages.
func inheritable(field string) bool {
	return !strings.HasPrefix(field, "name") && !strings.HasPrefix(field, "extends")
}

func parentPath(f string) string {
	if i := strings.LastIndexAny(f, ".["); i > 0 {
		return f[:i]
	}
	return ""
}

func validate(p *Profile) []Problem {
	v := &validator{p: p}
	v.identity()
	v.update()
	v.base()
	v.target()
	v.user()
	v.inputs()
	v.gpg()
	v.ports()
	v.envAndLabels()
	v.platforms()
	v.scan()
	v.tag()
	sort.SliceStable(v.probs, func(i, j int) bool {
		a, b := v.probs[i], v.probs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return v.probs
}

func (v *validator) identity() {
	p := v.p
	if !nameRE.MatchString(p.Name) {
		v.add("name", "%q is not a profile name: lowercase letters, digits, '.', '_' and '-', at most 64", p.Name)
	}
	switch {
	case p.Product == "":
		v.add("product", "required: the WSO2 product, e.g. wso2is, wso2am, wso2mi")
	case !productRE.MatchString(p.Product):
		v.add("product", "%q is not a product name: lowercase letters, digits and '-'", p.Product)
	}
	if p.Version == "" {
		v.add("version", "required: the product version, e.g. 7.1.0")
	} else if t, err := tags.Parse(p.Version); err != nil || t.Kind != tags.None || t.OS != "" {
		v.add("version", "%q is not a product version: expected three dotted numbers such as 5.8.0", p.Version)
	}
	if p.OS != "" && !osRE.MatchString(p.OS) {
		v.add("os", "%q is not an OS name: lowercase letters, e.g. alpine (ubuntu carries no tag suffix)", p.OS)
	}
	if p.OSVersion != "" {
		switch {
		case p.OS == "":
			v.add("osVersion", "set without os")
		case p.OS == "ubuntu":
			v.add("osVersion", "ubuntu images carry no OS suffix, so an OS version cannot appear in the tag")
		case !osVerRE.MatchString(p.OSVersion):
			v.add("osVersion", "%q is not an OS version: dotted numbers such as \"3.10\" (quote it in YAML)", p.OSVersion)
		}
	}
	if p.Release < 0 {
		v.add("release", "%d is negative", p.Release)
	}
}

func (v *validator) update() {
	u := v.p.Update
	switch {
	case u.Latest != "" && (u.WUM != 0 || u.Level != 0):
		v.add("update", "set either wum or level, not both: one of them follows the latest update")
		return
	case u.Follows():
		return
	case u.WUM != 0 && u.Level != 0:
		v.add("update", "set either wum (a WUM timestamp) or level (a U2 update level), not both")
		return
	case u.WUM == 0 && u.Level == 0:
		if _, written := v.p.pos["update.level"]; written {
			v.add("update.level", "0 is WSO2's floating \"latest level\" tag, not an update: use the level from the pack's updates/config.json")
		} else {
			v.add("update", "required: wum (13-digit WUM timestamp) or level (U2 update level)")
		}
		return
	case u.WUM != 0 && len(strconv.FormatInt(u.WUM, 10)) != 13:
		v.add("update.wum", "%d is not a WUM timestamp: expected 13 digits (milliseconds since 1970), found %d", u.WUM, len(strconv.FormatInt(u.WUM, 10)))
		return
	case u.WUM < 0:
		v.add("update.wum", "%d is negative", u.WUM)
		return
	case u.Level < 0 || u.Level > 9999:
		v.add("update.level", "%d is not a U2 update level: expected 1 to 9999", u.Level)
		return
	}
}

// tag checks that the fields that make up the image's tag form one; it runs last, when
// each of them is known to be fine on its own, so it only reports how they combine.
func (v *validator) tag() {
	if len(v.probs) > 0 {
		return
	}
	if v.p.Update.Follows() {
		// The update is known once plan resolves it; check the rest of the tag now.
		t := v.p.Tag()
		t.Kind, t.WUM, t.Level, t.Release = tags.None, 0, 0, 0
		if err := t.Validate(); err != nil {
			v.add("version", "the image tag cannot be formed: %v", err)
		}
		return
	}
	if err := v.p.Tag().Validate(); err != nil {
		v.add("update", "the image tag cannot be formed: %v", err)
	}
}

func (v *validator) base() {
	b := v.p.Base
	if b.Image == "" {
		v.add("base.image", "required: the official image to extend, e.g. registry.wso2.com/wso2-is/is")
		return
	}
	ref, err := name.ParseReference(b.Image)
	if err != nil {
		v.add("base.image", "%q is not an image reference: %v", b.Image, err)
		return
	}
	if b.Digest != "" && !digestRE.MatchString(b.Digest) {
		v.add("base.digest", "%q is not a digest: expected sha256: and 64 lowercase hex digits", b.Digest)
		return
	}
	if b.Mirror != "" {
		if _, err := name.NewRepository(b.Mirror); err != nil || hasTagOrDigest(b.Mirror) {
			v.add("base.mirror", "%q is not a repository (no tag or digest): e.g. registry.acme.com/mirror/wso2is", b.Mirror)
		}
	}
	if vf := b.Verify; vf != nil && vf.Off {
		// Said loudly when the profile is planned.
	} else if vf != nil {
		if name, ok := strings.CutPrefix(vf.Key, StockKeyPrefix); ok {
			if _, found := StockKey(name); !found {
				v.add("base.verify.key", "%q: no key of that name is embedded in wso2img (stock:wso2-registry is WSO2's registry key)", vf.Key)
			}
		}
		keyless := vf.Identity != "" || vf.IdentityRegexp != "" || vf.Issuer != "" || vf.IssuerRegexp != ""
		switch {
		case vf.Key != "" && keyless:
			v.add("base.verify", "set either key or a keyless identity and issuer, not both")
		case vf.Key == "" && !keyless:
			v.add("base.verify", "needs key (WSO2's wso2-public-key.pub, say) or identity and issuer")
		case keyless && (vf.Identity == "") == (vf.IdentityRegexp == ""):
			v.add("base.verify.identity", "set exactly one of identity and identityRegexp")
		case keyless && (vf.Issuer == "") == (vf.IssuerRegexp == ""):
			v.add("base.verify.issuer", "set exactly one of issuer and issuerRegexp")
		}
	}
	if d, ok := ref.(name.Digest); ok && b.Digest != "" && d.DigestStr() != b.Digest {
		v.add("base.digest", "%s differs from the digest in base.image (%s)", b.Digest, d.DigestStr())
	}
}

// Severities of the vulnerability gate, lowest first.
var Severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (v *validator) scan() {
	sc := v.p.Scan
	if sc.Severity != "" && !slices.Contains(Severities[1:], sc.Severity) {
		v.add("scan.severity", "%q is not a severity: expected LOW, MEDIUM, HIGH or CRITICAL (upper case)", sc.Severity)
	}
	if sc.Scope != "" && sc.Scope != "added" && sc.Scope != "all" {
		v.add("scan.scope", "%q: expected added (findings the base does not have) or all", sc.Scope)
	}
	if b := v.p.BaseCache.Prefix; b != "" {
		if _, err := name.NewRepository(b); err != nil || hasTagOrDigest(b) || !strings.Contains(b, "/") {
			v.add("baseCache", "%q is not a repository prefix in a registry: e.g. registry.acme.com/wso2img-bases, or false", b)
		}
	}
}

func (v *validator) target() {
	r := v.p.Target.Repository
	if r == "" {
		return
	}
	if _, err := name.NewRepository(r); err != nil || hasTagOrDigest(r) {
		v.add("target.repository", "%q is not a repository (no tag or digest): e.g. registry.example.com/acme/wso2is", r)
	}
}

func (v *validator) user() {
	for _, f := range []struct {
		field string
		id    int
	}{{"user.uid", v.p.User.UID}, {"user.gid", v.p.User.GID}} {
		_, written := v.p.pos[f.field]
		switch {
		case f.id == 0 && written:
			v.add(f.field, "0 is root: WSO2 images run as the product's non-root user (wso2carbon, 802 for IS)")
		case f.id == 0:
			v.add(f.field, "required: the product user's numeric id (802 for IS, 10001 for APIM 4.x, 10802 for MI)")
		case f.id < 0 || f.id > 1<<31-1:
			v.add(f.field, "%d is out of range: expected 1 to 2147483647", f.id)
		}
	}
	h := v.p.Home
	if h != "" && (!path.IsAbs(h) || path.Clean(h) != h || h == "/") {
		v.add("home", "%q is not a product home: expected a clean absolute path such as /home/wso2carbon/wso2is-7.1.0", h)
	}
}

// DestPath is where input i lands in the image: an absolute path when the product home
// is known, else a clean path relative to it. A file whose dest ends in "/" keeps its own
// name inside that directory; a directory's contents (or an extracted archive's) go into
// dest. A trust store whose format is the product's default is placed by the build
// (TrustStoreDest), which knows the format's file name.
func (p *Profile) DestPath(i int) string { return p.destPath(i, p.Inputs[i].SourceName()) }

// SourceName is the input's own file name: the last element of its URL path or local
// path, or a trust store's file name when its format is set ("" while it is not).
func (in Input) SourceName() string {
	switch {
	case in.TrustStore != nil:
		return trustStoreName(in.TrustStore.Format)
	case in.URL != "":
		if u, err := url.Parse(in.URL); err == nil {
			return path.Base(u.Path)
		}
		return ""
	}
	return filepath.Base(in.Path)
}

// IsDir reports whether a local input was a directory when the profile was loaded.
func (in Input) IsDir() bool { return in.isDir }

func (v *validator) inputs() {
	p := v.p
	dests := map[string]int{}
	needGPG := ""
	for i, in := range p.Inputs {
		f := fmt.Sprintf("inputs[%d]", i)
		var kinds []string
		for _, k := range []struct {
			name string
			set  bool
		}{{"url", in.URL != ""}, {"path", in.Path != ""}, {"truststore", in.TrustStore != nil}} {
			if k.set {
				kinds = append(kinds, k.name)
			}
		}
		switch {
		case len(kinds) == 0:
			v.add(f, "needs a url, a path or a truststore")
			continue
		case len(kinds) > 1:
			v.add(f, "has %s: one input is one source", strings.Join(kinds, " and "))
			continue
		}
		if in.TrustStore != nil {
			v.trustStore(f, in)
			for _, c := range in.TrustStore.Certificates {
				if c.Signature != "" {
					needGPG = fmt.Sprintf("%s.truststore.certificates.signature", f)
				}
			}
		}
		if in.URL != "" {
			v.remoteURL(f+".url", in.URL)
			if in.SHA256 == "" && in.SHA512 == "" {
				v.add(f+".sha256", "a url needs a sha256 (or sha512) checksum: wso2img never adds a download it cannot verify")
			}
		}
		if in.TrustStore == nil {
			v.auth(f+".auth", in.Auth, in.URL != "")
		}
		if in.MaxSize < 0 {
			v.add(f+".maxSize", "%d is negative", in.MaxSize)
		}
		if in.isDir {
			for _, c := range []struct {
				field string
				set   bool
			}{{"sha256", in.SHA256 != ""}, {"sha512", in.SHA512 != ""}, {"signature", in.Signature != ""}, {"mode", in.Mode != ""}, {"extract", in.Extract}, {"maxSize", in.MaxSize != 0}} {
				if c.set {
					v.add(f+"."+c.field, "%s is a directory: a %s applies to one file (each file of a directory keeps its own mode and is hashed on its own)", in.Path, c.field)
				}
			}
		}
		if in.Extract && in.Mode != "" {
			v.add(f+".mode", "an extracted archive keeps the modes of its entries: a mode applies to one file")
		}
		v.checksum(f+".sha256", in.SHA256, 64)
		v.checksum(f+".sha512", in.SHA512, 128)
		if in.Signature != "" {
			v.signature(f+".signature", in.Signature)
			needGPG = f + ".signature"
		}
		if in.Mode != "" {
			v.mode(f+".mode", in.Mode)
		}
		if in.Dest == "" && in.TrustStore == nil {
			v.add(f+".dest", "required: where the input goes, relative to the product home (end with / for a directory)")
			continue
		}
		if in.Dest != "" && !v.dest(f+".dest", in.Dest) {
			continue
		}
		if n := in.SourceName(); in.URL != "" && !in.dirLike() && (strings.HasSuffix(in.Dest, "/") || in.Dest == ".") && (n == "" || n == "/" || n == ".") {
			v.add(f+".dest", "ends in '/' but the source has no file name to keep: name the file in dest")
			continue
		}
		if in.TrustStore != nil && in.SourceName() == "" && (in.Dest == "" || strings.HasSuffix(in.Dest, "/")) {
			continue // placed by the build, which checks it against the others
		}
		d := p.DestPath(i)
		if j, dup := dests[d]; dup && !(in.dirLike() && p.Inputs[j].dirLike()) {
			// Two directories may fill one folder; a file may not land where another input does.
			v.add(f+".dest", "%s is also where inputs[%d] goes", d, j)
			continue
		}
		if !in.dirLike() && (d == p.Home || d == ".") {
			v.add(f+".dest", "a file cannot replace the product home: end dest with '/' to put it inside")
			continue
		}
		dests[d] = i
	}
	if needGPG != "" && (p.GPG.Keyring == "" || len(p.GPG.Fingerprints) == 0) {
		v.add(needGPG, "a signature is checked against gpg.keyring and gpg.fingerprints, which are not both set")
	}
}

func (v *validator) checksum(field, sum string, hexLen int) {
	if sum == "" {
		return
	}
	if len(sum) != hexLen || !hexRE.MatchString(strings.ToLower(sum)) {
		v.add(field, "%q is not a checksum: expected %d hex digits, found %d characters", sum, hexLen, len(sum))
	}
}

func (v *validator) mode(field, mode string) {
	m, err := strconv.ParseUint(mode, 8, 32)
	switch {
	case err != nil:
		v.add(field, "%q is not an octal mode such as \"0640\"", mode)
	case m&0o7000 != 0:
		v.add(field, "%s sets setuid, setgid or sticky bits, which wso2img never adds: use a mode up to 0777", mode)
	case m > 0o777:
		v.add(field, "%s is out of range: at most 0777", mode)
	}
}

// dest checks that a destination stays inside the product home.
func (v *validator) dest(field, dest string) bool {
	home := v.p.Home
	if path.IsAbs(dest) {
		if home == "" {
			v.add(field, "%q is absolute but home is not set, so it cannot be checked: set home or make dest relative to it", dest)
			return false
		}
		if c := path.Clean(dest); c != home && !strings.HasPrefix(c, home+"/") {
			v.add(field, "%q is outside the product home %s: everything wso2img adds goes under it", dest, home)
			return false
		}
		return true
	}
	if c := path.Clean(dest); c == ".." || strings.HasPrefix(c, "../") {
		v.add(field, "%q escapes the product home: '..' may not leave it", dest)
		return false
	}
	return true
}

func (v *validator) gpg() {
	g := v.p.GPG
	if g.Keyring != "" && len(g.Fingerprints) == 0 {
		v.add("gpg.fingerprints", "required with a keyring: only keys whose fingerprints are pinned here are trusted")
	}
	if g.Keyring == "" && len(g.Fingerprints) > 0 {
		v.add("gpg.keyring", "required with fingerprints: the file holding those public keys")
	}
	for i, f := range g.Fingerprints {
		if !fprRE.MatchString(NormalizeFingerprint(f)) {
			v.add(fmt.Sprintf("gpg.fingerprints[%d]", i), "%q is not a key fingerprint: expected 40 (v4) or 64 (v6) hex digits", f)
		}
	}
}

// NormalizeFingerprint uppercases a fingerprint and drops the spaces people paste with it.
func NormalizeFingerprint(f string) string {
	return strings.ToUpper(strings.ReplaceAll(f, " ", ""))
}

func (v *validator) ports() {
	seen := map[int]bool{}
	for i, port := range v.p.Ports {
		f := fmt.Sprintf("ports[%d]", i)
		switch {
		case port < 1 || port > 65535:
			v.add(f, "%d is out of range: expected 1 to 65535", port)
		case seen[port]:
			v.add(f, "%d is listed twice", port)
		}
		seen[port] = true
	}
}

func (v *validator) envAndLabels() {
	for _, k := range sortedKeys(v.p.Env) {
		f := "env." + k
		switch {
		case !envKeyRE.MatchString(k):
			v.add(f, "%q is not an environment variable name", k)
		case LooksSecret(k):
			v.add(f, "looks like a secret: anyone who can pull the image can read its environment; pass secrets at run time (a Kubernetes Secret, say)")
		default:
			if why := SecretInValue(v.p.Env[k]); why != "" {
				v.add(f, "holds %s: anyone who can pull the image can read its environment; pass it at run time (JAVA_OPTS from a Kubernetes Secret, or WSO2's secure vault)", why)
			}
		}
	}
	for _, k := range sortedKeys(v.p.Labels) {
		f := "labels." + k
		switch {
		case k == "" || strings.TrimSpace(k) != k:
			v.add(f, "%q is not a label key", k)
		case strings.HasPrefix(k, ReservedLabelPrefix):
			v.add(f, "labels under %s are written by wso2img", ReservedLabelPrefix)
		case contains(computedLabels, k):
			v.add(f, "is computed from the build by wso2img and cannot be set")
		}
	}
}

func (v *validator) platforms() {
	seen := map[string]bool{}
	for i, s := range v.p.Platforms {
		f := fmt.Sprintf("platforms[%d]", i)
		pl, err := platforms.Parse(s)
		switch {
		case err != nil:
			v.add(f, "%q is not a platform such as linux/amd64: %v", s, err)
		case pl.OS != "linux":
			v.add(f, "%q: WSO2 images are linux images", s)
		case seen[platforms.Format(pl)]:
			v.add(f, "%q is listed twice", s)
		}
		if err == nil {
			seen[platforms.Format(pl)] = true
		}
	}
}

// secretWords are words of environment variable names that hold secrets, found also
// inside a longer word (DBPASSWORD, dbPassword): KEYSTORE_TYPE is fine, DB_PASSWORD not.
var secretWords = []string{"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL"}

// shortSecretWords count only as whole words (MYSQL_PWD, DB_PASS), not inside others
// (PASSPORT, PWDIR); PWD alone is the shell's working directory.
var shortSecretWords = []string{"PWD", "PASS", "PW"}

// secretPairs are two-word parts that hold secrets ("API_KEY", "ACCESS_KEY").
var secretPairs = []string{"API_KEY", "ACCESS_KEY", "SECRET_KEY", "PRIVATE_KEY", "AUTH_KEY", "SIGNING_KEY"}

// referenceWords end names that point at a secret rather than hold it
// (KEYSTORE_PASSWORD_FILE, TOKEN_ENDPOINT_URL).
var referenceWords = []string{"FILE", "PATH", "DIR", "URL", "URI", "ENDPOINT", "NAME", "TYPE", "ALIAS", "HEADER"}

// nameWords splits a variable name into upper-case words at underscores, dots, dashes
// and camelCase humps: "dbPassword" and "DB_PASSWORD" both give DB, PASSWORD.
func nameWords(name string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToUpper(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case r == '_' || r == '.' || r == '-':
			flush()
			continue
		case unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))):
			flush()
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// LooksSecret reports whether an environment variable's name (or a property's: any
// spelling, DB_PASSWORD, DBPASSWORD, dbPassword, MYSQL_PWD) suggests it holds a secret.
// Profiles may not set such variables, and `wso2img verify` flags images that do.
func LooksSecret(name string) bool {
	words := nameWords(name)
	if len(words) == 0 || contains(referenceWords, words[len(words)-1]) {
		return false
	}
	for i, w := range words {
		for _, sw := range secretWords {
			if strings.Contains(w, sw) {
				return true
			}
		}
		if len(words) > 1 && contains(shortSecretWords, w) {
			return true
		}
		if i+1 < len(words) && contains(secretPairs, w+"_"+words[i+1]) {
			return true
		}
	}
	return false
}

// propertyRE finds Java system properties and long flags with a value:
// -Djavax.net.ssl.trustStorePassword=…, --db-password=….
var propertyRE = regexp.MustCompile(`(?:^|\s)(?:-D|--)([A-Za-z0-9_.\-]+)=("[^"]*"|'[^']*'|\S*)`)

// SecretInValue says what secret a variable's value passes (a -D property or --flag
// whose name looks like a secret, with a literal value), or "". A value that refers to
// another variable ($VAR, ${VAR}) or a file is no secret itself.
func SecretInValue(v string) string {
	for _, m := range propertyRE.FindAllStringSubmatch(v, -1) {
		name, val := m[1], strings.Trim(m[2], `"'`)
		if val == "" || strings.HasPrefix(val, "$") || !LooksSecret(name) {
			continue
		}
		if strings.HasPrefix(m[0], "-D") || strings.HasPrefix(strings.TrimSpace(m[0]), "-D") {
			return "-D" + name + "=…"
		}
		return "--" + name + "=…"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
