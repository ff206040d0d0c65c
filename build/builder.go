package build

import (
	"context"
	"fmt"

	"github.com/moby/buildkit/client"
)

// Interface builds planned images. Publishing (scan, sign, attest, tag) is not its
// business: see the publish package, which calls it for the push stage.
type Interface interface {
	// Push builds the plan's image and has BuildKit push it by digest to
	// plan.Repository: no tag is written.
	Push(ctx context.Context, plan *Plan) (*Pushed, error)
	// Digest builds the plan's image and returns the digest a push would give, pushing
	// nothing: an identical image already in the registry needs no push.
	Digest(ctx context.Context, plan *Plan) (string, error)
	// Export writes the plan's image to a local OCI layout folder or archive and
	// returns its digest.
	Export(ctx context.Context, plan *Plan, out Output) (string, error)
}

// Pushed is an image BuildKit pushed by digest.
type Pushed struct {
	// Digest is the pushed manifest's (or index's) digest.
	Digest string
	// Builder names the daemon that built it.
	Builder string
}

// Daemon builds on one BuildKit daemon.
type Daemon struct {
	opts Options
	name string
	s    *solver
}

var _ Interface = (*Daemon)(nil)

// NewDaemon builds on c, which name identifies in messages (its address). Every
// solve's progress is sent to status (which may be nil); call Wait before closing
// status.
func NewDaemon(opts Options, name string, c *client.Client, status chan<- *client.SolveStatus) *Daemon {
	return &Daemon{opts: opts, name: name, s: &solver{c: c, name: name, opts: opts, status: status}}
}

// Start opens the run's shared session on the daemon now, so that it connects while
// profiles are planned; the first registry build would open it otherwise.
func (d *Daemon) Start() error { return d.s.shared.start(d.s.c) }

// Wait returns once every solve's progress has been sent to the status channel, and
// closes the shared session. Call it once every build has returned.
func (d *Daemon) Wait() {
	d.s.forwards.Wait()
	d.s.shared.close()
}

// Push implements Interface.
func (d *Daemon) Push(ctx context.Context, plan *Plan) (*Pushed, error) {
	if plan.Repository == "" {
		return nil, fmt.Errorf("profile %q: no target: set target.repository in the profile, --registry, or --output oci:DIR", plan.Profile.Name)
	}
	repo, err := d.opts.Registry.NewRepository(plan.Repository)
	if err != nil {
		return nil, fmt.Errorf("profile %q: target %s: %w", plan.Profile.Name, plan.Repository, err)
	}
	insecure := d.opts.Registry.IsInsecure(repo.RegistryStr())
	digest, err := d.retryPush(ctx, plan, func() (string, error) {
		return d.s.solve(ctx, plan, registryExport(plan, true, insecure))
	})
	if err != nil {
		return nil, err
	}
	return &Pushed{Digest: digest, Builder: d.name}, nil
}

// Digest implements Interface.
func (d *Daemon) Digest(ctx context.Context, plan *Plan) (string, error) {
	return d.s.solve(ctx, plan, registryExport(plan, false, false))
}

// Export implements Interface.
func (d *Daemon) Export(ctx context.Context, plan *Plan, out Output) (string, error) {
	ex, err := localExport(plan, out)
	if err != nil {
		return "", fmt.Errorf("profile %q: %w", plan.Profile.Name, err)
	}
	return d.s.solve(ctx, plan, ex)
}
