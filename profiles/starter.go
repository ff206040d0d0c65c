package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// StarterOptions choose what a starter profile says beyond its stock profile.
type StarterOptions struct {
	// File is where the profile will be written ("" for stdout). It names the file in
	// the profile's comments and in error messages; relative paths resolve against it.
	File string
	// Update is the update to build on. The zero Update follows the latest update of
	// the stock profile's kind (see StockUpdateKind).
	Update Update
	// Target is the repository to push to; "" writes ExampleRegistry/<product>, with a
	// comment to change it.
	Target string
}

// ExampleRegistry is the registry and organisation of a starter profile's target when
// none is given: a placeholder that is a valid reference, so the file loads as written.
const ExampleRegistry = "registry.example.com/acme"

// StarterIgnoreFile is the name of the Trivy ignore file a starter profile's scan
// block refers to, next to the profile.
const StarterIgnoreFile = ".trivyignore.yaml"

// exampleJar is the JDBC driver the starter's commented inputs show: a real artifact on
// Maven Central, so the example needs only its checksum filled in.
const exampleJar = "https://repo1.maven.org/maven2/com/mysql/mysql-connector-j/8.4.0/mysql-connector-j-8.4.0.jar"

// exampleSHA256 stands where the jar's checksum goes. It is not a checksum on purpose:
// an uncommented example fails to load until a real one replaces it.
const exampleSHA256 = "PUT-THE-SHA256-OF-THE-JAR-HERE"

// UnknownStockError is a stock profile name that does not exist.
type UnknownStockError struct {
	Name string
	// Known lists the stock profiles, sorted.
	Known []string
}

