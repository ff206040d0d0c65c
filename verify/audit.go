package verify

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/profiles"
)

// Rules the checks enforce.
const (
	ruleUser        = "CIS Docker Benchmark 4.1"
	ruleBase        = "CIS Docker Benchmark 4.2"
	ruleSignature   = "CIS Docker Benchmark 4.5"
	ruleAttestation = "CIS Docker Benchmark 4.12"
	ruleHealthcheck = "CIS Docker Benchmark 4.6"
	ruleSetuid      = "CIS Docker Benchmark 4.8"
	ruleSecrets     = "CIS Docker Benchmark 4.10"
	rulePorts       = "CIS Docker Benchmark 5.8 (a runtime item, checked on the image's EXPOSE)"
	ruleLabels      = "wso2img"
	ruleVulnScan    = "wso2img (vulnerability gate, WSO2's pipeline gates on Trivy)"
)

// layerScan is what one layer holds that the audit needs.
type layerScan struct {
	// setuid maps the paths of regular files with a setuid or setgid bit to their mode.
	setuid map[string]string
	// paths are all paths the layer writes (a later entry hides an earlier setuid file).
	paths map[string]bool
	// whiteouts are paths the layer deletes; opaque are directories it empties.
	whiteouts, opaque []string
	// passwd is /etc/passwd when the layer writes it as a regular file.
	passwd []byte
	// hasPasswd says whether the layer writes /etc/passwd; passwdOther says what it is
	// when it is not a regular file ("a symlink to /tmp/pw").
	hasPasswd   bool
	passwdOther string
}

// maxPasswd bounds how much of /etc/passwd is read.
const maxPasswd = 1 << 20

// scanLayer streams one layer's tar, keeping only paths and modes (and /etc/passwd),
// never the layer itself.
func scanLayer(l v1.Layer) (*layerScan, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	s := &layerScan{setuid: map[string]string{}, paths: map[string]bool{}}
	tr := tar.NewReader(bufio.NewReaderSize(rc, 64<<10))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p := path.Clean("/" + h.Name)
		dir, base := path.Split(p)
		switch {
		case base == ".wh..wh..opq":
			s.opaque = append(s.opaque, path.Clean(dir))
			continue
		case strings.HasPrefix(base, ".wh."):
			s.whiteouts = append(s.whiteouts, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		s.paths[p] = true
		mode := h.FileInfo().Mode()
		switch {
		case h.Typeflag == tar.TypeReg && h.Mode&(0o4000|0o2000) != 0:
			s.setuid[p] = fmt.Sprintf("%s %04o %d:%d", setBits(h.Mode), h.Mode&0o7777, h.Uid, h.Gid)
		case h.Typeflag == tar.TypeLink:
			// A hard link shares its target's inode, setuid bit included, and outlives
			// the target's deletion in a later layer.
			target := path.Clean("/" + h.Linkname)
			if m, ok := s.setuid[target]; ok {
				s.setuid[p] = m + " (hard link to " + target + ")"
			} else if h.Mode&(0o4000|0o2000) != 0 {
				s.setuid[p] = fmt.Sprintf("%s %04o %d:%d (hard link to %s)", setBits(h.Mode), h.Mode&0o7777, h.Uid, h.Gid, target)
			}
		}
		if p == "/etc/passwd" {
			s.hasPasswd, s.passwd, s.passwdOther = true, nil, ""
			switch {
			case mode.IsRegular():
				data, err := io.ReadAll(io.LimitReader(tr, maxPasswd))
				if err != nil {
					return nil, err
				}
				s.passwd = data
			case h.Typeflag == tar.TypeSymlink:
				s.passwdOther = "a symlink to " + h.Linkname
			default:
				s.passwdOther = "not a regular file"
			}
		}
	}
	// Drain what follows the tar's end so that the digest is verified.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, err
	}
	return s, nil
}

func setBits(mode int64) string {
	var b []string
	if mode&0o4000 != 0 {
		b = append(b, "setuid")
	}
	if mode&0o2000 != 0 {
		b = append(b, "setgid")
	}
	return strings.Join(b, "+")
}

// fsState is the image's file system as far as the audit cares, after applying its
// layers in order.
type fsState struct {
	setuid map[string]string
	passwd []byte
	hasPwd bool
	// pwdOther says what /etc/passwd is when it is not a regular file.
	pwdOther string
}

