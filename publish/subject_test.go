package publish_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/tags"
)

// TestSubject: the signing step describes the build from its plan: profile, update,
// base, the tags about to be written, and every file of every input at its path in the
// image.
func TestSubject(t *testing.T) {
	prof := &profiles.Profile{Name: "acme-is", File: "acme-is.yaml", Product: "wso2is", Version: "5.8.0", Update: profiles.Update{WUM: 1565855673150}}
	plan := &build.Plan{
		Profile: prof, Tags: []tags.Published{{Tag: "5.8.0.1565855673150"}, {Tag: "5.8.0"}},
		Base: build.Base{Ref: "docker.wso2.com/wso2is:5.8.0.1565855673150", Digest: signtest.BaseDigest},
		UID:  802, GID: 802, Platforms: []string{"linux/amd64"}, Update: prof.Update,
		Inputs: []build.Input{
			{Source: "https://h/x.jar", Digest: "sha256:aa", Dest: "/home/wso2carbon/wso2is-5.8.0/lib/x.jar",
				Verified: &inputs.Verified{Files: []inputs.File{{Rel: "x.jar", Type: "file", SHA256: "aa", Size: 3}}}},
			{Source: "webapps", Digest: "sha256:bb", Dir: true, Dest: "/home/wso2carbon/wso2is-5.8.0/webapps",
				Verified: &inputs.Verified{Dir: true, Files: []inputs.File{
					{Rel: "console", Type: "dir"}, {Rel: "console/index.html", Type: "file", SHA256: "cc", Size: 5}, {Rel: "console/l", Type: "symlink"}}}},
		},
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := publish.Subject(plan, start, start.Add(time.Minute))
	if s.Profile != "acme-is" || s.ProfileDigest != prof.Digest() || s.WUM != 1565855673150 || s.User != "802:802" ||
		strings.Join(s.Tags, " ") != "5.8.0.1565855673150 5.8.0" || s.BaseDigest != signtest.BaseDigest || !s.BuiltAt.Equal(start) {
		t.Errorf("subject %+v", s)
	}
	if len(s.Inputs) != 2 || len(s.Inputs[0].Files) != 1 || s.Inputs[0].Files[0].Path != "/home/wso2carbon/wso2is-5.8.0/lib/x.jar" ||
		len(s.Inputs[1].Files) != 1 || s.Inputs[1].Files[0].Path != "/home/wso2carbon/wso2is-5.8.0/webapps/console/index.html" {
		t.Errorf("inputs %+v", s.Inputs)
	}
	if _, err := s.Provenance(); err != nil {
		t.Error(err)
	}
	if _, err := s.SBOM(); err != nil {
		t.Error(err)
	}
}
