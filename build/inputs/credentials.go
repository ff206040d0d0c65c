package inputs

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/wso2img/wso2img/profiles"
)

// checkCredentials refuses a URL (the input's or its signature's) that carries a
// credential: they come from the environment or netrc, never from a URL, which ends up
// in logs, labels and the SBOM. The message names the field, never the URL.
func checkCredentials(s Spec) error {
	for _, u := range []struct{ field, raw string }{{s.Field, s.URL}, {s.Field + ".signature", s.Signature}} {
		if u.raw == "" || filepath.IsAbs(u.raw) {
			continue
		}
		if what := profiles.URLCredential(u.raw); what != "" {
			return &VerifyError{Profile: s.Profile, Field: u.field, Source: redact(u.raw), What: whatCredential,
				Expected: "a URL without credentials (give them with auth: {env: VARIABLE} or a netrc entry)", Found: what}
		}
	}
	return nil
}

// redact is raw without what could hold a credential: the user info and the query.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "@?"); i >= 0 {
			return raw[:i] + "…"
		}
		return raw
	}
	if u.User == nil && u.RawQuery == "" {
		return raw
	}
	u.User = nil
	q := u.RawQuery != ""
	u.RawQuery = ""
	if q {
		return u.String() + "?…"
	}
	return u.String()
}

// credential is the Authorization header for a request of s to u, and where it came
// from (for messages; never the value): s.Auth when u is on s's own host, else the
// netrc entry of u's host. "" when there is none.
func (c *httpClient) credential(s Spec, u *url.URL) (header, from string, err error) {
	if s.Auth != nil {
		if own, perr := url.Parse(s.URL); perr == nil && sameHost(own, u) {
			v := os.Getenv(s.Auth.Env)
			if v == "" {
				return "", "", fmt.Errorf("%s: the credentials come from $%s, which is not set (or empty)", where(s.Profile, s.Field, s.source()), s.Auth.Env)
			}
			if !s.Auth.Basic {
				return "Bearer " + v, "$" + s.Auth.Env, nil
			}
			if !strings.Contains(v, ":") {
				return "", "", fmt.Errorf("%s: $%s must hold user:password for basic authentication, and has no ':'", where(s.Profile, s.Field, s.source()), s.Auth.Env)
			}
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(v)), "$" + s.Auth.Env, nil
		}
	}
	if e, ok := c.netrc.lookup(u); ok {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(e.login+":"+e.password)), "netrc (machine " + e.machine + ")", nil
	}
	return "", "", nil
}

// sameHost compares hosts as a browser scopes credentials: scheme, host and port.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// netrcEntry is one machine of a netrc file.
type netrcEntry struct{ machine, login, password string }

// netrc is the machine entries of a netrc file. A "default" entry is ignored: it would
// send one password to every host an input names.
type netrc []netrcEntry

// lookup finds the entry for u's host: "host:port" first, then the host name.
func (n netrc) lookup(u *url.URL) (netrcEntry, bool) {
	for _, name := range []string{u.Host, u.Hostname()} {
		for _, e := range n {
			if strings.EqualFold(e.machine, name) && e.password != "" {
				return e, true
			}
		}
	}
	return netrcEntry{}, false
}

// loadNetrc reads the netrc file: path, else $NETRC, else ~/.netrc. A file that path or
// $NETRC names must exist; ~/.netrc may not.
func loadNetrc(path string) (netrc, error) {
	named := true
	if path == "" {
		path = os.Getenv("NETRC")
	}
	if path == "" {
		named = false
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		path = filepath.Join(home, ".netrc")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the netrc file: %w", err)
	}
	return parseNetrc(string(data)), nil
}

// parseNetrc reads netrc's tokens: machine, login, password, account, default and
// macdef (whose body runs to the next empty line), separated by white space; a token
// may be double-quoted, with backslash escapes, as curl accepts.
func parseNetrc(data string) netrc {
	var out netrc
	var cur *netrcEntry
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var toks []string
	inMacro := false
	for sc.Scan() {
		line := sc.Text()
		if inMacro {
			if strings.TrimSpace(line) == "" {
				inMacro = false
			}
			continue
		}
		lt := netrcTokens(line)
		for i := 0; i < len(lt); i++ {
			if lt[i] == "macdef" {
				toks = append(toks, lt[:i]...)
				inMacro = true
				lt = nil
				break
			}
		}
		toks = append(toks, lt...)
	}
	for i := 0; i < len(toks); i++ {
		next := func() string {
			if i+1 < len(toks) {
				i++
				return toks[i]
			}
			return ""
		}
		switch toks[i] {
		case "machine":
			out = append(out, netrcEntry{machine: next()})
			cur = &out[len(out)-1]
		case "default":
			cur = nil
		case "login":
			if v := next(); cur != nil {
				cur.login = v
			}
		case "password":
			if v := next(); cur != nil {
				cur.password = v
			}
		case "account":
			next()
		}
	}
	return out
}

// netrcTokens splits a line at white space; a line whose first token starts with "#"
// is a comment.
func netrcTokens(line string) []string {
	var toks []string
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '#' && len(toks) == 0:
			return nil
		case c == '"':
			var b strings.Builder
			i++
			for i < len(line) && line[i] != '"' {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				b.WriteByte(line[i])
				i++
			}
			i++ // the closing quote
			toks = append(toks, b.String())
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t\r\n", rune(line[j])) {
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	return toks
}
