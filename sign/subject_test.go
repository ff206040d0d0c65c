package sign_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/sign"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got (JSON) with testdata/name, indented.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	buf.WriteByte('\n')
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, file, buf.String())
	}
}

// TestProvenance: the SLSA v1 provenance names the builder, the profile and its digest,
// the update, the base by reference and digest, every input's URL or path, digest and
// destination, and the build time.
func TestProvenance(t *testing.T) {
	got, err := subject().Provenance()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "provenance.json", got)
	var p struct {
		BuildDefinition struct {
			BuildType            string         `json:"buildType"`
			ExternalParameters   map[string]any `json:"externalParameters"`
			ResolvedDependencies []struct {
				Name, URI string
				Digest    map[string]string
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Metadata struct {
				StartedOn time.Time `json:"startedOn"`
			} `json:"metadata"`
		} `json:"runDetails"`
	}
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{}
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		for alg, h := range d.Digest {
			deps[d.Name] = d.URI + " " + alg + ":" + h
		}
	}
	s := subject()
	for name, want := range map[string]string{
		"profile":   "git+" + s.Source + "@" + s.Revision + " " + s.ProfileDigest,
		"base":      "pkg:oci/wso2is@sha256%3A" + strings.Repeat("1", 64) + "?repository_url=docker.wso2.com/wso2is&tag=5.8.0.1565855673150 " + s.BaseDigest,
		"inputs[0]": s.Inputs[0].Source + " " + s.Inputs[0].Digest,
		"inputs[1]": "file:conf/deployment.toml " + s.Inputs[1].Digest,
	} {
		if deps[name] != want {
			t.Errorf("resolvedDependencies %s = %q, want %q", name, deps[name], want)
		}
	}
	ext := p.BuildDefinition.ExternalParameters
	if p.BuildDefinition.BuildType != sign.BuildType || p.RunDetails.Builder.ID != sign.DefaultBuilderID ||
		!p.RunDetails.Metadata.StartedOn.Equal(s.BuiltAt) || ext["profile"] != "wso2is-mysql" ||
		ext["update"].(map[string]any)["wum"] != float64(1565855673150) {
		t.Errorf("provenance %+v", p)
	}
}

// TestSBOM: the SPDX document lists every added file with its path in the image,
// sha256 and source, each input as a package, and the base image as a referenced
// package the image descends from; every relationship points at a defined element.
func TestSBOM(t *testing.T) {
	got, err := subject().SBOM()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "sbom.spdx.json", got)
	var doc struct {
		SPDXVersion       string `json:"spdxVersion"`
		DocumentNamespace string `json:"documentNamespace"`
		Packages          []struct {
			SPDXID, Name, DownloadLocation string
			Checksums                      []struct{ Algorithm, ChecksumValue string }
		} `json:"packages"`
		Files []struct {
			SPDXID, FileName string
			Checksums        []struct{ Algorithm, ChecksumValue string }
		} `json:"files"`
		Relationships []struct {
			A    string `json:"spdxElementId"`
			Type string `json:"relationshipType"`
			B    string `json:"relatedSpdxElement"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("duplicate %s", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	files := map[string]string{}
	for _, f := range doc.Files {
		ids[f.SPDXID] = true
		files[f.FileName] = f.Checksums[0].Algorithm + ":" + f.Checksums[0].ChecksumValue
	}
	rels := map[string]bool{}
	for _, r := range doc.Relationships {
		if !ids[r.A] || !ids[r.B] {
			t.Errorf("relationship %v names an undefined element", r)
		}
		rels[r.A+" "+r.Type+" "+r.B] = true
	}
	s := subject()
	if doc.SPDXVersion != "SPDX-2.3" || !strings.HasPrefix(doc.DocumentNamespace, "https://") ||
		files["./home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql-connector-java-8.0.17.jar"] != "SHA256:"+strings.Repeat("3", 64) ||
		!rels["SPDXRef-Image DESCENDANT_OF SPDXRef-BaseImage"] || !rels["SPDXRef-Input-0 CONTAINS SPDXRef-File-0-0"] ||
		doc.Packages[1].Name != s.BaseRef || doc.Packages[2].DownloadLocation != s.Inputs[0].Source {
		t.Errorf("sbom %+v", doc)
	}
	// Another build of other inputs gets another namespace.
	s.Inputs = s.Inputs[:1]
	other, _ := s.SBOM()
	var doc2 struct {
		DocumentNamespace string `json:"documentNamespace"`
	}
	_ = json.Unmarshal(other, &doc2)
	if doc2.DocumentNamespace == doc.DocumentNamespace {
		t.Error("two different documents share a namespace")
	}
}

// TestSubjectIncomplete: predicates of a subject without base or build time are refused.
func TestSubjectIncomplete(t *testing.T) {
	s := subject()
	s.BaseDigest = ""
	if _, err := s.Provenance(); err == nil {
		t.Error("provenance without a base digest")
	}
	s = subject()
	s.BuiltAt = time.Time{}
	if _, err := s.SBOM(); err == nil {
		t.Error("SBOM without a build time")
	}
}

// TestAnnotations: the signature annotations carry product, version, update, base and
// revision.
func TestAnnotations(t *testing.T) {
	a := subject().Annotations()
	for k, want := range map[string]string{
		sign.AnnotationProduct: "wso2is", sign.AnnotationVersion: "5.8.0", sign.AnnotationWUM: "1565855673150",
		sign.AnnotationBaseDigest: strings.Repeat("1", 64), sign.AnnotationRevision: "0123456789abcdef0123456789abcdef01234567",
	} {
		if !strings.HasSuffix(a[k], want) {
			t.Errorf("%s = %q, want %q", k, a[k], want)
		}
	}
	if _, ok := a[sign.AnnotationLevel]; ok {
		t.Error("a WUM build has an update level annotation")
	}
}
