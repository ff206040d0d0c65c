package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/profiles"
)

// fake is a builder whose builds do what the test says: push is called for every
// build placed on it.
type fake struct {
	name string
	push func(ctx context.Context, plan *build.Plan) error

	mu    sync.Mutex
	built []string
}

func (f *fake) Push(ctx context.Context, plan *build.Plan) (*build.Pushed, error) {
	f.mu.Lock()
	f.built = append(f.built, plan.Profile.Name)
	f.mu.Unlock()
	if f.push != nil {
		if err := f.push(ctx, plan); err != nil {
			return nil, fmt.Errorf("profile %q: building on BuildKit at %s: %w", plan.Profile.Name, f.name, err)
		}
	}
	return &build.Pushed{Digest: "sha256:" + strings.Repeat("a", 64), Builder: f.name}, nil
}

func (f *fake) Digest(ctx context.Context, plan *build.Plan) (string, error) {
	p, err := f.Push(ctx, plan)
	if err != nil {
		return "", err
	}
	return p.Digest, nil
}

func (f *fake) Export(ctx context.Context, plan *build.Plan, _ build.Output) (string, error) {
	return f.Digest(ctx, plan)
}

func (f *fake) builds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.built...)
}

func plan(name, base string) *build.Plan {
	return &build.Plan{Profile: &profiles.Profile{Name: name}, Base: build.Base{Digest: base}, Platforms: []string{"linux/amd64"}}
}

