// Package hack_test checks the project's shell scripts (make tools, make demo, make fuzz,
// the deployment's certificate script) with shellcheck, as make test does for the
// action's scripts.
package hack_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wso2img/wso2img/internal/testenv"
)

func TestScripts(t *testing.T) {
	testenv.Need(t, "shellcheck")
	shellcheck, _ := testenv.Bin("shellcheck")
	scripts, _ := filepath.Glob("*.sh")
	more, _ := filepath.Glob("../deploy/*.sh")
	scripts = append(scripts, more...)
	if len(scripts) < 4 {
		t.Fatalf("found only %v", scripts)
	}
	for _, s := range scripts {
		if out, err := exec.Command(shellcheck, "-s", "bash", s).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}
