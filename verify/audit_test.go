package verify_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/verify"
)

// memRegistry is go-containerregistry's in-process registry: enough for audits, which
// only read manifests, configs and layers.
func memRegistry(t *testing.T) (host string, ro registry.Options) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	return host, registry.Options{Insecure: []string{host}}
}

// audit pushes img and audits it (signature not checked) under policy p.
func audit(t *testing.T, img v1.Image, p *verify.Policy) (*verify.Report, error) {
	t.Helper()
	host, ro := memRegistry(t)
	ref := signtest.Push(t, host+"/acme/wso2is:test", img)
	v, err := verify.New(context.Background(), verify.Options{Registry: ro, SkipSignature: true, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(context.Background(), ref.String())
}

func check(t *testing.T, r *verify.Report, id string) verify.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", id, r.Checks)
	return verify.Check{}
}

// TestAuditGoodImage: a well-behaved wso2img image passes every check; HEALTHCHECK is
// advice (WSO2 images have none) and names the probe WSO2's Helm charts use.
func TestAuditGoodImage(t *testing.T) {
	r, err := audit(t, signtest.Image(t, signtest.Config(), signtest.Files()), nil)
	if err != nil {
		t.Fatalf("%v\n%+v", err, r)
	}
	if !r.Passed || len(r.Platforms) != 1 || r.Platforms[0] != "linux/amd64" {
		t.Errorf("report %+v", r)
	}
	want := map[string]verify.Status{
		verify.CheckSignature: verify.Skip, verify.CheckUser: verify.Pass, verify.CheckBase: verify.Skip,
		verify.CheckPorts: verify.Pass, verify.CheckSetuid: verify.Pass, verify.CheckEnvSecrets: verify.Pass,
		verify.CheckHistorySecrets: verify.Pass, verify.CheckHealthcheck: verify.Advice, verify.CheckLabels: verify.Pass,
	}
	for id, st := range want {
		if c := check(t, r, id); c.Status != st {
			t.Errorf("%s: %s (%s), want %s", id, c.Status, c.Detail, st)
		}
	}
	if hc := check(t, r, verify.CheckHealthcheck); !strings.Contains(hc.Detail, "/api/health-check/v1.0/health") || hc.Rule != "CIS Docker Benchmark 4.6" {
		t.Errorf("healthcheck advice: %+v", hc)
	}
}

// TestAuditUser: every spelling of root fails CIS 4.1; names resolve through the
// image's /etc/passwd.
func TestAuditUser(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\nwso2carbon:x:802:802::/home/wso2carbon:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"
	files := []signtest.File{{Path: "etc", Dir: true, Mode: 0o755}, {Path: "etc/passwd", Mode: 0o644, Data: passwd}}
	for _, tc := range []struct {
		user string
		want verify.Status
	}{
		{"", verify.Fail},
		{"root", verify.Fail},
		{"0", verify.Fail},
		{"00", verify.Fail},
		{"0:0", verify.Fail},
		{"root:root", verify.Fail},
		{"0:802", verify.Fail},
		{"root:wso2", verify.Fail},
		{"toor", verify.Fail},        // uid 0 under another name
		{"nobody-here", verify.Fail}, // not in /etc/passwd
		{"802:802", verify.Pass},
		{"802", verify.Pass},
		{"802:0", verify.Pass}, // group root is fine (OpenShift runs so)
		{"wso2carbon", verify.Pass},
		{"wso2carbon:wso2", verify.Pass},
	} {
		t.Run(tc.user, func(t *testing.T) {
			cfg := signtest.Config()
			cfg.User = tc.user
			r, err := audit(t, signtest.Image(t, cfg, files), nil)
			c := check(t, r, verify.CheckUser)
			if c.Status != tc.want {
				t.Fatalf("USER %q: %s (%s), want %s", tc.user, c.Status, c.Detail, tc.want)
			}
			if c.Rule != "CIS Docker Benchmark 4.1" {
				t.Errorf("rule %q", c.Rule)
			}
			var verr *verify.ViolationError
			if (tc.want == verify.Fail) != errors.As(err, &verr) {
				t.Errorf("error %v", err)
			}
		})
	}
	t.Run("allowRoot", func(t *testing.T) {
		cfg := signtest.Config()
		cfg.User = "root"
		p := verify.DefaultPolicy()
		p.AllowRoot = true
		r, err := audit(t, signtest.Image(t, cfg, files), p)
		if err != nil || check(t, r, verify.CheckUser).Status != verify.Advice {
			t.Errorf("allowRoot: %v %+v", err, check(t, r, verify.CheckUser))
		}
	})
}

// TestAuditPorts: a port outside WSO2's products fails (CIS 5.8, a runtime item); a
// policy can widen the set.
func TestAuditPorts(t *testing.T) {
	cfg := signtest.Config()
	cfg.ExposedPorts["22/tcp"] = struct{}{}
	cfg.ExposedPorts["9443/udp"] = struct{}{}
	img := signtest.Image(t, cfg, signtest.Files())
	r, err := audit(t, img, nil)
	c := check(t, r, verify.CheckPorts)
	if err == nil || c.Status != verify.Fail || !slices.Equal(c.Findings, []string{"22/tcp", "9443/udp"}) || !strings.Contains(c.Rule, "5.8") || !strings.Contains(c.Rule, "runtime") {
		t.Errorf("%v %+v", err, c)
	}
	p := verify.DefaultPolicy()
	p.Ports = append(p.Ports, "22", "9443/udp")
	if r, err := audit(t, img, p); err != nil {
		t.Errorf("with 22 and 9443/udp allowed: %v %+v", err, check(t, r, verify.CheckPorts))
	}
	// The default set is the stock profiles' ports.
	for _, port := range []string{"9443", "9763", "4000", "8280", "8243", "8290", "8253", "5672"} {
		if !slices.Contains(verify.WSO2Ports(), port) {
			t.Errorf("WSO2Ports lacks %s: %v", port, verify.WSO2Ports())
		}
	}
}

// TestAuditSetuid: a setuid or setgid file in any layer fails CIS 4.8, unless a later
// layer deletes it (whiteout, opaque directory) or replaces it without the bit, or the
// policy allows the path.
func TestAuditSetuid(t *testing.T) {
	suid := []signtest.File{{Path: "usr", Dir: true, Mode: 0o755}, {Path: "usr/bin", Dir: true, Mode: 0o755},
		{Path: "usr/bin/su", Mode: 0o4755, Data: "x"}, {Path: "usr/bin/wall", Mode: 0o2755, Data: "x"}}
	for _, tc := range []struct {
		name   string
		layers [][]signtest.File
		want   verify.Status
		found  []string
	}{
		{"in the base layer", [][]signtest.File{suid, signtest.Files()}, verify.Fail,
			[]string{"/usr/bin/su (setuid 4755 0:0)", "/usr/bin/wall (setgid 2755 0:0)"}},
		{"in the added layer", [][]signtest.File{signtest.Files(), suid}, verify.Fail, nil},
		{"deleted by a whiteout", [][]signtest.File{suid, append(signtest.Files(),
			signtest.File{Path: "usr/bin/.wh.su", Mode: 0o644}, signtest.File{Path: "usr/bin/.wh.wall", Mode: 0o644})}, verify.Pass, nil},
		{"hidden by an opaque directory", [][]signtest.File{suid, append(signtest.Files(),
			signtest.File{Path: "usr/bin", Dir: true, Mode: 0o755}, signtest.File{Path: "usr/bin/.wh..wh..opq", Mode: 0o644})}, verify.Pass, nil},
		{"replaced without the bit", [][]signtest.File{suid, append(signtest.Files(),
			signtest.File{Path: "usr/bin/su", Mode: 0o755, Data: "y"}, signtest.File{Path: "usr/bin/wall", Mode: 0o755, Data: "y"})}, verify.Pass, nil},
		{"a setgid directory is not a finding", [][]signtest.File{append(signtest.Files(),
			signtest.File{Path: "var", Dir: true, Mode: 0o2775})}, verify.Pass, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := audit(t, signtest.Image(t, signtest.Config(), tc.layers...), nil)
			c := check(t, r, verify.CheckSetuid)
			if c.Status != tc.want || (tc.found != nil && !slices.Equal(c.Findings, tc.found)) || c.Rule != "CIS Docker Benchmark 4.8" {
				t.Errorf("%+v", c)
			}
		})
	}
	p := verify.DefaultPolicy()
	p.AllowSetuid = []string{"/usr/bin/su", "/usr/bin/wall"}
	if r, err := audit(t, signtest.Image(t, signtest.Config(), suid, signtest.Files()), p); err != nil {
		t.Errorf("allowed setuid files: %v %+v", err, check(t, r, verify.CheckSetuid))
	}
}

