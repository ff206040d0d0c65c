package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/profiles"
)

// initOptions are the flags of `wso2img init`.
type initOptions struct {
	// from names the stock profile to extend.
	from string
	// level and wum are the update: a number, "latest", or "" (the stock's kind, latest).
	level, wum string
	// target is the repository to push to ("" for an example to change).
	target string
	// output is the profile's file; "-" is stdout.
	output string
	// force overwrites existing files.
	force bool
	// withIgnore also writes the Trivy ignore stub next to the profile.
	withIgnore bool
}

func addInit(root *cobra.Command) {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --from STOCK",
		Short: "Write a commented starter profile that extends a stock profile",
		Long: `init writes a profile to start from: it extends the stock profile named by --from
(see "wso2img profiles list"), follows WSO2's latest update of that product (level:
latest for Updates 2.0 images, wum: latest for WUM-era ones) unless --level or --wum
pins one, and pushes to --target (default registry.example.com/acme/PRODUCT, marked
to change). Commented examples show how to add a JDBC driver (with its sha256), your
deployment.toml, environment variables and ports, how to check WSO2's signature on
the base, and the vulnerability gate. "wso2img plan" accepts the file as written.

It also writes .trivyignore.yaml next to the profile (unless --with-trivyignore=false
or -o -): a stub in Trivy's YAML ignore format that accepts nothing, with a commented
example entry.

The profile goes to PRODUCT.yaml in the current folder unless -o names a file; -o -
prints it on stdout. Existing files are never overwritten without --force (exit code 2).`,
		Example: `  wso2img init --from wso2is-7.3.0
  wso2img init --from wso2am-acp-4.5.0 --level 3 --target registry.acme.com/apim/control-plane -o acp.yaml
  wso2img init --from wso2is-5.8.0 --wum latest -o - | less
  wso2img init --from wso2mi-4.5.0 -o mi/acme-mi.yaml && wso2img plan mi/acme-mi.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("init takes no arguments (found %q): name the stock profile with --from", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.OutOrStdout(), cmd.ErrOrStderr(), time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "the stock `PROFILE` to extend (see wso2img profiles list)")
	f.StringVar(&o.level, "level", "", "U2 update level to build on: `N` or latest (default: latest, for Updates 2.0 images)")
	f.StringVar(&o.wum, "wum", "", "WUM timestamp to build on: `TS` (13 digits) or latest (default: latest, for WUM-era images)")
	f.StringVar(&o.target, "target", "", "target `REPOSITORY` to push to (default: registry.example.com/acme/PRODUCT, to change)")
	f.StringVarP(&o.output, "output", "o", "", "write the profile to `FILE`; - for stdout (default: PRODUCT.yaml)")
	f.BoolVar(&o.force, "force", false, "overwrite existing files")
	f.BoolVar(&o.withIgnore, "with-trivyignore", true, "also write the Trivy ignore stub .trivyignore.yaml next to the profile")
	root.AddCommand(cmd)
}

// run renders the starter files, checks that none would overwrite a file (unless
// --force), then writes them. now dates the ignore stub's example.
func (o initOptions) run(stdout, stderr io.Writer, now time.Time) error {
	if o.from == "" {
		var names []string
		for _, s := range profiles.StockProfiles() {
			names = append(names, s.Name)
		}
		return usageError{fmt.Errorf("init needs --from: the stock profile to start from, one of:\n  %s", strings.Join(names, "\n  "))}
	}
	stock, err := profiles.LookupStock(o.from)
	if err != nil {
		return usageError{fmt.Errorf("init --from: %w", err)}
	}
	update, err := o.update()
	if err != nil {
		return usageError{err}
	}
	toStdout := o.output == "-"
	file := o.output
	if file == "" {
		file = stock.Profile.Product + ".yaml"
	}
	opts := profiles.StarterOptions{Update: update, Target: o.target}
	if !toStdout {
		opts.File = file
	}
	profile, err := profiles.Starter(o.from, opts)
	if err != nil {
		return fmt.Errorf("init --from %s: %w", o.from, err)
	}
	if toStdout {
		_, err := stdout.Write(profile)
		return err
	}

	files := []initFile{{file, profile, "-o another file"}}
	if o.withIgnore {
		ignore, err := profiles.StarterIgnore(o.from, now.AddDate(0, 3, 0))
		if err != nil {
			return err
		}
		files = append(files, initFile{filepath.Join(filepath.Dir(file), profiles.StarterIgnoreFile), ignore, "--with-trivyignore=false to keep it"})
	}
	// Check every file before writing any, so a refusal leaves nothing half written.
	if !o.force {
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				return usageError{fmt.Errorf("init: %s exists; pass --force to overwrite it, or %s", f.path, f.keep)}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return usageError{fmt.Errorf("init: checking %s: %w", f.path, err)}
			}
		}
	}
	for _, f := range files {
		if err := writeNew(f.path, f.data, o.force); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.path)
	}
	next := fmt.Sprintf("next: set target.repository in %s, then run: wso2img plan %s", file, file)
	if o.target != "" {
		next = "next: wso2img plan " + file
	}
	fmt.Fprintln(stderr, next)
	return nil
}

// initFile is one file init writes.
type initFile struct {
	path string
	data []byte
	// keep says how to keep an existing file instead of overwriting it.
	keep string
}

// update reads --level and --wum; neither means the stock profile's kind, latest.
func (o initOptions) update() (profiles.Update, error) {
	switch {
	case o.level != "" && o.wum != "":
		return profiles.Update{}, errors.New("init: set --level (a U2 update level) or --wum (a WUM timestamp), not both")
	case o.level == "latest":
		return profiles.Update{Latest: "level"}, nil
	case o.wum == "latest":
		return profiles.Update{Latest: "wum"}, nil
	case o.level != "":
		n, err := strconv.Atoi(o.level)
		if err != nil || n == 0 {
			// 0 would read as "no update given"; WSO2's tag {version}.0 floats, it is not an update.
			return profiles.Update{}, fmt.Errorf("init: --level %q: expected an update level (a whole number from 1) or latest", o.level)
		}
		return profiles.Update{Level: n}, nil
	case o.wum != "":
		n, err := strconv.ParseInt(o.wum, 10, 64)
		if err != nil || n == 0 {
			return profiles.Update{}, fmt.Errorf("init: --wum %q: expected a WUM timestamp (13 digits, milliseconds since 1970) or latest", o.wum)
		}
		return profiles.Update{WUM: n}, nil
	}
	return profiles.Update{}, nil
}

// writeNew writes data to path, creating its folder. Without force it never replaces a
// file, even one created since it was checked.
func writeNew(path string, data []byte, force bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("init: creating the folder of %s: %w", path, err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return usageError{fmt.Errorf("init: %s exists; pass --force to overwrite it", path)}
	}
	if err != nil {
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: writing %s: %w", path, err)
	}
	return nil
}
