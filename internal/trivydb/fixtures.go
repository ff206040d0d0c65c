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
