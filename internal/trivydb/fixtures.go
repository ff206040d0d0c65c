package trivydb

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
)

// Log4Shell is CVE-2021-44228 as the real DB has it for Maven: log4j-core below 2.15.0
// is CRITICAL. Write(dir, Log4Shell.Advisories, Log4Shell.Vulnerabilities) makes a DB in
// which a jar from MavenJar("org.apache.logging.log4j", "log4j-core", "2.14.1") fails a
// gate at any threshold.
var Log4Shell = struct {
	Advisories      []Advisory
	Vulnerabilities []Vulnerability
}{
	Advisories: []Advisory{{
		Bucket:             BucketMavenGHSA,
		Package:            "org.apache.logging.log4j:log4j-core",
		VulnerabilityID:    "CVE-2021-44228",
		VulnerableVersions: []string{">= 2.0.0-beta9, < 2.15.0"},
		PatchedVersions:    []string{"2.15.0"},
	}},
	Vulnerabilities: []Vulnerability{{
		ID:         "CVE-2021-44228",
		Title:      "log4j-core: Remote code execution in Log4j 2.x when logs contain an attacker-controlled string value",
		Severity:   "CRITICAL",
		References: []string{"https://nvd.nist.gov/vuln/detail/CVE-2021-44228"},
	}},
}

// MavenJar returns a jar (a zip) that Trivy identifies as groupID:artifactID at version by
// its META-INF/maven/…/pom.properties, as Maven builds them. Name it
// artifactID-version.jar in an image for Trivy to trust the pom.properties alone; under
// any other name Trivy also looks its SHA-1 up in the Java DB (empty here: not found)
// and still reports the package.
func MavenJar(groupID, artifactID, version string) ([]byte, error) {
	for _, s := range []string{groupID, artifactID, version} {
		if s == "" || strings.ContainsAny(s, "/\n=") {
			return nil, fmt.Errorf("trivydb: bad Maven coordinate %q", s)
		}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range []struct{ name, body string }{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nImplementation-Title: " + artifactID + "\r\nImplementation-Version: " + version + "\r\n\r\n"},
		{"META-INF/maven/" + groupID + "/" + artifactID + "/pom.properties", "groupId=" + groupID + "\nartifactId=" + artifactID + "\nversion=" + version + "\n"},
	} {
		w, err := zw.Create(e.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Musl is CVE-2025-26519 as the real DB has it for Alpine 3.20's musl, and the files of
// an Alpine 3.20.3 package database holding the vulnerable musl 1.2.5-r0: a stand-in base
// with Files (standin.Options.Extra) carries a HIGH finding of its own, which scope
// "added" does not hold against what a profile adds.
var Musl = struct {
	Advisories      []Advisory
	Vulnerabilities []Vulnerability
	Files           map[string][]byte
}{
	Advisories: []Advisory{{Bucket: BucketAlpine320, Package: "musl", VulnerabilityID: "CVE-2025-26519", FixedVersion: "1.2.5-r1"}},
	Vulnerabilities: []Vulnerability{{ID: "CVE-2025-26519", Title: "musl: iconv out-of-bounds write", Severity: "HIGH",
		References: []string{"https://nvd.nist.gov/vuln/detail/CVE-2025-26519"}}},
	Files: map[string][]byte{
		"etc/alpine-release":   []byte("3.20.3\n"),
		"lib/apk/db/installed": []byte(apkInstalled),
	},
}

// apkInstalled is Alpine's /lib/apk/db/installed with musl 1.2.5-r0 and busybox.
const apkInstalled = `C:Q1wbJ4hIWKmvv0JnAbcLwixEnuzy8=
P:musl
V:1.2.5-r0
A:x86_64
S:411308
I:641024
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1717530870
c:f4d6b1c6ef8e8d3c1ce2b2a0d8aa0e1fca8e5a6e
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1VVtp7n1OTrE2Gfe4m7hm5J1gYfQ=
P:busybox
V:1.36.1-r29
A:x86_64
S:507831
I:1073152
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1717530870
c:ab0e1bd2f2c2d6e1c1a1f4e4b7f5e2a0b1c9d0e2
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox

`
