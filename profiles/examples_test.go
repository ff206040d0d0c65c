package profiles_test

import (
	"path/filepath"
	"testing"

	"github.com/wso2img/wso2img/profiles"
)

// TestExamples keeps the profiles in examples/ loadable as the schema changes.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		if _, err := profiles.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