// TestAuditSecrets: secret-looking environment variables and history entries fail CIS
// 4.10; values are never printed.
func TestAuditSecrets(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		cfg := signtest.Config()
		cfg.Env = append(cfg.Env, "DB_PASSWORD=hunter2", "AWS_SECRET_ACCESS_KEY=abc", "KEYSTORE_PASSWORD_FILE=/run/secrets/ks",
			"EMPTY_TOKEN=", "TLS_KEY=-----BEGIN RSA PRIVATE KEY-----\nMII…")
		r, err := audit(t, signtest.Image(t, cfg, signtest.Files()), nil)
		c := check(t, r, verify.CheckEnvSecrets)
		want := []string{"DB_PASSWORD (value hidden)", "AWS_SECRET_ACCESS_KEY (value hidden)", "TLS_KEY (value hidden)"}
		if err == nil || c.Status != verify.Fail || !slices.Equal(c.Findings, want) || c.Rule != "CIS Docker Benchmark 4.10" {
			t.Errorf("%v %+v", err, c)
		}
		if strings.Contains(strings.Join(c.Findings, " ")+c.Detail, "hunter2") {
			t.Error("a secret value is in the report")
		}
		p := verify.DefaultPolicy()
		p.AllowEnv = []string{"DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "TLS_KEY"}
		if r, err := audit(t, signtest.Image(t, cfg, signtest.Files()), p); err != nil {
			t.Errorf("allowed: %v %+v", err, check(t, r, verify.CheckEnvSecrets))
		}
	})
	for _, tc := range []struct {
		createdBy string
		secret    bool
	}{
		{`ENV DB_PASSWORD=hunter2`, true},
		{`|2 ADMIN_PASSWORD=s3cret VERSION=1 /bin/sh -c ./setup.sh`, true},
		{`RUN mysql --password=hunter2 -e 'select 1'`, true},
		{`RUN curl https://deploy:t0ken@repo.example.com/x.jar -o x.jar`, true},
		{`RUN echo "-----BEGIN OPENSSH PRIVATE KEY-----" > /root/.ssh/id`, true},
		{`RUN export AWS_SECRET_ACCESS_KEY; aws s3 cp s3://b/x .`, true},
		{`RUN git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/x/y`, true},
		{`ENV WSO2_SERVER_HOME=/home/wso2carbon/wso2is-5.8.0`, false},
		{`ENV KEYSTORE_PASSWORD_FILE=/run/secrets/keystore`, false},
		{`ENV DB_PASSWORD=$DB_PASSWORD_FROM_RUNTIME`, false},
		{`RUN ./configure --password-file /run/secrets/pw`, false},
		{`wso2img: add 2 input(s) of profile wso2is as 802:802 under /home/wso2carbon/wso2is-5.8.0`, false},
	} {
		t.Run(tc.createdBy, func(t *testing.T) {
			img := signtest.WithHistory(t, signtest.Image(t, signtest.Config(), signtest.Files()), tc.createdBy)
			r, _ := audit(t, img, nil)
			c := check(t, r, verify.CheckHistorySecrets)
			if (c.Status == verify.Fail) != tc.secret {
				t.Errorf("%q: %+v", tc.createdBy, c)
			}
			if strings.Contains(strings.Join(c.Findings, " "), "hunter2") {
				t.Error("a secret value is in the report")
			}
		})
	}
}

