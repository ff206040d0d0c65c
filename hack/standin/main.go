// Command standin builds a stand-in for an official WSO2 base image (see
// internal/standin) and pushes it under every --ref, printing its digest on stdout.
// It is a development tool for the demo, tests and benchmarks, not part of wso2img.
//
//	go run ./hack/standin --product wso2is --version 5.8.0 --ports 4000,9763,9443 \
//	    --ref 127.0.0.1:5000/wso2is:5.8.0.1565855673150-alpine3.10 \
//	    --ref 127.0.0.1:5000/wso2is:5.8.0-alpine3.10 --insecure
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/trivydb"
)

// list is a repeatable flag; each value may also be a comma-separated list.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		o                   standin.Options
		refs, ports, labels list
		platforms           list
		created             string
		insecure, index     bool
		vulnerableOS        bool
	)
	fs := flag.NewFlagSet("standin", flag.ContinueOnError)
	fs.StringVar(&o.Product, "product", "", "product short name, e.g. wso2is (required)")
	fs.StringVar(&o.Version, "version", "", "product version, e.g. 5.8.0 (required)")
	fs.StringVar(&o.User, "user", standin.DefaultUser, "product user")
	fs.StringVar(&o.Group, "group", standin.DefaultGroup, "product group")
	fs.IntVar(&o.UID, "uid", standin.DefaultID, "uid of the product user")
	fs.IntVar(&o.GID, "gid", standin.DefaultID, "gid of the product group")
	fs.StringVar(&o.Home, "home", "", "product home (default /home/USER/PRODUCT-VERSION)")
	fs.Var(&ports, "ports", "exposed TCP ports, comma-separated or repeated")
	fs.StringVar(&o.Busybox, "busybox", standin.DefaultBusybox, "static busybox binary for the host's platform")
	fs.Int64Var(&o.FillerBytes, "filler-bytes", 0, "add a layer of this many incompressible bytes")
	fs.Var(&labels, "label", "extra config label KEY=VALUE, repeatable (e.g. update_level=15)")
	fs.StringVar(&created, "created", "", "creation time and file mtime: RFC 3339, or a WUM timestamp (13-digit ms epoch); default the Unix epoch")
	fs.Var(&refs, "ref", "push to this reference, repeatable (required)")
	fs.Var(&platforms, "platform", "platforms, comma-separated (default the host's, linux/"+runtime.GOARCH+")")
	fs.BoolVar(&index, "index", false, "push an index even for one platform (always for several)")
	fs.BoolVar(&insecure, "insecure", false, "allow plain-HTTP registries (loopback)")
	fs.BoolVar(&vulnerableOS, "vulnerable-os", false, "add an Alpine 3.20 package database with a vulnerable musl (a HIGH finding of the base's own, for the vulnerability gate)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(refs) == 0 {
		return errors.New("at least one --ref is required")
	}
	for _, p := range ports {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("--ports: %q is not a port", p)
		}
		o.Ports = append(o.Ports, n)
	}
	for _, kv := range labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: want KEY=VALUE", kv)
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	if created != "" {
		t, err := parseCreated(created)
		if err != nil {
			return err
		}
		o.Created = t
	}
	if vulnerableOS {
		o.Extra = trivydb.Musl.Files
	}
	if len(platforms) == 0 {
		platforms = list{"linux/" + runtime.GOARCH}
	}
	var plats []v1.Platform
	for _, s := range platforms {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return fmt.Errorf("--platform %q: %w", s, err)
		}
		plats = append(plats, *p)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var push func(ref string) (string, error)
	if index || len(plats) > 1 {
		idx, err := standin.Index(o, plats...)
		if err != nil {
			return err
		}
		push = func(ref string) (string, error) { return standin.PushIndex(ctx, ref, idx, insecure) }
	} else {
		img, err := standin.Image(o, plats[0])
		if err != nil {
			return err
		}
		push = func(ref string) (string, error) { return standin.Push(ctx, ref, img, insecure) }
	}
	var digest string
	for _, ref := range refs {
		d, err := push(ref)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "standin: pushed %s@%s\n", ref, d)
		digest = d
	}
	fmt.Println(digest)
	return nil
}

// parseCreated reads an RFC 3339 time or a WUM timestamp (milliseconds since the epoch).
func parseCreated(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--created %q: want RFC 3339 or a millisecond epoch", s)
	}
	return t, nil
}
