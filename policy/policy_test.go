package policy_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	testKey    = mustRead("testdata/signer.pub") // a public key only: the fixture the golden files name
	testRoots  = mustRead("testdata/fulcio-root.pem")
	githubID   = policy.Identity{Subject: "https://github.com/acme/images/.github/workflows/build.yml@refs/heads/main", Issuer: "https://token.actions.githubusercontent.com"}
	repository = "registry.acme.com/wso2/wso2is"
)

func mustRead(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// cases are the option sets every test below renders.
var cases = []struct {
	name string
	opts policy.Options
}{
	{"key", policy.Options{Repositories: []string{repository}, PublicKey: testKey}},
	{"key-no-tlog", policy.Options{Repositories: []string{repository, "acme/wso2am"}, PublicKey: testKey, IgnoreTlog: true, Name: "wso2img-test"}},
	{"keyless-vuln", policy.Options{Repositories: []string{repository}, Identity: githubID, RequireVulnScan: true, MaxScanAge: 7 * 24 * time.Hour}},
	{"keyless-private", policy.Options{
		Images:   []string{"registry.acme.com/wso2/**"},
		Identity: policy.Identity{SubjectRegExp: `^https://kubernetes\.io/namespaces/builds/serviceaccounts/.*$`, IssuerRegExp: `^https://oidc\.eks\..*\.amazonaws\.com/id/.*$`},
		CARoots:  testRoots, RekorURL: "https://rekor.acme.com",
	}},
	{"keyless-no-tlog-kyverno", policy.Options{Repositories: []string{repository}, Identity: githubID, IgnoreTlog: true, Engines: []policy.Engine{policy.Kyverno}}},
}

// TestPoliciesValidateAgainstCRDs decodes every generated document strictly against its
// CRD's schema, and checks what the schema cannot: each engine's own rules.
func TestPoliciesValidateAgainstCRDs(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := policy.Generate(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			docs := splitDocs(t, out)
			want := 3
			if len(tc.opts.Engines) == 1 {
				want = map[policy.Engine]int{policy.PolicyController: 2, policy.Kyverno: 1}[tc.opts.Engines[0]]
			}
			if len(docs) != want {
				t.Fatalf("%d documents, want %d", len(docs), want)
			}
			for _, d := range docs {
				if err := validate(t, d); err != nil {
					t.Errorf("a generated document fails its CRD's schema: %v\n%s", err, d)
				}
				var head struct{ Kind string }
				if err := yaml.Unmarshal(d, &head); err != nil {
					t.Fatal(err)
				}
				switch head.Kind {
				case "ClusterImagePolicy":
					checkCIP(t, tc.opts, d)
				case "ClusterPolicy":
					checkKyverno(t, tc.opts, d)
				default:
					t.Errorf("unexpected kind %q", head.Kind)
				}
			}
		})
	}
}

type cip struct {
	Metadata struct{ Name string }
	Spec     struct {
		Mode        string
		Images      []struct{ Glob string }
		Authorities []struct {
			Name    string
			Key     *struct{ Data string }
			Keyless *struct {
				URL        string                 `yaml:"url"`
				CACert     *struct{ Data string } `yaml:"ca-cert"`
				Identities []map[string]string
			}
			CTLog        *struct{ URL string } `yaml:"ctlog"`
			Attestations []struct {
				Name          string
				PredicateType string `yaml:"predicateType"`
				Policy        *struct{ Type, Data string }
			}
		}
	}
}

