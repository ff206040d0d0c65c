// Package fleet spreads wso2img's builds over several BuildKit daemons and survives
// losing one. It owns three decisions, and nothing else:
//
//   - placement: each plan goes to the builder that ranks highest for its base digest
//     and platforms (rendezvous hashing, see Rank), so profiles on one base share one
//     daemon's cache; a builder running its Parallel builds spills the next one to the
//     next-ranked builder;
//   - health: every builder is asked for its workers before first use and then
//     periodically; one that does not answer is skipped until it answers again;
//   - failover: a build that fails because its daemon could not be reached or the
//     connection was lost (see IsTransport) is built again on the next-ranked healthy
//     builder. That is safe: the image is reproducible and pushed by digest, so a second
//     build gives the same digest, and no tag is written before the build returns. Any
//     other error (the build's own, a registry refusing the push, a cancelled context)
//     is returned as it is.
//
// BuildKit is the build engine: this package queues nothing beyond waiting for a free
// slot, and each build runs on one daemon through build.Daemon. It prints nothing: log
// lines (placements, failovers, health changes) go to Options.Log, and every daemon's
// progress to the one Options.Status channel.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	"google.golang.org/grpc/status"

	"github.com/wso2img/wso2img/build"
)

// Options configure a Fleet.
type Options struct {
	// Build configures every daemon's builds (registries, cache import and export).
	Build build.Options
	// Builders are the daemons, at least one; their order does not matter.
	Builders []Builder
	// Status receives every solve's progress, from every daemon; nil discards it. Close
	// the Fleet before closing Status.
	Status chan<- *client.SolveStatus
	// Log receives a line per placement, failover and change of a builder's health;
	// nil is silent.
	Log io.Writer
	// HealthInterval is how often every builder is checked while the Fleet is open;
	// default 30s.
	HealthInterval time.Duration
	// HealthTimeout bounds one check; default 10s.
	HealthTimeout time.Duration
}

// Fleet builds on several BuildKit daemons. It is a build.Interface: Push, Digest and
// Export place the plan, and fail over on transport errors.
type Fleet struct {
	log      io.Writer
	members  []*member
	names    []string
	interval time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a slot frees or a health changes

	stop      chan struct{}
	watching  sync.WaitGroup // the periodic checks
	rechecks  sync.WaitGroup // checks of lost builders
	closeOnce sync.Once
}

var _ build.Interface = (*Fleet)(nil)

// member is one builder and its state.
type member struct {
	name  string
	b     build.Interface
	check func(context.Context) error
	// done releases the daemon once no build runs on it (waits for its progress,
	// closes its client); nil for none.
	done  func() error
	limit int // 0: unlimited

	// Guarded by Fleet.mu.
	running int
	checked bool // at least once
	healthy bool
	reason  error // why it is unhealthy
}

// New connects to every builder and checks each one's health; it fails when none
// answers. Builders that do not answer are skipped until a periodic check finds them
// healthy. ctx bounds the first checks and ends the periodic ones; Close ends them too.
func New(ctx context.Context, opts Options) (*Fleet, error) {
	if len(opts.Builders) == 0 {
		return nil, errors.New("fleet: no builders")
	}
	seen := map[string]bool{}
	for _, b := range opts.Builders {
		if err := b.Validate(); err != nil {
			return nil, err
		}
		if seen[b.Addr] {
			return nil, fmt.Errorf("builder %q is listed twice", b.Addr)
		}
		seen[b.Addr] = true
	}
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 10 * time.Second
	}
	var members []*member
	closeAll := func() {
		for _, m := range members {
			_ = m.done()
		}
	}
	for _, b := range opts.Builders {
		c, err := dial(ctx, b)
		if err != nil {
			closeAll()
			return nil, err
		}
		d := build.NewDaemon(opts.Build, b.Addr, c, opts.Status)
		limit := b.Parallel
		if limit == 0 && len(opts.Builders) > 1 {
			limit = DefaultParallel
		}
		members = append(members, &member{
			name: b.Addr, b: d, limit: limit,
			check: healthCheck(c, b, opts.HealthTimeout),
			done:  func() error { d.Wait(); return c.Close() },
		})
	}
	f, err := newFleet(ctx, members, opts.Log, opts.HealthInterval)
	if err != nil {
		closeAll()
		return nil, err
	}
	return f, nil
}

// Slots is how many builds the fleet runs at once: the sum of its builders' limits (a
// builder without one counts as DefaultParallel).
func (f *Fleet) Slots() int {
	n := 0
	for _, m := range f.members {
		if m.limit > 0 {
			n += m.limit
		} else {
			n += DefaultParallel
		}
	}
	return n
}

