package build

import (
	"context"

	"github.com/moby/buildkit/client"
	"golang.org/x/sync/errgroup"

	"github.com/wso2img/wso2img/profiles"
)

// parallel bounds how many profiles are planned and built at once: BuildKit runs their
// solves side by side, and the registry takes their pushes side by side.
const parallel = 4

// All plans and builds every profile on one daemon, several at a time. Results come
// back in the profiles' order (nil for a profile that failed); every failure is
// reported, joined, and one profile's failure does not stop the others.
//
// When opts.Select is set, it decides after planning whether each profile is built.
func All(ctx context.Context, opts Options, c *client.Client, status chan<- *client.SolveStatus, profs []*profiles.Profile, out Output, afterPush Step) ([]*Result, error) {
	planner, err := NewPlanner(opts)
	if err != nil {
		return nil, err
	}
	b := NewBuilder(opts, c, status)
	defer b.Wait()
	results := make([]*Result, len(profs))
	errs := make([]error, len(profs))
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, p := range profs {
		g.Go(func() error {
			plan, err := planner.Plan(ctx, p)
			if err != nil {
				errs[i] = err
				return nil
			}
			if opts.Select != nil {
				var skipped *Result
				if plan, skipped, err = opts.Select(ctx, plan); err != nil || skipped != nil {
					results[i], errs[i] = skipped, err
					return nil
				}
			}
			results[i], errs[i] = b.Build(ctx, plan, out, afterPush)
			return nil
		})
	}
	_ = g.Wait()
	return results, JoinErrors(errs)
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