func (e *UnknownStockError) Error() string {
	msg := fmt.Sprintf("no stock profile %q", e.Name)
	if s := closest(e.Name, e.Known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + "; the stock profiles are:\n  " + strings.Join(e.Known, "\n  ")
}

// LookupStock returns the stock profile called name, or an *UnknownStockError.
func LookupStock(name string) (Stock, error) {
	p, err := stock(name)
	if err != nil {
		return Stock{}, err
	}
	return Stock{Name: name, Profile: p}, nil
}

// stock decodes the stock profile called name.
func stock(name string) (*Profile, error) {
	data, ok := stockFiles[name]
	if !ok {
		known := make([]string, 0, len(stockFiles))
		for n := range stockFiles {
			known = append(known, n)
		}
		sort.Strings(known)
		return nil, &UnknownStockError{Name: name, Known: known}
	}
	p, err := decodeOne(&source{file: "stock:" + name, data: data})
	if err != nil {
		panic(fmt.Sprintf("profiles: stock profile %s: %v", name, err))
	}
	p.Name = name
	return p, nil
}

// StockUpdateKind is the kind of update the images of a stock profile carry: "wum" for
// the WUM-era images of docker.wso2.com (WUM was retired in 2023), "level" (Updates 2.0)
// for every other.
func StockUpdateKind(p *Profile) string {
	if host, _, _ := strings.Cut(p.Base.Image, "/"); host == "docker.wso2.com" {
		return "wum"
	}
	return "level"
}

// productTitles name the products in prose.
var productTitles = map[string]string{
	"wso2is":              "WSO2 Identity Server",
	"wso2am":              "WSO2 API Manager",
	"wso2am-acp":          "WSO2 API Manager control plane",
	"wso2am-tm":           "WSO2 API Manager traffic manager",
	"wso2am-universal-gw": "WSO2 API Manager universal gateway",
	"wso2mi":              "WSO2 Micro Integrator",
}

// starterData is what the starter template is filled with.
type starterData struct {
	Stock, Title, Version, Base, Home, Ports, File string
	UID, GID                                       int
	Update                                         string // "level: latest"
	Kind, Follows                                  string // "level"/"wum"; the kind followed, or ""
	Target                                         string
	DefaultTarget, Signed, MI                      bool
	JarURL, JarSHA256, JarDest, ConfDest           string
}

// Starter renders a commented starter profile that extends the stock profile named
// stockName with an update and a target, and shows (commented out) how to add inputs,
// env, ports, the base's signature check and the vulnerability gate. It checks that the
// result loads as written. The error is an *UnknownStockError for an unknown name, an
// *Error when the options do not make a valid profile.
func Starter(stockName string, o StarterOptions) ([]byte, error) {
	p, err := stock(stockName)
	if err != nil {
		return nil, err
	}
	d := starterData{
		Stock: stockName, Version: p.Version, Base: p.Base.Image, Home: p.Home,
		UID: p.User.UID, GID: p.User.GID, Kind: StockUpdateKind(p), Target: o.Target,
		JarURL: exampleJar, JarSHA256: exampleSHA256,
		JarDest: "repository/components/lib/", ConfDest: "repository/conf/deployment.toml",
		File: "FILE",
	}
	if o.File != "" {
		d.File = o.File
	}
	d.Title = productTitles[p.Product]
	if d.Title == "" {
		d.Title = p.Product
	}
	if p.OS != "" {
		d.Version += " (" + p.OS + p.OSVersion + ")"
	}
	ports := make([]string, len(p.Ports))
	for i, n := range p.Ports {
		ports[i] = strconv.Itoa(n)
	}
	d.Ports = strings.Join(ports, ", ")
	switch u := o.Update; {
	case u.WUM != 0:
		d.Update = "wum: " + strconv.FormatInt(u.WUM, 10)
	case u.Level != 0:
		d.Update = "level: " + strconv.Itoa(u.Level)
	default:
		kind := u.Latest
		if kind == "" {
			kind = d.Kind
		}
		d.Update, d.Follows = kind+": latest", kind
	}
	if d.Target == "" {
		d.Target, d.DefaultTarget = ExampleRegistry+"/"+p.Product, true
	}
	// WSO2 signs the images of registry.wso2.com (since 2026), not the WUM-era ones.
	if host, _, _ := strings.Cut(p.Base.Image, "/"); host == "registry.wso2.com" {
		d.Signed = true
	}
	// Micro Integrator keeps third-party jars in lib/ and its config in conf/.
	if p.Product == "wso2mi" {
		d.MI, d.JarDest, d.ConfDest = true, "lib/", "conf/deployment.toml"
	}

	var buf bytes.Buffer
	if err := starterTemplate.Execute(&buf, d); err != nil {
		panic("profiles: rendering the starter template: " + err.Error())
	}
	file := o.File
	if file == "" {
		// Not saved yet: its name is the user's to choose, so check it under a valid one.
		file = "starter.yaml"
	}
	if _, err := Parse(file, buf.Bytes()); err != nil {
		var perr *Error
		if errors.As(err, &perr) && o.File == "" {
			perr.File = "<stdout>"
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

var starterTemplate = template.Must(template.New("starter").Parse(`# {{.Title}} {{.Version}}, extended with your own files: a wso2img profile.
# Written by ` + "`wso2img init --from {{.Stock}}`" + `. Check it with ` + "`wso2img plan {{.File}}`" + `
# (it resolves the base and verifies every input, and builds nothing); build, sign and
# push it with ` + "`wso2img build {{.File}}`" + `.
#
# The stock profile {{.Stock}} fixes what WSO2's image is: the base
# {{.Base}}, the product user {{.UID}}:{{.GID}}, the product home
# {{.Home}} and the ports. A field written here overrides it;
# see it with ` + "`wso2img profiles show {{.Stock}}`" + `.
extends: {{.Stock}}

# The WSO2 update to build on.
{{- if eq .Follows "level"}}
# "level: latest" follows the newest update level WSO2 has published for {{.Version}},
# read from the base repository's tags at every plan and build. Pin a level (level: 12)
# to rebuild exactly the same update.
{{- else if eq .Follows "wum"}}
# "wum: latest" follows the newest WUM update WSO2 has published for {{.Version}}, read
# from the base repository's tags at every plan and build. Pin a WUM timestamp
# (wum: 1565855673150, from the updated pack's name) to rebuild exactly the same update.
{{- else}}
# Pinned; "{{.Kind}}: latest" would follow the newest one WSO2 publishes.
{{- end}}
update:
  {{.Update}}

# Where the image is pushed, by digest, before any tag is written.
{{- if .DefaultTarget}}
# CHANGE THIS to your registry and organisation. ` + "`wso2img build --registry HOST/ORG`" + `
# replaces all but the last element at build time.
{{- end}}
target:
  repository: {{.Target}}
{{- if .Signed}}

# WSO2 signs its registry.wso2.com images with cosign, and {{.Stock}} checks the base's
# signature with WSO2's public key (embedded in wso2img, from
# https://updates.docs.wso2.com/en/latest/updates/registry-image-verification/) before
# anything is built. To build on an unsigned copy (a mirror of Docker Hub's public
# images, say), uncomment; every run will warn that the base is not checked:
# base:
#   verify: false
{{- end}}

# What the image adds: one layer, owned by {{.UID}}:{{.GID}}. A relative dest is inside the
# product home; a dest ending in / keeps the source's file name. A url must be https and
# carry a sha256 (or sha512): wso2img verifies every input before building. Uncomment
# what you need.
# inputs:
#   # A JDBC driver from Maven Central. Put its real sha256 in place of the placeholder:
#   # compute it from a copy you trust (curl -fsSL URL | sha256sum).
#   - url: {{.JarURL}}
#     sha256: "{{.JarSHA256}}"
#     dest: {{.JarDest}}
#   # Your deployment.toml, kept next to this file (local paths are relative to it).
#   - path: conf/deployment.toml
#     dest: {{.ConfDest}}
#     mode: "0640"
{{- if .MI}}
#   # The Carbon applications (.car) of your integration project, from a folder here.
#   - path: carbonapps
#     dest: repository/deployment/server/carbonapps/
{{- end}}

# Environment variables set in the image. Never secrets: anyone who can pull the image
# can read them. Pass secrets at run time (a Kubernetes Secret, say).
# env:
#   JAVA_OPTS: "-Xms1g -Xmx2g"

# The image exposes exactly these ports; {{.Stock}} gives {{.Ports}}.
# Uncomment to change them: add one you open in deployment.toml, drop one you do not use.
# ports: [{{.Ports}}]

# The vulnerability gate (being added to wso2img): scan what this profile adds and refuse
# to tag an image with findings of this severity or worse, except those accepted in
# ` + StarterIgnoreFile + ` next to this file. Uncomment once your wso2img has it.
# scan:
#   severity: HIGH
#   ignore: ` + StarterIgnoreFile + `
#   scope: added
`))

// StarterIgnore renders a stub of the Trivy ignore file (Trivy's YAML format) for a
// starter profile of the stock profile named stockName: it accepts nothing, and shows a
// commented example entry for the JDBC driver of the starter's example inputs, expiring
// on expires.
func StarterIgnore(stockName string, expires time.Time) ([]byte, error) {
	p, err := stock(stockName)
	if err != nil {
		return nil, err
	}
	dest := "repository/components/lib/"
	if p.Product == "wso2mi" {
		dest = "lib/"
	}
	u, err := url.Parse(exampleJar)
	if err != nil {
		panic(err)
	}
	// Trivy names files in an image by their path without the leading slash.
	jar := strings.TrimPrefix(path.Join(p.Home, dest, path.Base(u.Path)), "/")
	var buf bytes.Buffer
	err = ignoreTemplate.Execute(&buf, map[string]string{
		"Stock":   stockName,
		"Jar":     jar,
		"Expires": expires.UTC().Format("2006-01-02"),
	})
	if err != nil {
		panic("profiles: rendering the ignore template: " + err.Error())
	}
	return buf.Bytes(), nil
}

var ignoreTemplate = template.Must(template.New("ignore").Parse(`# Findings the vulnerability gate accepts, in Trivy's YAML ignore format (see "By
# Finding IDs" in https://trivy.dev/docs/latest/configuration/filtering/; Trivy reads it
# with ` + "`trivy image --ignorefile .trivyignore.yaml IMAGE`" + `). Written by
# ` + "`wso2img init --from {{.Stock}}`" + `, it accepts nothing yet.
#
# Keep each entry narrow: the finding's id, the paths (or package URLs, "purls") it is
# accepted in, an expired_at date after which it counts again, and a statement saying why
# it is accepted and who decided. Paths are inside the image, without the leading slash.
vulnerabilities:
# For example, a finding in the JDBC driver of the profile's example inputs:
#  - id: CVE-YYYY-NNNNN
#    paths:
#      - "{{.Jar}}"
#    expired_at: {{.Expires}}
#    statement: "Not reachable here: the vulnerable code needs X, which we do not use. Accepted by <team> in <ticket>."
misconfigurations:
secrets:
licenses:
`))