// newFleet checks every member once, and starts the periodic checks.
func newFleet(ctx context.Context, members []*member, log io.Writer, interval time.Duration) (*Fleet, error) {
	if log == nil {
		log = io.Discard
	}
	if interval <= 0 {
		interval = 30 * time.Second
	}
	f := &Fleet{log: log, members: members, interval: interval, changed: make(chan struct{}), stop: make(chan struct{})}
	for _, m := range members {
		f.names = append(f.names, m.name)
	}
	f.checkAll(ctx)
	healthy := false
	for _, m := range members {
		healthy = healthy || m.healthy
	}
	if !healthy {
		var fails []Failure
		for _, m := range members {
			fails = append(fails, Failure{Builder: m.name, Err: m.reason})
		}
		return nil, &UnavailableError{Failures: fails}
	}
	f.watching.Add(1)
	go f.watch(ctx)
	return f, nil
}

// Close stops the health checks, waits until every daemon's progress has been sent to
// Options.Status, and closes the connections. Call it once every build has returned.
func (f *Fleet) Close() error {
	var errs []error
	f.closeOnce.Do(func() {
		close(f.stop)
		f.watching.Wait()
		f.rechecks.Wait()
		for _, m := range f.members {
			if m.done != nil {
				if err := m.done(); err != nil {
					errs = append(errs, fmt.Errorf("closing builder %s: %w", m.name, err))
				}
			}
		}
	})
	return errors.Join(errs...)
}

// Push implements build.Interface; Pushed.Builder names the builder that built it.
func (f *Fleet) Push(ctx context.Context, plan *build.Plan) (*build.Pushed, error) {
	return place(ctx, f, plan, func(b build.Interface) (*build.Pushed, error) { return b.Push(ctx, plan) })
}

// Digest implements build.Interface.
func (f *Fleet) Digest(ctx context.Context, plan *build.Plan) (string, error) {
	return place(ctx, f, plan, func(b build.Interface) (string, error) { return b.Digest(ctx, plan) })
}

// Export implements build.Interface.
func (f *Fleet) Export(ctx context.Context, plan *build.Plan, out build.Output) (string, error) {
	return place(ctx, f, plan, func(b build.Interface) (string, error) { return b.Export(ctx, plan, out) })
}

// place runs op on the plan's best builder with a free slot, and again on the next one
// each time a builder is lost under it.
func place[T any](ctx context.Context, f *Fleet, plan *build.Plan, op func(build.Interface) (T, error)) (T, error) {
	var zero T
	key := Key(plan)
	lost := map[*member]error{}
	for {
		m, why, err := f.acquire(ctx, key, lost)
		if err != nil {
			var un *UnavailableError
			if errors.As(err, &un) {
				un.Profile = plan.Profile.Name
				return zero, err
			}
			return zero, fmt.Errorf("profile %q: %w", plan.Profile.Name, err)
		}
		fmt.Fprintf(f.log, "profile %q: building on %s (%s)\n", plan.Profile.Name, m.name, why)
		v, err := op(m.b)
		f.release(m)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil || !IsTransport(err) {
			return zero, err
		}
		lost[m] = cause(err)
		fmt.Fprintf(f.log, "profile %q: lost builder %s while building (%s); building it on the next builder\n", plan.Profile.Name, m.name, transportReason(lost[m]))
		f.setHealth(m, fmt.Errorf("lost during a build: %w", lost[m]))
		f.recheck(m)
	}
}

// recheck checks a builder lost under a build once more, at once: a connection that
// broke once should not keep a daemon that still answers out until the next periodic
// check.
func (f *Fleet) recheck(m *member) {
	f.rechecks.Add(1)
	go func() {
		defer f.rechecks.Done()
		if err := m.check(context.Background()); err == nil {
			f.setHealth(m, nil)
		}
	}()
}

// cause is the gRPC status error in err's chain, when there is one: what the
// connection said, without the layers of context the build wrapped around it.
func cause(err error) error {
	var se interface {
		error
		GRPCStatus() *status.Status
	}
	if errors.As(err, &se) {
		return se
	}
	return err
}

// acquire takes a slot on the highest-ranked healthy builder for key that has one and
// has not been lost under this build, waiting for a slot when all are busy. why says
// how it was chosen, for the log.
func (f *Fleet) acquire(ctx context.Context, key string, lost map[*member]error) (*member, string, error) {
	ranked := f.rank(key)
	for {
		f.mu.Lock()
		var passed []string
		for i, m := range ranked {
			switch {
			case lost[m] != nil:
				passed = append(passed, m.name+" was lost")
			case !m.healthy:
				passed = append(passed, m.name+" is unhealthy")
			case m.limit > 0 && m.running >= m.limit:
				passed = append(passed, fmt.Sprintf("%s is busy with %d of %d builds", m.name, m.running, m.limit))
			default:
				m.running++
				f.mu.Unlock()
				why := fmt.Sprintf("choice %d of %d for base %s", i+1, len(ranked), shortKey(key))
				if i == 0 {
					why = "first choice for base " + shortKey(key)
				} else {
					why += "; " + strings.Join(passed, ", ")
				}
				return m, why, nil
			}
		}
		// Wait for a slot only if some builder could still take the build.
		usable := false
		for _, m := range ranked {
			usable = usable || lost[m] == nil && m.healthy
		}
		if !usable {
			err := f.unavailable(ranked, lost)
			f.mu.Unlock()
			return nil, "", err
		}
		wait := f.changed
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("waiting for a free BuildKit builder: %w", ctx.Err())
		case <-wait:
		}
	}
}