// TestAuditLabels: a required label missing fails (wso2img's own rule).
func TestAuditLabels(t *testing.T) {
	cfg := signtest.Config()
	delete(cfg.Labels, "io.wso2img.product")
	cfg.Labels["org.opencontainers.image.base.name"] = ""
	r, err := audit(t, signtest.Image(t, cfg, signtest.Files()), nil)
	c := check(t, r, verify.CheckLabels)
	if err == nil || c.Status != verify.Fail || !slices.Equal(c.Findings, []string{"org.opencontainers.image.base.name", "io.wso2img.product"}) || c.Rule != "wso2img" {
		t.Errorf("%v %+v", err, c)
	}
}

// TestAuditBaseAllowlist: with an allowlist, the base digest label must be on it.
func TestAuditBaseAllowlist(t *testing.T) {
	other := "sha256:" + strings.Repeat("9", 64)
	img := signtest.Image(t, signtest.Config(), signtest.Files())
	noLabel := signtest.Config()
	delete(noLabel.Labels, "org.opencontainers.image.base.digest")
	for _, tc := range []struct {
		name  string
		img   v1.Image
		allow []string
		want  verify.Status
	}{
		{"no allowlist", img, nil, verify.Skip},
		{"allowed", img, []string{other, signtest.BaseDigest}, verify.Pass},
		{"not allowed", img, []string{other}, verify.Fail},
		{"no label", signtest.Image(t, noLabel, signtest.Files()), []string{signtest.BaseDigest}, verify.Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := verify.DefaultPolicy()
			p.BaseDigests = tc.allow
			p.RequiredLabels = nil
			r, _ := audit(t, tc.img, p)
			if c := check(t, r, verify.CheckBase); c.Status != tc.want || c.Rule != "CIS Docker Benchmark 4.2" {
				t.Errorf("%+v", c)
			}
		})
	}
}

