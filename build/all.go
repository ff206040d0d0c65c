package build

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/wso2img/wso2img/profiles"
)

// parallel bounds how many profiles are planned at once.
const parallel = 4

// Selection is what a selector (build --if-changed) decides for a planned profile.
type Selection struct {
	// Plan is what to build, possibly under another release; nil when the profile is
	// not built.
	Plan *Plan
	// Reasons say why the profile is, or is not, built.
	Reasons []string
	// Tag and Digest name the image the target already holds for the profile, when it
	// is not built.
	Tag, Digest string
}

// PlanAll plans every profile, several at a time. Plans come back in the profiles'
// order (nil for a profile that failed), with one error per profile.
func (p *Planner) PlanAll(ctx context.Context, profs []*profiles.Profile) ([]*Plan, []error) {
	plans := make([]*Plan, len(profs))
	errs := make([]error, len(profs))
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, prof := range profs {
		g.Go(func() error {
			plans[i], errs[i] = p.Plan(ctx, prof)
			return nil
		})
	}
	_ = g.Wait()
	return plans, errs
}

// JoinErrors joins the non-nil errors, keeping a single one as it is.
func JoinErrors(errs []error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return MultiError(out)
}

// MultiError is several profiles' failures, one a line.
type MultiError []error

func (m MultiError) Error() string {
	s := "several profiles failed:"
	for _, e := range m {
		s += "\n  - " + e.Error()
	}
	return s
}

func (m MultiError) Unwrap() []error { return m }
