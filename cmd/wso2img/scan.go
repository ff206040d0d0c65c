package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/scan"
	"github.com/wso2img/wso2img/verify"
	"github.com/wso2img/wso2img/watch"
)

// scanTokenEnv holds the token of a `trivy server` (--scan-server): a secret, so an
// environment variable rather than a flag.
const scanTokenEnv = "WSO2IMG_SCAN_TOKEN"

// scanOptions say whether and how the vulnerability gate runs.
type scanOptions struct {
	// Scan is auto (scan when Trivy is found, or when a profile has a scan block),
	// true (a gate that cannot run fails the build) or false.
	Scan autoBool
	// Trivy is the trivy binary; default next to wso2img, then $PATH.
	Trivy string
	// Server is a `trivy server` URL (one DB for a fleet).
	Server string
	// DB is a ready Trivy cache folder (db/ and java-db/), scanned offline.
	DB string
	// DBRepository and JavaDBRepository are mirrors of Trivy's DBs as OCI artifacts.
	DBRepository, JavaDBRepository string
	// RescanAfter and Rescan make an unchanged image due for a new scan (watch, build
	// --if-changed): its last scan is older than RescanAfter, or today's DB refuses it.
	RescanAfter string
	Rescan      bool
}

// AddFlags adds the gate's flags; gate adds --scan itself (build), rescan the rescan
// flags (build --if-changed, watch).
func (o *scanOptions) AddFlags(cmd *cobra.Command, gate, rescan bool) {
	o.Scan = "auto"
	f := cmd.Flags()
	if gate {
		f.Var(&o.Scan, "scan", "the vulnerability gate: scan the pushed image by digest with Trivy before it is signed or tagged (exit 5 when refused): true, false, or auto = when Trivy is found (next to wso2img, or on PATH) or a profile has a scan: block")
		f.Lookup("scan").NoOptDefVal = "true"
	}
	if rescan {
		f.StringVar(&o.RescanAfter, "rescan-after", "", "an image that did not change is due all the same when its last vulnerability scan finished longer ago than this `AGE` (7d), or it has none (reason: rescan)")
		f.BoolVar(&o.Rescan, "rescan", false, "scan each up-to-date image with today's vulnerability DB: due when the gate would now refuse it (reason: rescan); needs Trivy as for the gate")
	}
	f.StringVar(&o.Trivy, "trivy", "", "the trivy `BINARY` of the gate (default: trivy next to wso2img, then on PATH; make tools builds bin/trivy)")
	f.StringVar(&o.Server, "scan-server", "", "scan against this `trivy server` URL, so that a fleet shares one vulnerability DB (token from "+scanTokenEnv+")")
	f.StringVar(&o.DB, "scan-db", "", "a Trivy cache `DIR` holding the vulnerability DB and Java DB (db/, java-db/): scan offline with it, no DB download (prepare it where the network is reachable: trivy image --download-db-only --download-java-db-only --cache-dir DIR)")
	f.StringVar(&o.DBRepository, "scan-db-repository", "", "a mirror of Trivy's vulnerability DB as an OCI artifact in your registry (`REF`, e.g. registry.acme.com/mirror/trivy-db:2)")
	f.StringVar(&o.JavaDBRepository, "scan-java-db-repository", "", "a mirror of Trivy's Java DB as an OCI artifact (`REF`, e.g. registry.acme.com/mirror/trivy-java-db:1)")
}

// scanner sets up the gate: a Scanner, or nil and why the gate is off.
func (o *scanOptions) scanner(profs []*profiles.Profile, insecure []string, log io.Writer) (publish.Scanner, string, error) {
	required := o.Scan == "true"
	if o.Scan == "auto" {
		for _, p := range profs {
			if !p.Scan.IsZero() {
				required = true
			}
		}
	}
	if o.Scan == "false" {
		return nil, "the vulnerability gate is off (--scan=false)", nil
	}
	opts := scan.Options{Trivy: o.Trivy, Server: o.Server, DBRepository: o.DBRepository, JavaDBRepository: o.JavaDBRepository,
		ServerToken: os.Getenv(scanTokenEnv), Insecure: nonLoopback(insecure), Log: log}
	if o.DB != "" {
		opts.CacheDir, opts.Offline = o.DB, true
	}
	if dc := os.Getenv("DOCKER_CONFIG"); dc != "" {
		opts.Env = append(opts.Env, "DOCKER_CONFIG="+dc)
	}
	s, err := scan.New(opts)
	switch {
	case errors.Is(err, scan.ErrTrivyNotFound) && !required:
		return nil, "the vulnerability gate is off: no trivy found next to wso2img or on PATH (make tools builds bin/trivy; --scan=true requires the gate)", nil
	case err != nil:
		return nil, "", usageError{fmt.Errorf("the vulnerability gate: %w", err)}
	}
	return s, "", nil
}

// nonLoopback reports whether a plain-HTTP registry is not on loopback: Trivy's
// --insecure is all or nothing, and loopback registries need none.
func nonLoopback(hosts []string) bool {
	for _, h := range hosts {
		host, _, err := net.SplitHostPort(h)
		if err != nil {
			host = h
		}
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			continue
		}
		return true
	}
	return false
}

// printFindings writes a result's refused (or else counted) findings as a table.
func printFindings(w io.Writer, r *publish.Result) {
	for _, sr := range r.Scan {
		for _, f := range sr.Failed {
			fixed := f.FixedVersion
			if fixed == "" {
				fixed = "(no fix)"
			}
			where := ""
			if len(r.Scan) > 1 {
				where = " [" + sr.Platform + "]"
			}
			fmt.Fprintf(w, "  refused\t%s %s %s %s → %s in %s (%s)%s\n", f.Severity, f.ID, f.Package, f.InstalledVersion, fixed, strings.TrimSpace(f.Path+" "+f.Target), f.Origin, where)
		}
		for _, f := range sr.Ignored {
			fmt.Fprintf(w, "  ignored\t%s %s %s %s (%s)\n", f.Severity, f.ID, f.Package, f.InstalledVersion, f.Statement)
		}
	}
}

// rescan is the watch.Rescan the flags ask for.
func (o *scanOptions) rescan(profs []*profiles.Profile, insecure []string, log io.Writer) (watch.Rescan, error) {
	var r watch.Rescan
	if o.RescanAfter != "" {
		age, err := verify.ParseAge(o.RescanAfter)
		if err != nil {
			return r, usageError{fmt.Errorf("--rescan-after: %w", err)}
		}
		r.After = age
	}
	if o.Rescan {
		gate := *o
		gate.Scan = "true"
		s, _, err := gate.scanner(profs, insecure, log)
		if err != nil {
			return r, err
		}
		r.Scanner = s
	}
	return r, nil
}
