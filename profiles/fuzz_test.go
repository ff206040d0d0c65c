package profiles_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("extends: wso2is-7.1.0\nupdate: {level: 3}\n"))
	f.Add([]byte("product: wso2mi\nversion: 4.5.0\nupdate: {level: 2}\nbase: {image: a/b}\nuser: {uid: 5, gid: 5}\nhome: /h\ninputs: [{path: x, dest: /h/x}]\n"))
	f.Add([]byte("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nrelease: 2\nports: [1, 65535]\n"))
	f.Add([]byte("&a {x: *a}"))
	f.Add([]byte("extends: wso2mi-4.5.0\nupdate: {level: latest}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := profiles.Parse(filepath.Join(dir, "fuzz.yaml"), data)
		if err != nil {
			var perr *profiles.Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("Parse error %v is not a *profiles.Error with problems", err)
			}
			return
		}
		// Whatever loads is safe to build: non-root, confined, taggable.
		if p.User.UID <= 0 || p.User.GID <= 0 {
			t.Fatalf("loaded a profile with user %+v", p.User)
		}
		for i := range p.Inputs {
			d := p.DestPath(i)
			if p.Home != "" && d != p.Home && !strings.HasPrefix(d, p.Home+"/") {
				t.Fatalf("inputs[%d] lands at %s, outside %s", i, d, p.Home)
			}
			if strings.HasPrefix(d, "..") {
				t.Fatalf("inputs[%d] lands at %s", i, d)
			}
			if p.Inputs[i].URL != "" && p.Inputs[i].SHA256 == "" && p.Inputs[i].SHA512 == "" {
				t.Fatalf("inputs[%d] is a url without a checksum", i)
			}
		}
		for _, port := range p.Ports {
			if port < 1 || port > 65535 {
				t.Fatalf("port %d loaded", port)
			}
		}
		if p.Update.Follows() {
			if p.Tags() != nil {
				t.Fatalf("a profile following the latest update has tags before it is resolved")
			}
			return
		}
		pub := p.Tags()
		if u, err := tags.Parse(pub[0].Tag); err != nil || !u.Unique() {
			t.Fatalf("unique tag %q: %v", pub[0].Tag, err)
		}
	})
}
