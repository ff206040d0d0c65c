// Command localenv runs a loopback registry and a private buildkitd (configured to use
// that registry over plain HTTP) for the demo and for trying wso2img by hand. Once both
// answer it writes KEY=VALUE lines to --env-file:
//
//	REGISTRY=127.0.0.1:PORT
//	BUILDKIT_HOST=unix:///…/buildkitd.sock
//	REGISTRY_LOG=…   BUILDKITD_LOG=…
//
// then stays in the foreground until SIGINT or SIGTERM, when it stops both and removes
// the env file. It is a development tool, not part of wso2img; it needs root and
// `make tools`.
//
//	go build -o bin/localenv ./hack/localenv && bin/localenv --env-file .state/localenv/env &
//	while [ ! -s .state/localenv/env ]; do sleep 0.2; done; . .state/localenv/env
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/wso2img/wso2img/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "localenv:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("localenv", flag.ContinueOnError)
	dir := fs.String("dir", ".state/localenv", "state directory of the registry and buildkitd")
	envFile := fs.String("env-file", "", "write REGISTRY and BUILDKIT_HOST here when ready (default DIR/env)")
	timeout := fs.Duration("start-timeout", 2*time.Minute, "give up when the daemons do not answer within this")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *envFile == "" {
		*envFile = filepath.Join(*dir, "env")
	}
	// A stale env file would let a waiting script go on before the daemons are up.
	if err := os.Remove(*envFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// When the parent dies (a `go run` killed with SIGTERM does not pass it on), stop
	// in order rather than be orphaned.
	dieWithParent()
	startCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	reg, err := testenv.StartRegistry(startCtx, filepath.Join(*dir, "registry"))
	if err != nil {
		return err
	}
	defer closeLogged("registry", reg.Close)
	fmt.Fprintf(os.Stderr, "localenv: registry on %s (log %s)\n", reg.Host, reg.LogFile)

	bk, err := testenv.StartBuildkitd(startCtx, filepath.Join(*dir, "buildkitd"), []string{reg.Host})
	if err != nil {
		return err
	}
	defer closeLogged("buildkitd", bk.Close)
	fmt.Fprintf(os.Stderr, "localenv: buildkitd on %s (log %s)\n", bk.Addr, bk.LogFile)

	if err := writeEnv(*envFile, [][2]string{
		{"REGISTRY", reg.Host},
		{"BUILDKIT_HOST", bk.Addr},
		{"REGISTRY_LOG", reg.LogFile},
		{"BUILDKITD_LOG", bk.LogFile},
	}); err != nil {
		return err
	}
	defer os.Remove(*envFile)
	fmt.Fprintf(os.Stderr, "localenv: ready; wrote %s; stop with SIGINT or SIGTERM\n", *envFile)

	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "localenv: stopping")
	return nil
}

func closeLogged(name string, closeFn func() error) {
	if err := closeFn(); err != nil {
		fmt.Fprintf(os.Stderr, "localenv: stopping %s: %v\n", name, err)
	}
}

// writeEnv writes KEY=VALUE lines that a shell can source, atomically (a reader never
// sees half a file).
func writeEnv(path string, vars [][2]string) error {
	var b strings.Builder
	for _, kv := range vars {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], shellQuote(kv[1]))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+,=-]*$`)

// shellQuote quotes s for a POSIX shell, only when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