// TestAuditHealthcheck: present passes; missing is advice, or a failure when required.
func TestAuditHealthcheck(t *testing.T) {
	cfg := signtest.Config()
	cfg.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "curl", "-fsk", "https://localhost:9443/api/health-check/v1.0/health"}}
	r, err := audit(t, signtest.Image(t, cfg, signtest.Files()), nil)
	if c := check(t, r, verify.CheckHealthcheck); err != nil || c.Status != verify.Pass {
		t.Errorf("%v %+v", err, c)
	}
	p := verify.DefaultPolicy()
	p.RequireHealthcheck = true
	r, err = audit(t, signtest.Image(t, signtest.Config(), signtest.Files()), p)
	if c := check(t, r, verify.CheckHealthcheck); err == nil || c.Status != verify.Fail {
		t.Errorf("%v %+v", err, c)
	}
}

// TestAuditEveryPlatform: each platform of an index is audited on its own.
func TestAuditEveryPlatform(t *testing.T) {
	good := signtest.Image(t, signtest.Config(), signtest.Files())
	rootCfg := signtest.Config()
	rootCfg.User = ""
	bad := signtest.Image(t, rootCfg, signtest.Files())
	cf, _ := bad.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	bad, _ = mutate.ConfigFile(bad, cf)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: good, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: bad, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	host, ro := memRegistry(t)
	ref := signtest.Push(t, host+"/acme/multi:1", idx)
	v, err := verify.New(context.Background(), verify.Options{Registry: ro, SkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.Verify(context.Background(), ref.String())
	var verr *verify.ViolationError
	if !errors.As(err, &verr) || len(verr.Failed) != 1 || verr.Failed[0].ID != verify.CheckUser || verr.Failed[0].Platform != "linux/arm64" {
		t.Fatalf("%v", err)
	}
	if !slices.Equal(r.Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", r.Platforms)
	}
	if !strings.Contains(err.Error(), "user (linux/arm64)") {
		t.Errorf("error %q", err)
	}
}

// TestAuditHostileImages: images made to slip past the audit are caught.
func TestAuditHostileImages(t *testing.T) {
	etc := signtest.File{Path: "etc", Dir: true, Mode: 0o755}
	good := "root:x:0:0:root:/root:/bin/sh\nwso2carbon:x:802:802::/home/wso2carbon:/bin/sh\n"
	for _, tc := range []struct {
		name   string
		user   string
		env    []string
		layers [][]signtest.File
		check  string
		detail string // in the failing check's detail or findings
	}{
		{name: "passwd line with leading spaces maps the user to uid 0", user: "wso2carbon", check: verify.CheckUser, detail: "uid 0",
			layers: [][]signtest.File{{etc, {Path: "etc/passwd", Mode: 0o644, Data: "root:x:0:0::/root:/bin/sh\n   wso2carbon:x:0:0::/home/wso2carbon:/bin/sh\nwso2carbon:x:802:802::/:/bin/sh\n"}}}},
		{name: "symlinked passwd", user: "wso2carbon", check: verify.CheckUser, detail: "a symlink to /tmp/pw",
			layers: [][]signtest.File{{etc, {Path: "etc/passwd", Mode: 0o644, Data: good}},
				{{Path: "tmp", Dir: true, Mode: 0o1777}, {Path: "tmp/pw", Mode: 0o644, Data: "wso2carbon:x:0:0::/:/bin/sh\n"}, {Path: "etc/passwd", Symlink: "/tmp/pw"}}}},
		{name: "setuid file reachable through a hard link after its original is deleted", user: "802:802", check: verify.CheckSetuid, detail: "/opt/x (setuid 4755 0:0 (hard link to /bin/su))",
			layers: [][]signtest.File{{etc, {Path: "etc/passwd", Mode: 0o644, Data: good}, {Path: "bin", Dir: true, Mode: 0o755}, {Path: "bin/su", Mode: 0o4755, Data: "su"}, {Path: "opt", Dir: true, Mode: 0o755}, {Path: "opt/x", HardLink: "bin/su"}},
				{{Path: "bin/su", Whiteout: true}}}},
		{name: "secret env without underscores", user: "802:802", env: []string{"DBPASSWORD=s3cret"}, check: verify.CheckEnvSecrets, detail: "DBPASSWORD"},
		{name: "secret env in camelCase", user: "802:802", env: []string{"dbPassword=s3cret"}, check: verify.CheckEnvSecrets, detail: "dbPassword"},
		{name: "MYSQL_PWD", user: "802:802", env: []string{"MYSQL_PWD=s3cret"}, check: verify.CheckEnvSecrets, detail: "MYSQL_PWD"},
		{name: "-D...Password= inside JAVA_OPTS", user: "802:802", env: []string{"JAVA_OPTS=-Xmx2g -Djavax.net.ssl.trustStorePassword=wso2carbon"}, check: verify.CheckEnvSecrets, detail: "-Djavax.net.ssl.trustStorePassword=…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := signtest.Config()
			cfg.User = tc.user
			cfg.Env = append(cfg.Env, tc.env...)
			layers := tc.layers
			if layers == nil {
				layers = [][]signtest.File{signtest.Files()}
			}
			r, err := audit(t, signtest.Image(t, cfg, layers...), nil)
			var verr *verify.ViolationError
			c := check(t, r, tc.check)
			if !errors.As(err, &verr) || c.Status != verify.Fail {
				t.Fatalf("%s: %s (%s), error %v", tc.check, c.Status, c.Detail, err)
			}
			if !strings.Contains(c.Detail+" "+strings.Join(c.Findings, " "), tc.detail) {
				t.Errorf("%s says %q %q, want %q", tc.check, c.Detail, c.Findings, tc.detail)
			}
			// The value of a secret is never printed.
			for _, f := range c.Findings {
				if strings.Contains(f, "s3cret") || strings.Contains(f, "=wso2carbon") {
					t.Errorf("a finding shows the secret: %q", f)
				}
			}
		})
	}
	// Names that only point at a secret, or are no secret, pass.
	cfg := signtest.Config()
	cfg.Env = append(cfg.Env, "PWD=/home/wso2carbon", "KEYSTORE_PASSWORD_FILE=/run/secrets/ks", "JAVA_OPTS=-Djavax.net.ssl.trustStorePassword=$TS_PASSWORD -Xmx1g", "PASSPORT_MODE=strict")
	r, _ := audit(t, signtest.Image(t, cfg, signtest.Files()), nil)
	if c := check(t, r, verify.CheckEnvSecrets); c.Status != verify.Pass {
		t.Errorf("harmless variables: %s %q", c.Detail, c.Findings)
	}
}
