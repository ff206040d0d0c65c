// Package verify owns checking images before they run: their cosign signature (by key,
// or keyless by certificate identity and issuer), the signed attestations wso2img
// attaches (SLSA provenance, SPDX SBOM), and a policy audit of the image itself along
// CIS Docker Benchmark section 4 (non-root user, trusted base, no setuid/setgid files,
// no secrets in the environment or history, HEALTHCHECK advice) plus the ports it
// exposes and the labels it must carry. It also verifies a base image's signature
// before a build (Base).
//
// Signatures and attestations are found where cosign v2 stores them (the
// sha256-<hex>.sig and .att tags, which wso2img writes) and, failing that, where cosign
// v3 stores them by default (Sigstore bundles attached as OCI referrers), so that bases
// signed with either verify. A signature counts only if its payload names the digest
// being verified.
//
// It reads registries and never writes to them. It streams layers (the setuid audit
// reads every layer's tar headers) and never holds a layer in memory. It uses sign for
// key references and predicate types, and must not import build/ nor cobra or viper.
// It prints nothing: results are data (Report), and WriteText renders them.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wso2img/wso2img/internal/registry"
)

// Options configure a Verifier.
type Options struct {
	// Registry says how to reach registries.
	Registry registry.Options
	// Signature says whose signature the image must carry.
	Signature SignatureOptions
	// SkipSignature audits the image without checking its signature or attestations.
	SkipSignature bool
	// Policy is what the image is audited against; nil is DefaultPolicy.
	Policy *Policy
	// Log receives progress lines (layers read); nil is silent.
	Log io.Writer
	// VulnScan, when set, requires a signed vulnerability attestation (see VulnScan).
	VulnScan *VulnScan
}

// Verifier verifies images. One Verifier serves many images, one at a time: keys and
// trust roots are loaded once, and layers shared between images are read once.
type Verifier struct {
	opts Options
	sig  *sigChecker
	// layers caches layer scans by digest: platforms and images share layers.
	layers map[v1.Hash]*layerScan
}

// New loads the keys or trust roots the signature check needs.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if opts.Policy == nil {
		opts.Policy = DefaultPolicy()
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	v := &Verifier{opts: opts, layers: map[v1.Hash]*layerScan{}}
	if !opts.SkipSignature {
		sc, err := newSigChecker(ctx, opts.Signature)
		if err != nil {
			return nil, err
		}
		v.sig = sc
	}
	return v, nil
}

// Verify checks one image and reports every check. The error is a *ViolationError
// when a check failed, and another error when the image could not be read.
func (v *Verifier) Verify(ctx context.Context, image string) (*Report, error) {
	r := &Report{Image: image}
	ref, err := v.opts.Registry.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", image, err)
	}
	desc, err := remote.Get(ref, v.opts.Registry.Remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", image, err)
	}
	r.Digest = desc.Digest.String()
	digest := ref.Context().Digest(r.Digest)
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != r.Digest {
		return nil, fmt.Errorf("verifying %s: the registry served %s", image, r.Digest)
	}

	if v.sig != nil {
		sc, err := v.sig.signature(ctx, digest, v.opts.Registry)
		if err != nil {
			return nil, fmt.Errorf("verifying the signature of %s: %w", image, err)
		}
		r.add(sc)
		ac, err := v.sig.attestations(ctx, digest, v.opts.Registry, v.opts.Policy.Attestations)
		if err != nil {
			return nil, fmt.Errorf("verifying the attestations of %s: %w", image, err)
		}
		r.add(ac)
		if v.opts.VulnScan != nil {
			vc, err := v.sig.vulnScan(ctx, digest, v.opts.Registry, *v.opts.VulnScan)
			if err != nil {
				return nil, fmt.Errorf("verifying the vulnerability scan of %s: %w", image, err)
			}
			r.add(vc)
		}
	} else {
		r.add(Check{ID: CheckSignature, Title: "signed by the expected key or identity", Rule: ruleSignature, Status: Skip,
			Detail: "signature not checked (--insecure-skip-signature)"})
	}

	imgs, err := registry.PlatformImages(desc)
	var np *registry.NoPlatformError
	if errors.As(err, &np) {
		r.add(Check{ID: CheckPlatforms, Title: "every image names its platform", Rule: ruleLabels, Status: Fail,
			Detail: np.Error() + ": no runtime would pick it, and it cannot be audited as any platform"})
		r.Passed = false
		return r, &ViolationError{Image: image, Failed: r.Failed()}
	}
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", image, err)
	}
	for _, pi := range imgs {
		r.Platforms = append(r.Platforms, pi.Platform)
		checks, err := v.audit(ctx, pi.Platform, pi.Image)
		if err != nil {
			return nil, fmt.Errorf("auditing %s (%s): %w", image, pi.Platform, err)
		}
		r.Checks = append(r.Checks, checks...)
	}
	r.ChecksOff = v.checksOff()
	r.Passed = len(r.Failed()) == 0
	if !r.Passed {
		return r, &ViolationError{Image: image, Failed: r.Failed()}
	}
	return r, nil
}

// checksOff names the checks these options switch off, for the report: a verify that
// passes with a check off must say so.
func (v *Verifier) checksOff() []string {
	var off []string
	so := v.opts.Signature
	switch {
	case v.opts.SkipSignature:
		off = append(off, "signature and attestations (--insecure-skip-signature)")
	case len(v.opts.Policy.Attestations) == 0:
		off = append(off, "attestations (--require-attestations=false, or a policy that requires none)")
	}
	if !v.opts.SkipSignature && so.IgnoreTlog {
		off = append(off, "transparency log (--insecure-ignore-tlog)")
	}
	if !v.opts.SkipSignature && so.Keyless() && so.IgnoreSCT {
		off = append(off, "certificate transparency (--insecure-ignore-sct)")
	}
	return off
}

// VerifyAll verifies every image, in order; the error joins every image's error.
func (v *Verifier) VerifyAll(ctx context.Context, images []string) ([]*Report, error) {
	var reports []*Report
	var errs []error
	for _, img := range images {
		r, err := v.Verify(ctx, img)
		if r != nil {
			reports = append(reports, r)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reports, errors.Join(errs...)
}

// audit reads one platform's config and layers and runs the policy checks.
func (v *Verifier) audit(ctx context.Context, platform string, img v1.Image) ([]Check, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers: %w", err)
	}
	fs := &fsState{setuid: map[string]string{}}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		scan, ok := v.layers[d]
		if !ok {
			fmt.Fprintf(v.opts.Log, "reading layer %d/%d %s (%s)\n", i+1, len(layers), d, platform)
			scan, err = scanLayer(l)
			if err != nil {
				return nil, fmt.Errorf("reading layer %s: %w", d, err)
			}
			v.layers[d] = scan
		}
		fs.apply(scan)
	}
	return auditConfig(v.opts.Policy, platform, cf, fs), nil
}

// isOperational reports whether err means the registry (or network) could not be read,
// rather than that a signature did not verify.
func isOperational(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode != http.StatusNotFound
	}
	var nerr net.Error
	var uerr *url.Error
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) || errors.As(err, &uerr)
}