// checkCIP holds a ClusterImagePolicy to policy-controller's webhook validation
// (pkg/apis/policy/v1beta1: one of key/keyless, keyless url xor ca-cert with identities,
// subject xor subjectRegExp, issuer xor issuerRegExp, glob characters) and to what
// wso2img needs (the trust, the tlog choice, the attestations).
func checkCIP(t *testing.T, o policy.Options, d []byte) {
	t.Helper()
	var c cip
	if err := yaml.Unmarshal(d, &c); err != nil {
		t.Fatal(err)
	}
	if c.Spec.Mode != "enforce" || len(c.Spec.Authorities) != 1 {
		t.Fatalf("%s: mode %q, %d authorities", c.Metadata.Name, c.Spec.Mode, len(c.Spec.Authorities))
	}
	globChars := regexp.MustCompile(`^[a-zA-Z0-9-_:\/\*\.@]+$`)
	for _, img := range c.Spec.Images {
		if !globChars.MatchString(img.Glob) {
			t.Errorf("glob %q has characters policy-controller refuses", img.Glob)
		}
	}
	a := c.Spec.Authorities[0]
	switch {
	case o.PublicKey != "":
		if a.Keyless != nil || a.Key == nil || a.Key.Data != o.PublicKey {
			t.Errorf("%s: want the key authority with the PEM inlined, got key %+v keyless %+v", c.Metadata.Name, a.Key, a.Keyless)
		}
		if o.IgnoreTlog != (a.CTLog == nil) {
			t.Errorf("%s: ctlog %+v with IgnoreTlog %v (a key authority checks the log only with ctlog.url)", c.Metadata.Name, a.CTLog, o.IgnoreTlog)
		}
	default:
		kl := a.Keyless
		if a.Key != nil || kl == nil || len(kl.Identities) != 1 {
			t.Fatalf("%s: want one keyless identity", c.Metadata.Name)
		}
		if (kl.URL == "") == (kl.CACert == nil) {
			t.Errorf("%s: keyless needs exactly one of url and ca-cert: %q, %v", c.Metadata.Name, kl.URL, kl.CACert)
		}
		id := kl.Identities[0]
		if (id["subject"] == "") == (id["subjectRegExp"] == "") || (id["issuer"] == "") == (id["issuerRegExp"] == "") {
			t.Errorf("%s: identity %v needs one subject form and one issuer form", c.Metadata.Name, id)
		}
		if o.IgnoreTlog && (a.CTLog == nil || a.CTLog.URL != "") {
			t.Errorf("%s: ignoring the log needs an empty ctlog, got %+v", c.Metadata.Name, a.CTLog)
		}
	}
	switch {
	case strings.HasSuffix(c.Metadata.Name, "-signature"):
		if len(a.Attestations) != 0 {
			t.Errorf("%s: the signature authority lists attestations, so policy-controller would not check the signature", c.Metadata.Name)
		}
	case strings.HasSuffix(c.Metadata.Name, "-attestations"):
		want := []string{policy.PredicateSLSAProvenance, policy.PredicateSPDX}
		if o.RequireVulnScan {
			want = append(want, policy.PredicateVuln)
		}
		var got []string
		for _, at := range a.Attestations {
			if at.Name == "" {
				t.Errorf("attestation %s has no name", at.PredicateType)
			}
			got = append(got, at.PredicateType)
			if (at.PredicateType == policy.PredicateVuln) != (at.Policy != nil) {
				t.Errorf("attestation %s: policy %+v", at.PredicateType, at.Policy)
			}
			if at.Policy != nil && at.Policy.Type != "rego" {
				t.Errorf("attestation %s: policy type %q", at.PredicateType, at.Policy.Type)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("attestations %v, want %v", got, want)
		}
	default:
		t.Errorf("unexpected policy name %q", c.Metadata.Name)
	}
}

func checkKyverno(t *testing.T, o policy.Options, d []byte) {
	t.Helper()
	var cp struct {
		Spec struct {
			Rules []struct {
				VerifyImages []struct {
					ImageReferences []string `yaml:"imageReferences"`
					Attestors       []struct {
						Entries []map[string]map[string]any
					}
					Attestations []struct {
						Type       string
						Attestors  []any
						Conditions []struct{ All []map[string]string }
					}
				} `yaml:"verifyImages"`
			}
		}
	}
	if err := yaml.Unmarshal(d, &cp); err != nil {
		t.Fatal(err)
	}
	vi := cp.Spec.Rules[0].VerifyImages[0]
	entry := vi.Attestors[0].Entries[0]
	kind := "keyless"
	if o.PublicKey != "" {
		kind = "keys"
	}
	e, ok := entry[kind]
	if !ok || len(entry) != 1 {
		t.Fatalf("attestor entry %v, want %s", entry, kind)
	}
	rekor, _ := e["rekor"].(map[string]any)
	if o.IgnoreTlog != (rekor["ignoreTlog"] == true) {
		t.Errorf("rekor %v with IgnoreTlog %v", rekor, o.IgnoreTlog)
	}
	if o.CARoots != "" && e["roots"] != o.CARoots {
		t.Errorf("keyless roots %v, want the CA roots", e["roots"])
	}
	var types []string
	for _, a := range vi.Attestations {
		types = append(types, a.Type)
		if len(a.Attestors) == 0 {
			t.Errorf("attestation %s is verified by no attestor", a.Type)
		}
		if a.Type == policy.PredicateVuln {
			c := a.Conditions[0].All[0]
			if c["key"] != "{{ time_since('', '{{ metadata.scanFinishedOn }}', '') }}" || c["operator"] != "LessThanOrEquals" {
				t.Errorf("vulnerability condition %v", c)
			}
			if d, err := time.ParseDuration(c["value"]); err != nil || d != o.MaxScanAge {
				t.Errorf("vulnerability condition value %q (%v), want %s", c["value"], err, o.MaxScanAge)
			}
		}
	}
	want := 2
	if o.RequireVulnScan {
		want = 3
	}
	if len(types) != want {
		t.Errorf("attestations %v, want %d", types, want)
	}
}

// TestValidatorCatchesMistakes proves the schema check can fail: each mutation of a
// generated document is refused, for the reason it was made.
func TestValidatorCatchesMistakes(t *testing.T) {
	out, err := policy.Generate(cases[2].opts) // keyless, vulnerability scan: every field in use
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(t, out)
	cipDoc, kyDoc := string(docs[1]), string(docs[2])
	for _, tc := range []struct {
		name, doc, old, new, want string
	}{
		{"unknown field (CIP)", cipDoc, "    - name: attestations\n", "    - name: attestations\n      keyy: {}\n", "keyy"},
		{"unknown field (Kyverno)", kyDoc, "          failureAction: Enforce\n", "          failureAction: Enforce\n          mutateDigests: true\n", "mutateDigests"},
		{"unknown metadata field", cipDoc, "metadata:\n", "metadata:\n  namespace: x\n  nmae: y\n", "nmae"},
		{"wrong type (CIP)", cipDoc, "  images:\n", "  images: registry.acme.com/*\n  imagez:\n", "images"},
		{"wrong type (Kyverno)", kyDoc, "webhookTimeoutSeconds: 30", "webhookTimeoutSeconds: thirty", "webhookTimeoutSeconds"},
		{"missing required (Kyverno rule name)", kyDoc, "    - name: verify-wso2img-images\n      match:", "    - match:", "name"},
		{"missing required (metadata.name)", cipDoc, "  name: wso2img-attestations\n", "", "name"},
		{"outside an enum (Kyverno)", kyDoc, "failureAction: Enforce", "failureAction: Deny", "failureAction"},
		{"wrong apiVersion", cipDoc, "policy.sigstore.dev/v1beta1", "policy.sigstore.dev/v1", "no CRD serves"},
		{"bad name", kyDoc, "  name: wso2img\n", "  name: WSO2IMG\n", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.doc, tc.old) {
				t.Fatalf("the document has no %q to mutate:\n%s", tc.old, tc.doc)
			}
			mutated := strings.Replace(tc.doc, tc.old, tc.new, 1)
			err := validate(t, []byte(mutated))
			if err == nil {
				t.Fatalf("the validator admits the mutated document:\n%s", mutated)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestGolden holds the output byte for byte (deterministic: keys in a fixed order); run
// `go test ./policy/ -update` after an intended change, and read the diff.
func TestGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := policy.Generate(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := policy.Generate(tc.opts)
			if !bytes.Equal(out, again) {
				t.Fatal("two runs with the same options differ")
			}
			golden := filepath.Join("testdata", "golden", tc.name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := readFile(t, golden); string(out) != want {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, out)
			}
		})
	}
}

// globMatch is policy-controller's glob as its pkg/apis/glob documents it: "*" is any
// run of characters but "/", "**" any run at all, anchored at both ends.
func pcMatch(glob, image string) bool {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**"):
			re.WriteString(".*")
			i++
		case glob[i] == '*':
			re.WriteString("[^/]*")
		default:
			re.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(image)
}

// kyMatch is Kyverno's wildcard: "*" any run of characters, "?" one.
func kyMatch(pattern, image string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(image)
}

// TestPatternsCoverExactlyTheRepository checks the patterns made from a repository under
// each engine's matching rules, on references as each engine spells them.
func TestPatternsCoverExactlyTheRepository(t *testing.T) {
	out, err := policy.Generate(policy.Options{Repositories: []string{repository, "acme/wso2am"}, PublicKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(t, out)
	var c cip
	if err := yaml.Unmarshal(docs[0], &c); err != nil {
		t.Fatal(err)
	}
	var globs []string
	for _, g := range c.Spec.Images {
		globs = append(globs, g.Glob)
	}
	var ky struct {
		Spec struct {
			Rules []struct {
				VerifyImages []struct {
					ImageReferences []string `yaml:"imageReferences"`
				} `yaml:"verifyImages"`
			}
		}
	}
	if err := yaml.Unmarshal(docs[2], &ky); err != nil {
		t.Fatal(err)
	}
	refs := ky.Spec.Rules[0].VerifyImages[0].ImageReferences
	digest := "@sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		pc, ky string // the reference as policy-controller and as Kyverno see it
		want   bool
	}{
		{repository + ":5.8.0.1565855673150.3", repository + ":5.8.0.1565855673150.3", true},
		{repository + digest, repository + digest, true},
		{"index.docker.io/acme/wso2am:4.2.0", "docker.io/acme/wso2am:4.2.0", true},
		{"index.docker.io/acme/wso2am" + digest, "docker.io/acme/wso2am" + digest, true},
		{repository + "-km:5.8.0", repository + "-km:5.8.0", false},
		{repository + "/debug:1", repository + "/debug:1", false},
		{"registry.acme.com/wso2/wso2am:4.2.0", "registry.acme.com/wso2/wso2am:4.2.0", false},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1", false},
	} {
		pc, k := false, false
		for _, g := range globs {
			pc = pc || pcMatch(g, tc.pc)
		}
		for _, r := range refs {
			k = k || kyMatch(r, tc.ky)
		}
		if pc != tc.want || k != tc.want {
			t.Errorf("%s: policy-controller covers it: %v, Kyverno: %v; want %v (globs %v, references %v)", tc.pc, pc, k, tc.want, globs, refs)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	base := func() policy.Options { return policy.Options{Repositories: []string{repository}, PublicKey: testKey} }
	for _, tc := range []struct {
		name   string
		mutate func(*policy.Options)
		want   string
	}{
		{"no images", func(o *policy.Options) { o.Repositories = nil }, "no images"},
		{"bad repository", func(o *policy.Options) { o.Repositories = []string{"Registry/UPPER"} }, `repository "Registry/UPPER"`},
		{"pattern policy-controller refuses", func(o *policy.Options) { o.Images = []string{"registry.acme.com/wso2?"} }, "policy-controller accepts only"},
		{"no trust", func(o *policy.Options) { o.PublicKey = "" }, "no trust"},
		{"key and identity", func(o *policy.Options) { o.Identity = githubID }, "both a public key and a keyless identity"},
		{"not a PEM key", func(o *policy.Options) { o.PublicKey = "ssh-ed25519 AAAA" }, "not a PEM public key"},
		{"roots with a key", func(o *policy.Options) { o.CARoots = testRoots }, "only apply to keyless"},
		{"subject twice", func(o *policy.Options) {
			o.PublicKey, o.Identity = "", githubID
			o.Identity.SubjectRegExp = ".*"
		}, "both a subject and a subject regexp"},
		{"no issuer", func(o *policy.Options) { o.PublicKey, o.Identity = "", policy.Identity{Subject: "a@b.c"} }, "no OIDC issuer"},
		{"bad regexp", func(o *policy.Options) {
			o.PublicKey, o.Identity = "", policy.Identity{SubjectRegExp: "(", Issuer: "https://x"}
		}, "subject regexp"},
		{"http rekor", func(o *policy.Options) { o.RekorURL = "http://rekor" }, "want https://"},
		{"rekor and no tlog", func(o *policy.Options) { o.RekorURL, o.IgnoreTlog = "https://rekor", true }, "Rekor URL with the transparency log ignored"},
		{"scan without age", func(o *policy.Options) { o.RequireVulnScan = true }, "maximum age"},
		{"age without scan", func(o *policy.Options) { o.MaxScanAge = time.Hour }, "without requiring"},
		{"bad name", func(o *policy.Options) { o.Name = "WSO2_img" }, `policy name "WSO2_img"`},
		{"bad engine", func(o *policy.Options) { o.Engines = []policy.Engine{"gatekeeper"} }, `engine "gatekeeper"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mutate(&o)
			_, err := policy.Generate(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// FuzzGenerate: whatever repositories, patterns and identities it is given, Generate
// either refuses them or writes documents that pass their CRDs' schemas.
func FuzzGenerate(f *testing.F) {
	f.Add(repository, "registry.acme.com/**", "", "", false)
	f.Add("acme/wso2am", "", githubID.Subject, githubID.Issuer, true)
	f.Add("127.0.0.1:5000/x", "*", "a@b.c", "https://accounts.google.com", false)
	f.Fuzz(func(t *testing.T, repo, image, subject, issuer string, ignoreTlog bool) {
		o := policy.Options{IgnoreTlog: ignoreTlog}
		if repo != "" {
			o.Repositories = []string{repo}
		}
		if image != "" {
			o.Images = []string{image}
		}
		if subject == "" && issuer == "" {
			o.PublicKey = testKey
		} else {
			o.Identity = policy.Identity{Subject: subject, Issuer: issuer}
		}
		out, err := policy.Generate(o)
		if err != nil {
			return
		}
		for _, d := range splitDocs(t, out) {
			if err := validate(t, d); err != nil {
				t.Errorf("options %+v: a document fails its CRD: %v\n%s", o, err, d)
			}
		}
	})
}
