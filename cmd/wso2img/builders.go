package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/buildkit/client"
	// BuildKit's connection helpers for kube-pod:// (kubectl exec) and
	// docker-container:// (docker exec) builders: they register their schemes.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/buildkitd"
	"github.com/wso2img/wso2img/build/fleet"
)

// buildersValue is the `builders` setting: a YAML (or JSON) list of
// {host, ca, cert, key, parallel}, usually written in wso2img.yaml.
type buildersValue struct {
	list []fleet.Builder
	raw  string
}

func (v *buildersValue) String() string { return v.raw }
func (v *buildersValue) Type() string   { return "YAML" }

// Set reads the list; unknown keys are errors, as in profiles.
func (v *buildersValue) Set(s string) error {
	var list []fleet.Builder
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("builders: expected a list of {host, ca, cert, key, parallel}: %w", err)
	}
	for i, b := range list {
		if b.Addr == "" {
			return fmt.Errorf("builders[%d]: no host", i)
		}
	}
	v.list, v.raw = list, s
	return nil
}

// SetConfigValue takes the setting as the config file holds it (a list of maps), for a
// config loader that hands over structured values rather than strings.
func (v *buildersValue) SetConfigValue(val any) error {
	if s, ok := val.(string); ok { // WSO2IMG_BUILDERS
		return v.Set(s)
	}
	var b bytes.Buffer
	if err := yaml.NewEncoder(&b).Encode(val); err != nil {
		return fmt.Errorf("builders: %w", err)
	}
	return v.Set(b.String())
}

// builders are the BuildKit daemons named by --buildkit-host (with --buildkit-ca,
// --buildkit-cert, --buildkit-key and --buildkit-parallel) and by `builders`; none
// means the default socket, else a private buildkitd.
func (o *buildkitOptions) builders() ([]fleet.Builder, error) {
	var out []fleet.Builder
	tcp := false
	for _, h := range o.Hosts {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		b := fleet.Builder{Addr: h, Parallel: o.Parallel}
		if strings.HasPrefix(h, "tcp://") {
			tcp = true
			b.CA, b.Cert, b.Key = o.CA, o.Cert, o.Key
		}
		out = append(out, b)
	}
	if !tcp && (o.CA != "" || o.Cert != "" || o.Key != "") {
		return nil, usageError{errors.New("--buildkit-ca, --buildkit-cert and --buildkit-key apply to the tcp:// builders of --buildkit-host, and none is given (builders: in the config file take ca, cert and key each)")}
	}
	out = append(out, o.Builders.list...)
	seen := map[string]bool{}
	for _, b := range out {
		if err := b.Validate(); err != nil {
			return nil, usageError{err}
		}
		if seen[b.Addr] {
			return nil, usageError{fmt.Errorf("builder %q is named twice (--buildkit-host, BUILDKIT_HOST, builders)", b.Addr)}
		}
		seen[b.Addr] = true
		for _, f := range []string{b.CA, b.Cert, b.Key} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return nil, usageError{fmt.Errorf("builder %q: %w", b.Addr, err)}
			}
		}
	}
	return out, nil
}

// connect returns what builds this run, and a function to call once every build has
// returned (before status is closed): a fleet of the named builders, else one daemon on
// the default socket or wso2img's private buildkitd.
func (o *buildkitOptions) connect(ctx context.Context, opts build.Options, builders []fleet.Builder, insecure []string, status chan<- *client.SolveStatus, log io.Writer) (build.Interface, func(), error) {
	if len(builders) == 0 {
		c, addr, err := buildkitd.ConnectAddr(ctx, buildkitd.Options{StateDir: o.StateDir, Insecure: insecure, Log: log})
		if err != nil {
			return nil, nil, err
		}
		d := build.NewDaemon(opts, addr, c, status)
		// The session connects while the profiles are planned.
		if err := d.Start(); err != nil {
			c.Close()
			return nil, nil, err
		}
		return d, func() { d.Wait(); c.Close() }, nil
	}
	f, err := fleet.New(ctx, fleet.Options{Build: opts, Builders: builders, Status: status, Log: prefixed{log}})
	if err != nil {
		var un *fleet.UnavailableError
		if errors.As(err, &un) {
			return nil, nil, fmt.Errorf("%w\n(builders come from --buildkit-host, BUILDKIT_HOST and builders:; with none, wso2img uses the default socket or starts its own buildkitd)", err)
		}
		return nil, nil, usageError{err}
	}
	return f, func() { _ = f.Close() }, nil
}