func (st *fsState) apply(s *layerScan) {
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") }
	for _, d := range s.opaque {
		for p := range st.setuid {
			if p != d && under(p, d) {
				delete(st.setuid, p)
			}
		}
		if d != "/etc/passwd" && under("/etc/passwd", d) {
			st.passwd, st.hasPwd = nil, false
		}
	}
	for _, w := range s.whiteouts {
		for p := range st.setuid {
			if under(p, w) {
				delete(st.setuid, p)
			}
		}
		if under("/etc/passwd", w) {
			st.passwd, st.hasPwd = nil, false
		}
	}
	for p := range s.paths {
		delete(st.setuid, p)
	}
	for p, m := range s.setuid {
		st.setuid[p] = m
	}
	if s.hasPasswd {
		st.passwd, st.hasPwd, st.pwdOther = s.passwd, true, s.passwdOther
	}
}

// auditConfig runs the checks that read only the image config, and the user check,
// which also reads /etc/passwd from the layers.
func auditConfig(p *Policy, platform string, cf *v1.ConfigFile, fs *fsState) []Check {
	var out []Check
	out = append(out, checkUser(p, cf, fs))
	out = append(out, checkBase(p, cf))
	out = append(out, checkPorts(p, cf))
	out = append(out, checkSetuid(p, fs))
	out = append(out, checkEnv(p, cf))
	out = append(out, checkHistory(cf))
	out = append(out, checkHealthcheck(p, cf))
	out = append(out, checkLabels(p, cf))
	for i := range out {
		out[i].Platform = platform
	}
	return out
}

func checkUser(p *Policy, cf *v1.ConfigFile, fs *fsState) Check {
	c := Check{ID: CheckUser, Title: "runs as a non-root user", Rule: ruleUser}
	user := cf.Config.User
	name, _, _ := strings.Cut(user, ":")
	uid, isRoot, how := resolveUser(name, fs)
	_, notNumber := strconv.Atoi(name)
	switch {
	case user == "":
		c.Status, c.Detail = Fail, "the image sets no USER, so it runs as root (uid 0)"
	case notNumber != nil && name != "root" && fs != nil && fs.pwdOther != "":
		c.Status, c.Detail = Fail, fmt.Sprintf("USER %q is a name, and the image's /etc/passwd is %s: the audit cannot tell which uid the runtime gives it; use a numeric USER (uid:gid)", user, fs.pwdOther)
	case isRoot:
		c.Status, c.Detail = Fail, fmt.Sprintf("USER %q is root (uid 0%s)", user, how)
	case uid < 0:
		c.Status, c.Detail = Fail, fmt.Sprintf("USER %q names no user in the image's /etc/passwd: the container would not start, or would start as root with some runtimes", user)
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("USER %q (uid %d%s)", user, uid, how)
	}
	if c.Status == Fail && p.AllowRoot {
		c.Status, c.Detail = Advice, c.Detail+"; allowed by the policy (allowRoot)"
	}
	return c
}

// resolveUser finds the uid of a USER's user part: a number, or a name looked up in
// /etc/passwd the way runc does (moby/sys/user: each line trimmed of spaces, the first
// entry of the name wins). uid is -1 when a name is not there.
func resolveUser(name string, fs *fsState) (uid int, root bool, how string) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n == 0, ""
	}
	if name == "root" {
		return 0, true, ""
	}
	if fs == nil || !fs.hasPwd {
		return -1, false, ""
	}
	for _, line := range strings.Split(string(fs.passwd), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) >= 3 && f[0] == name {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return -1, false, ""
			}
			return n, n == 0, " in /etc/passwd"
		}
	}
	return -1, false, ""
}