// unavailable says why no builder can take a build: each one's loss or health.
// f.mu is held.
func (f *Fleet) unavailable(ranked []*member, lost map[*member]error) error {
	var fails []Failure
	for _, m := range ranked {
		if err := lost[m]; err != nil {
			fails = append(fails, Failure{Builder: m.name, Err: err, Lost: true})
			continue
		}
		fails = append(fails, Failure{Builder: m.name, Err: m.reason})
	}
	return &UnavailableError{Failures: fails}
}

func (f *Fleet) release(m *member) {
	f.mu.Lock()
	m.running--
	f.broadcast()
	f.mu.Unlock()
}

// broadcast wakes every build waiting for a slot. f.mu is held.
func (f *Fleet) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// rank orders the members for key (see Rank).
func (f *Fleet) rank(key string) []*member {
	byName := make(map[string]*member, len(f.members))
	for _, m := range f.members {
		byName[m.name] = m
	}
	var out []*member
	for _, n := range Rank(key, f.names) {
		out = append(out, byName[n])
	}
	return out
}

// setHealth records a check's outcome (err nil: healthy) and logs a change.
func (f *Fleet) setHealth(m *member, err error) {
	f.mu.Lock()
	first, was := !m.checked, m.healthy
	m.checked, m.healthy, m.reason = true, err == nil, err
	if was != m.healthy {
		f.broadcast()
	}
	f.mu.Unlock()
	switch {
	case (first || was) && err != nil:
		fmt.Fprintf(f.log, "builder %s is unhealthy: %s; skipping it until it answers again\n", m.name, transportReason(err))
	case (first || !was) && err == nil:
		fmt.Fprintf(f.log, "builder %s is healthy\n", m.name)
	}
}

// checkAll checks every member at once.
func (f *Fleet) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range f.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.check(ctx)
			if err != nil && ctx.Err() != nil {
				return // the run is over, not the builder
			}
			var te *TLSError
			if err != nil && !errors.As(err, &te) {
				err = fmt.Errorf("health check: %w", err)
			}
			f.setHealth(m, err)
		}()
	}
	wg.Wait()
}

// watch checks every member each interval until Close or the end of ctx.
func (f *Fleet) watch(ctx context.Context) {
	defer f.watching.Done()
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			f.checkAll(ctx)
		}
	}
}

// shortKey abbreviates a placement key's digest for the log.
func shortKey(key string) string {
	digest, platforms, _ := strings.Cut(key, " ")
	if len(digest) > len("sha256:")+12 {
		digest = digest[:len("sha256:")+12]
	}
	return digest + " " + platforms
}

// transportReason says what a transport error means: a failed TLS handshake said as
// such, anything else as it is.
func transportReason(err error) string {
	var te *TLSError
	if errors.As(err, &te) {
		return te.Error()
	}
	if isTLS(err) {
		return "TLS handshake failed (check the CA, client certificate and key given for this builder): " + err.Error()
	}
	return err.Error()
}

// Failure is why one builder could not build.
type Failure struct {
	// Builder is the builder's address.
	Builder string
	// Err is the transport error that lost it, or why it is unhealthy.
	Err error
	// Lost says that the builder was lost under this build (else it was skipped).
	Lost bool
}

func (e Failure) String() string {
	verb := "unhealthy"
	if e.Lost {
		verb = "lost while building"
	}
	reason := "no answer"
	if e.Err != nil {
		reason = transportReason(e.Err)
	}
	return fmt.Sprintf("%s: %s: %s", e.Builder, verb, reason)
}

// UnavailableError is a build that no builder could take: every one was lost under it
// or is unhealthy. Nothing was pushed by it, so nothing was tagged.
type UnavailableError struct {
	// Profile is the profile being built; "" when no build had started (New).
	Profile string
	// Failures are every builder's, in the order the build ranked them.
	Failures []Failure
}

func (e *UnavailableError) Error() string {
	var b strings.Builder
	if e.Profile == "" {
		b.WriteString("no BuildKit builder answers:")
	} else {
		fmt.Fprintf(&b, "profile %q: no BuildKit builder could build it (each was lost or is unhealthy; nothing was pushed):", e.Profile)
	}
	for _, f := range e.Failures {
		b.WriteString("\n    " + f.String())
	}
	return b.String()
}

// Unwrap returns each builder's error.
func (e *UnavailableError) Unwrap() []error {
	var errs []error
	for _, f := range e.Failures {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errs
}