// testFleet makes a fleet of fakes with the given limit each, healthy unless down
// names them; names come back in their rank for key.
func testFleet(t *testing.T, limit int, fakes []*fake, down map[string]error) (*Fleet, *bytes.Buffer) {
	t.Helper()
	var members []*member
	for _, fk := range fakes {
		members = append(members, &member{name: fk.name, b: fk, limit: limit,
			check: func(context.Context) error { return down[fk.name] }})
	}
	var log bytes.Buffer
	f, err := newFleet(context.Background(), members, &syncWriter{w: &log}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, &log
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// ranked returns three fakes named so that their rank for base is a, b, c.
func ranked(base string) (a, b, c *fake) {
	names := Rank(Key(plan("x", base)), []string{"unix:///one", "unix:///two", "unix:///three"})
	return &fake{name: names[0]}, &fake{name: names[1]}, &fake{name: names[2]}
}

func TestFleetPlacementFirstChoice(t *testing.T) {
	base := "sha256:" + strings.Repeat("1", 64)
	a, b, c := ranked(base)
	f, log := testFleet(t, 0, []*fake{c, a, b}, nil)
	for i := range 5 {
		p, err := f.Push(context.Background(), plan(fmt.Sprintf("p%d", i), base))
		if err != nil || p.Builder != a.name {
			t.Fatalf("push %d: %+v, %v; want it built on the first choice %s", i, p, err, a.name)
		}
	}
	if len(b.builds())+len(c.builds()) != 0 {
		t.Errorf("lower-ranked builders built %v %v with the first choice free", b.builds(), c.builds())
	}
	if !strings.Contains(log.String(), `profile "p0": building on `+a.name+" (first choice for base sha256:111111111111 linux/amd64)") {
		t.Errorf("no placement line in the log:\n%s", log)
	}
}

// TestFleetSpill: a full builder spills the next build to the next-ranked one, and a
// build waits when every builder is full.
func TestFleetSpill(t *testing.T) {
	base := "sha256:" + strings.Repeat("2", 64)
	a, b, _ := ranked(base)
	release := make(chan struct{})
	started := make(chan string, 10)
	hold := func(ctx context.Context, p *build.Plan) error {
		started <- p.Profile.Name
		<-release
		return nil
	}
	a.push, b.push = hold, hold
	f, log := testFleet(t, 1, []*fake{a, b}, nil)

	results := make(chan *build.Pushed, 3)
	go1 := func(name string) {
		go func() {
			p, err := f.Push(context.Background(), plan(name, base))
			if err != nil {
				t.Error(err)
			}
			results <- p
		}()
	}
	go1("first")
	<-started
	go1("second")
	<-started
	if got := a.builds(); len(got) != 1 || got[0] != "first" {
		t.Errorf("first choice built %v, want [first]", got)
	}
	if got := b.builds(); len(got) != 1 || got[0] != "second" {
		t.Errorf("second choice built %v, want [second] (spilled)", got)
	}
	go1("third")
	select {
	case n := <-started:
		t.Fatalf("%s started with every builder full", n)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for range 3 {
		<-results
	}
	if n := len(a.builds()) + len(b.builds()); n != 3 {
		t.Errorf("%d builds, want 3", n)
	}
	if !strings.Contains(log.String(), `profile "second": building on `+b.name+" (choice 2 of 2 for base sha256:222222222222 linux/amd64; "+a.name+" is busy with 1 of 1 builds)") {
		t.Errorf("the spill is not logged:\n%s", log)
	}
}

func TestFleetFailover(t *testing.T) {
	base := "sha256:" + strings.Repeat("3", 64)
	a, b, c := ranked(base)
	var checks sync.Mutex
	aDown := error(nil)
	a.push = func(context.Context, *build.Plan) error {
		return status.Error(codes.Unavailable, "error reading from server: EOF")
	}
	var members []*member
	for _, fk := range []*fake{a, b, c} {
		members = append(members, &member{name: fk.name, b: fk, check: func(context.Context) error {
			if fk != a {
				return nil
			}
			checks.Lock()
			defer checks.Unlock()
			return aDown
		}})
	}
	var log bytes.Buffer
	// a answers its first check, then is down.
	f, err := newFleet(context.Background(), members, &syncWriter{w: &log}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checks.Lock()
	aDown = status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial unix /x: connect: connection refused\"")
	checks.Unlock()

	p, err := f.Push(context.Background(), plan("p", base))
	if err != nil {
		t.Fatal(err)
	}
	if p.Builder != b.name {
		t.Errorf("built on %s, want the next-ranked %s", p.Builder, b.name)
	}
	if !strings.Contains(log.String(), `profile "p": lost builder `+a.name+" while building (rpc error: code = Unavailable desc = error reading from server: EOF); building it on the next builder") {
		t.Errorf("the failover is not logged:\n%s", log.String())
	}
	// The lost builder is skipped by the next build, with no attempt on it.
	f.rechecks.Wait()
	if _, err := f.Push(context.Background(), plan("q", base)); err != nil {
		t.Fatal(err)
	}
	if got := a.builds(); len(got) != 1 {
		t.Errorf("the lost builder was tried again: %v", got)
	}
}

func TestFleetNoFailoverOnBuildErrors(t *testing.T) {
	base := "sha256:" + strings.Repeat("4", 64)
	for name, err := range map[string]error{
		"registry refused":  status.Error(codes.Unknown, "failed to push 127.0.0.1:5000/x: unexpected status from PUT request: 401 Unauthorized"),
		"bad LLB":           status.Error(codes.InvalidArgument, "failed to load LLB: invalid definition"),
		"cancelled":         context.Canceled,
		"unknown with text": status.Error(codes.Unknown, "failed to do request: dial tcp 127.0.0.1:5000: connect: connection refused"),
	} {
		t.Run(name, func(t *testing.T) {
			a, b, c := ranked(base)
			a.push = func(context.Context, *build.Plan) error { return err }
			f, _ := testFleet(t, 0, []*fake{a, b, c}, nil)
			_, got := f.Push(context.Background(), plan("p", base))
			if !errors.Is(got, err) {
				t.Errorf("error %v, want %v returned as it is", got, err)
			}
			if n := len(b.builds()) + len(c.builds()); n != 0 {
				t.Errorf("a build error was retried on another builder %d time(s)", n)
			}
		})
	}
}

func TestFleetCancelledIsNotRetried(t *testing.T) {
	base := "sha256:" + strings.Repeat("5", 64)
	a, b, _ := ranked(base)
	ctx, cancel := context.WithCancel(context.Background())
	// The caller cancels; the daemon's connection reports it as a torn-down transport.
	a.push = func(context.Context, *build.Plan) error {
		cancel()
		return status.Error(codes.Unavailable, "transport is closing")
	}
	f, _ := testFleet(t, 0, []*fake{a, b}, nil)
	if _, err := f.Push(ctx, plan("p", base)); err == nil {
		t.Fatal("no error")
	}
	if len(b.builds()) != 0 {
		t.Errorf("a cancelled build was retried on %s", b.name)
	}
}

func TestFleetEveryBuilderLost(t *testing.T) {
	base := "sha256:" + strings.Repeat("6", 64)
	a, b, c := ranked(base)
	for _, fk := range []*fake{a, b} {
		fk.push = func(context.Context, *build.Plan) error {
			return fmt.Errorf("session: %w", errors.Join(errors.New("receiving"), io.EOF))
		}
	}
	down := map[string]error{c.name: status.Error(codes.Unavailable, "connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority\"")}
	f, _ := testFleet(t, 0, []*fake{a, b, c}, down)
	_, err := f.Push(context.Background(), plan("p", base))
	var un *UnavailableError
	if !errors.As(err, &un) || un.Profile != "p" || len(un.Failures) != 3 {
		t.Fatalf("error %#v, want an UnavailableError of profile p naming 3 builders", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`profile "p": no BuildKit builder could build it (each was lost or is unhealthy; nothing was pushed):`,
		a.name + ": lost while building: profile \"p\": building on BuildKit at " + a.name + ": session: receiving\nEOF",
		b.name + ": lost while building: ",
		c.name + ": unhealthy: TLS handshake failed (check the CA, client certificate and key given for this builder): health check: rpc error",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestFleetNoBuilderAnswers(t *testing.T) {
	down := map[string]error{
		"unix:///one": errors.New("connection refused"),
		"unix:///two": errors.New("no such file"),
	}
	var members []*member
	for name := range down {
		members = append(members, &member{name: name, b: &fake{name: name}, check: func(context.Context) error { return down[name] }})
	}
	_, err := newFleet(context.Background(), members, nil, time.Hour)
	if err == nil || !strings.HasPrefix(err.Error(), "no BuildKit builder answers:\n") || !strings.Contains(err.Error(), "unix:///one: unhealthy: health check: connection refused") ||
		!strings.Contains(err.Error(), "unix:///two: unhealthy: health check: no such file") {
		t.Errorf("error %v, want each builder and why", err)
	}
}

// TestFleetHealthRecovers: a builder unhealthy at first is skipped, and used again once
// a periodic check finds it healthy.
func TestFleetHealthRecovers(t *testing.T) {
	base := "sha256:" + strings.Repeat("7", 64)
	a, b, _ := ranked(base)
	var mu sync.Mutex
	aErr := errors.New("connection refused")
	members := []*member{
		{name: a.name, b: a, check: func(context.Context) error { mu.Lock(); defer mu.Unlock(); return aErr }},
		{name: b.name, b: b, check: func(context.Context) error { return nil }},
	}
	var log bytes.Buffer
	f, err := newFleet(context.Background(), members, &syncWriter{w: &log}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p, err := f.Push(context.Background(), plan("p", base)); err != nil || p.Builder != b.name {
		t.Fatalf("with the first choice down: %+v %v, want %s", p, err, b.name)
	}
	mu.Lock()
	aErr = nil
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := f.Push(context.Background(), plan("q", base))
		if err != nil {
			t.Fatal(err)
		}
		if p.Builder == a.name {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first choice never came back:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "builder "+a.name+" is healthy") {
		t.Errorf("the recovery is not logged:\n%s", log.String())
	}
}