func checkBase(p *Policy, cf *v1.ConfigFile) Check {
	c := Check{ID: CheckBase, Title: "built on an allowed base image", Rule: ruleBase}
	d := cf.Config.Labels[profiles.LabelBaseDigest]
	name := cf.Config.Labels[profiles.LabelBaseName]
	switch {
	case len(p.BaseDigests) == 0:
		c.Status = Skip
		c.Detail = "the policy has no base allowlist (baseDigests)"
		if d != "" {
			c.Detail += fmt.Sprintf("; the image says it is built on %s@%s", name, d)
		}
	case d == "":
		c.Status, c.Detail = Fail, fmt.Sprintf("the image has no %s label, so its base cannot be checked against the allowlist", profiles.LabelBaseDigest)
	case slices.Contains(p.BaseDigests, d):
		c.Status, c.Detail = Pass, fmt.Sprintf("base %s@%s is on the allowlist", name, d)
	default:
		c.Status, c.Detail = Fail, fmt.Sprintf("base %s@%s is not on the allowlist (%d digests)", name, d, len(p.BaseDigests))
	}
	return c
}

func checkPorts(p *Policy, cf *v1.ConfigFile) Check {
	c := Check{ID: CheckPorts, Title: "exposes only allowed ports", Rule: rulePorts}
	allowed := map[string]bool{}
	for _, s := range p.Ports {
		n, proto, _ := parsePort(s)
		allowed[fmt.Sprintf("%d/%s", n, proto)] = true
	}
	var exposed, bad []string
	for k := range cf.Config.ExposedPorts {
		n, proto, err := parsePort(k)
		norm := k
		if err == nil {
			norm = fmt.Sprintf("%d/%s", n, proto)
		}
		exposed = append(exposed, norm)
		if !allowed[norm] {
			bad = append(bad, norm)
		}
	}
	sort.Strings(exposed)
	sort.Strings(bad)
	switch {
	case len(bad) > 0:
		c.Status, c.Findings = Fail, bad
		c.Detail = fmt.Sprintf("%d exposed port(s) not in the allowed set (%s)", len(bad), strings.Join(p.Ports, " "))
	case len(exposed) == 0:
		c.Status, c.Detail = Pass, "no ports exposed"
	default:
		c.Status, c.Detail = Pass, "exposes "+strings.Join(exposed, " ")
	}
	return c
}

func checkSetuid(p *Policy, fs *fsState) Check {
	c := Check{ID: CheckSetuid, Title: "no setuid or setgid files", Rule: ruleSetuid}
	var found []string
	for f, m := range fs.setuid {
		if !slices.Contains(p.AllowSetuid, f) {
			found = append(found, f+" ("+m+")")
		}
	}
	sort.Strings(found)
	if len(found) > 0 {
		c.Status, c.Findings = Fail, found
		c.Detail = fmt.Sprintf("%d file(s) in the image's layers keep a setuid or setgid bit (remove the bit, or list the path under allowSetuid)", len(found))
		return c
	}
	c.Status, c.Detail = Pass, "no file in the final file system has a setuid or setgid bit"
	if n := len(fs.setuid); n > 0 {
		c.Detail += fmt.Sprintf(" besides the %d the policy allows", n)
	}
	return c
}

// privateKeyRE finds PEM private keys.
var privateKeyRE = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

func checkEnv(p *Policy, cf *v1.ConfigFile) Check {
	c := Check{ID: CheckEnvSecrets, Title: "no secrets in environment variables", Rule: ruleSecrets}
	for _, kv := range cf.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(p.AllowEnv, k) || v == "" {
			continue
		}
		switch {
		case profiles.LooksSecret(k) || privateKeyRE.MatchString(v):
			c.Findings = append(c.Findings, k+" (value hidden)")
		case profiles.SecretInValue(v) != "":
			c.Findings = append(c.Findings, k+" passes "+profiles.SecretInValue(v))
		}
	}
	if len(c.Findings) > 0 {
		c.Status = Fail
		c.Detail = "anyone who can pull the image can read these; pass secrets at run time (Kubernetes Secrets, WSO2 secure vault) instead"
		return c
	}
	c.Status, c.Detail = Pass, fmt.Sprintf("%d variable(s), none named like a secret", len(cf.Config.Env))
	return c
}

