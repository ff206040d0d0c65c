package inputs

import (
	"context"
	"errors"
	"fmt"

	"github.com/wso2img/wso2img/build/archive"
	"github.com/wso2img/wso2img/internal/units"
)

// extract unpacks the verified archive v (staged, its checksums and signature checked)
// into a tree of the stage with build/archive, and returns the input as the directory
// it holds. A refused archive is a *VerifyError whose Err is the *archive.Error.
func (st *Stage) extract(ctx context.Context, s Spec, v *Verified) (*Verified, error) {
	tree, err := st.newTree()
	if err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.source()), err)
	}
	kept := false
	defer func() {
		if !kept {
			removeAll(tree)
		}
	}()
	opts := archive.Options{Name: s.source(), ModTime: stagedTime}
	if s.MaxSize > 0 {
		opts.MaxSize = s.MaxSize
	}
	res, err := archive.Extract(ctx, v.Local, tree, opts)
	var ae *archive.Error
	if errors.As(err, &ae) {
		found := ae.Found
		if ae.Entry != "" {
			found = fmt.Sprintf("entry %q: %s", ae.Entry, ae.Found)
		}
		if ae.Expected == "" && ae.Found == "" && ae.Err != nil {
			found = ae.Err.Error()
			if ae.Entry != "" {
				found = fmt.Sprintf("entry %q: %s", ae.Entry, found)
			}
		}
		return nil, &VerifyError{Profile: s.Profile, Field: s.Field, Source: s.source(), What: whatArchive + " " + ae.What,
			Expected: ae.Expected, Found: found, Err: ae}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: extracting: %w", where(s.Profile, s.Field, s.source()), err)
	}
	out := &Verified{Spec: s, Dir: true, Digest: res.Digest, Size: res.Size, Signer: v.Signer, Archive: v.Digest}
	for _, f := range res.Files {
		out.Files = append(out.Files, File{Rel: f.Rel, Type: f.Type, Mode: f.Mode, Size: f.Size, SHA256: f.SHA256, Target: f.Target})
	}
	if out.Local, err = st.keepTree(tree, res.Digest); err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.source()), err)
	}
	kept = true
	st.f.logf("extracted %s: %s (%d entries, %s)", s.source(), res.Format, len(out.Files), units.Bytes(out.Size))
	return out, nil
}