var (
	// assignRE finds NAME=value assignments in a history entry (ENV, ARG, RUN with
	// build arguments "|2 DB_PASSWORD=… /bin/sh -c …").
	assignRE = regexp.MustCompile(`(?:^|[\s;|&"'(])([A-Za-z_][A-Za-z0-9_]*)=("[^"]+"|'[^']+'|[^\s"';|&)]+)`)
	// flagSecretRE finds secrets passed as command-line flags.
	flagSecretRE = regexp.MustCompile(`(?i)--(password|passwd|pass|secret|token|api-key|apikey|access-key|secret-key)[= ]+[^\s-][^\s]*`)
	// urlCredRE finds credentials in URLs (https://user:secret@host).
	urlCredRE = regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@`)
	// knownSecretRE finds well-known secret variables and token formats even without
	// an assignment.
	knownSecretRE = regexp.MustCompile(`AWS_SECRET_ACCESS_KEY|\bgh[pousr]_[A-Za-z0-9]{30,}|\bAKIA[0-9A-Z]{16}\b`)
)

// historySecret says why a history entry looks like it holds a secret, or "".
func historySecret(createdBy string) string {
	if privateKeyRE.MatchString(createdBy) {
		return "a private key"
	}
	for _, m := range assignRE.FindAllStringSubmatch(createdBy, -1) {
		name, val := m[1], strings.Trim(m[2], `"'`)
		if profiles.LooksSecret(name) && val != "" && !strings.HasPrefix(val, "$") {
			return name + "=…"
		}
	}
	if m := flagSecretRE.FindStringSubmatch(createdBy); m != nil {
		return "--" + strings.ToLower(m[1]) + " …"
	}
	if urlCredRE.MatchString(createdBy) {
		return "credentials in a URL"
	}
	if m := knownSecretRE.FindString(createdBy); m != "" {
		if m == "AWS_SECRET_ACCESS_KEY" {
			return m
		}
		return "a token"
	}
	return ""
}

func checkHistory(cf *v1.ConfigFile) Check {
	c := Check{ID: CheckHistorySecrets, Title: "no secrets in the build history", Rule: ruleSecrets}
	for i, h := range cf.History {
		if why := historySecret(h.CreatedBy); why != "" {
			c.Findings = append(c.Findings, fmt.Sprintf("history[%d]: %s", i, why))
		}
	}
	if len(c.Findings) > 0 {
		c.Status = Fail
		c.Detail = "the image's history (docker history) shows these to anyone who can pull it; rebuild without them (BuildKit secret mounts)"
		return c
	}
	c.Status, c.Detail = Pass, fmt.Sprintf("%d history entries, none with a secret", len(cf.History))
	return c
}

// probes are the health probes WSO2's Helm charts use, by product.
var probes = map[string]string{
	"wso2is": "GET https://localhost:9443/api/health-check/v1.0/health",
	"wso2am": "GET http://localhost:9763/services/Version (gateway: GET https://localhost:9443/api/am/gateway/v2/server-startup-healthcheck)",
	"wso2mi": "TCP 8253",
}

func checkHealthcheck(p *Policy, cf *v1.ConfigFile) Check {
	c := Check{ID: CheckHealthcheck, Title: "has a HEALTHCHECK", Rule: ruleHealthcheck}
	if hc := cf.Config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		c.Status, c.Detail = Pass, "HEALTHCHECK "+strings.Join(hc.Test, " ")
		return c
	}
	c.Status = Advice
	if p.RequireHealthcheck {
		c.Status = Fail
	}
	product := cf.Config.Labels[profiles.LabelProduct]
	probe := probes[product]
	var hint string
	if probe != "" {
		hint = "WSO2's Helm charts probe " + product + " with " + probe
	} else {
		hint = "WSO2's Helm charts probe IS with GET https://localhost:9443/api/health-check/v1.0/health, APIM with GET http://localhost:9763/services/Version, MI with TCP 8253"
	}
	c.Detail = "no HEALTHCHECK (the official WSO2 images have none); on Kubernetes use liveness/readiness probes instead: " + hint
	return c
}

func checkLabels(p *Policy, cf *v1.ConfigFile) Check {
	c := Check{ID: CheckLabels, Title: "carries the required labels", Rule: ruleLabels}
	for _, l := range p.RequiredLabels {
		if cf.Config.Labels[l] == "" {
			c.Findings = append(c.Findings, l)
		}
	}
	if len(c.Findings) > 0 {
		c.Status, c.Detail = Fail, fmt.Sprintf("%d required label(s) missing or empty", len(c.Findings))
		return c
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("all %d present", len(p.RequiredLabels))
	if len(p.RequiredLabels) == 0 {
		c.Status, c.Detail = Skip, "the policy requires no labels"
	}
	return c
}
