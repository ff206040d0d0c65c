package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/wso2img/wso2img/internal/version"
	"github.com/wso2img/wso2img/sign"
)

// envVars are the environment variables wso2img reads besides WSO2IMG_<FLAG>, declared
// once so that help and README agree.
var envVars = []struct{ name, help string }{
	{"WSO2IMG_<FLAG>", "any flag, upper-cased with '-' as '_' (WSO2IMG_INSECURE_REGISTRY=127.0.0.1:5000)"},
	{"BUILDKIT_HOST", "BuildKit daemon address, like --buildkit-host"},
	{"SSL_CERT_FILE", "CA bundle trusted for HTTPS inputs, in addition to --ca-file"},
	{"DOCKER_CONFIG", "folder of the docker config.json holding registry credentials"},
	{"XDG_CACHE_HOME", "the download cache lives in $XDG_CACHE_HOME/wso2img"},
	{"XDG_CONFIG_HOME", "wso2img.yaml is also looked for in $XDG_CONFIG_HOME/wso2img"},
	{"XDG_STATE_HOME", "wso2img's private buildkitd lives in $XDG_STATE_HOME/wso2img/buildkitd"},
	{"GITHUB_OUTPUT", "with GITHUB_ACTIONS=true: build and watch write their step outputs here"},
	{scanTokenEnv, "token of the trivy server named by --scan-server"},
	{"GITHUB_STEP_SUMMARY", "with GITHUB_ACTIONS=true: build and watch write a markdown summary here"},
}

func newRoot() *cobra.Command {
	var configFile string
	var timeout time.Duration
	root := &cobra.Command{
		Use:   "wso2img",
		Short: "Build verified, signed extensions of the official WSO2 images",
		Long: `wso2img builds extended WSO2 images (Identity Server, API Manager, Micro Integrator…)
on the official WSO2 base images through BuildKit. It pins the base by digest, verifies
every input (HTTPS, checksum, GPG signature), adds them as one layer owned by the
product's non-root user, tags by the WSO2 scheme, and pushes by digest before tagging.

Settings come from flags, then WSO2IMG_<FLAG> environment variables, then the config
file wso2img.yaml (current folder, or $XDG_CONFIG_HOME/wso2img), whose keys are the
flag names. Settings that weaken verification or redirect trust (insecure-*, keys, CAs,
transparency logs, policies, BuildKit hosts, mirrors, signing and scanning switches) are
never taken from a wso2img.yaml found in the current folder: name it with --config.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// Progress, logs of concurrent builds and signing all write to stderr. A file
			// takes concurrent writes whole (and must stay a file, for the tty display);
			// anything else is serialised.
			if _, isFile := cmd.Root().ErrOrStderr().(*os.File); !isFile {
				cmd.Root().SetErr(&lockedWriter{w: cmd.Root().ErrOrStderr()})
			}
			if err := bindConfig(cmd, configFile); err != nil {
				return err
			}
			if timeout > 0 {
				// Lives until the process exits; main reads the cause to say why it ended.
				ctx, cancel := context.WithCancelCause(cmd.Context())
				time.AfterFunc(timeout, func() { cancel(&timeoutError{timeout}) })
				cmd.SetContext(ctx)
				cmd.Root().SetContext(ctx)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&configFile, "config", "", "config file (default: ./wso2img.yaml, then $XDG_CONFIG_HOME/wso2img/wso2img.yaml)")
	root.PersistentFlags().DurationVar(&timeout, "timeout", 0, "give up the whole command after this `DURATION` (30m, 2h): a nightly job that must end; 0 = no limit beyond each network step's own timeouts")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetHelpTemplate(root.HelpTemplate() + "\n" + envHelp() + "\n\n" + exitCodesHelp + "\n")
	root.Version = version.String()

	addBuild(root)
	addPlan(root)
	addProfiles(root)
	addVersion(root)
	addVerify(root)
	addWatch(root)
	addMirror(root)
	addInit(root)
	addPolicy(root)
	return root
}

func envHelp() string {
	var b strings.Builder
	b.WriteString("Environment:")
	for _, e := range envVars {
		fmt.Fprintf(&b, "\n  %-28s %s", e.name, e.help)
	}
	for _, e := range sign.Environment {
		fmt.Fprintf(&b, "\n  %-28s %s", e.Name, e.Help)
	}
	return b.String()
}

// timeoutError is the cause of a command's context when --timeout runs out.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("--timeout %s ran out", e.d) }

// argsAtLeast is cobra.MinimumNArgs whose error is a usage error (exit 2).
func argsAtLeast(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s needs at least %d %s (see %s --help)", cmd.CommandPath(), n, what, cmd.CommandPath())}
		}
		return nil
	}
}

// configFile is a config file and how it was found.
type configFile struct {
	path string
	// implicit: found in the working folder, not named with --config nor in the user's
	// own config folder. Such a file may come with a cloned repository.
	implicit bool
}

// findConfig looks for wso2img.yaml (or .yml) in the current folder, then in
// $XDG_CONFIG_HOME/wso2img. Only those exact names count: viper's own search would also
// take a file called just "wso2img" — such as the binary itself.
func findConfig() configFile {
	dirs := []string{"."}
	if dir, err := os.UserConfigDir(); err == nil {
		dirs = append(dirs, filepath.Join(dir, "wso2img"))
	}
	for i, d := range dirs {
		for _, name := range []string{"wso2img.yaml", "wso2img.yml"} {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return configFile{path: p, implicit: i == 0}
			}
		}
	}
	return configFile{}
}

// trustSettings weaken verification or redirect trust: which daemon builds, which keys,
// CAs, transparency logs and policies count, whether signing and the gate run. They are
// taken from flags, the environment or a config file named with --config — never from
// one merely found in the working folder.
var trustSettings = map[string]bool{
	"require-attestations": true, "ca-roots": true, "ca-file": true, "fulcio-url": true, "rekor-url": true,
	"oidc-issuer": true, "oidc-client-id": true, "identity-token": true, "buildkit-host": true, "builders": true,
	"buildkit-ca": true, "buildkit-cert": true, "buildkit-key": true, "policy": true, "mirror": true,
	"key": true, "certificate-identity": true, "certificate-identity-regexp": true,
	"certificate-oidc-issuer": true, "certificate-oidc-issuer-regexp": true, "sign": true, "tlog-upload": true,
	"scan": true, "scan-server": true, "scan-db": true, "scan-db-repository": true, "scan-java-db-repository": true, "trivy": true, "require-vuln-scan": true,
	"max-scan-age": true, "max-scan-severity": true, "base-cache": true,
	// An imported build cache is used without rebuilding; an exported one holds the
	// layers (config files included) and goes where the setting says.
	"cache-from": true, "cache-to": true,
}

func isTrustSetting(key string) bool {
	return trustSettings[key] || strings.HasPrefix(key, "insecure-")
}

// checkImplicitConfig refuses a config file found in the working folder that sets a
// trust setting, and any key that is no flag of wso2img (a typo must not silently drop
// a setting).
func checkImplicitConfig(root *cobra.Command, cf configFile, keys []string) error {
	flags := map[string]bool{}
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { flags[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { flags[f.Name] = true })
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(root)
	var unknown, trust []string
	for _, k := range keys {
		switch {
		case !flags[k]:
			unknown = append(unknown, k)
		case cf.implicit && isTrustSetting(k):
			trust = append(trust, k)
		}
	}
	sort.Strings(unknown)
	sort.Strings(trust)
	var errs []error
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("config file %s: unknown key(s) %s: keys are the names of wso2img's flags (see wso2img COMMAND --help)", cf.path, strings.Join(unknown, ", ")))
	}
	if len(trust) > 0 {
		errs = append(errs, fmt.Errorf("config file %s was found in the working folder and sets %s: settings that weaken verification or redirect trust (insecure-*, keys, CAs, transparency logs, policies, BuildKit hosts, mirrors, signing and scanning) are taken only from flags, WSO2IMG_* variables or a file named with --config, never from a wso2img.yaml that merely sits in the folder (a cloned repository can carry one); if you trust this file, pass --config %s",
			cf.path, strings.Join(trust, ", "), cf.path))
	}
	return errors.Join(errs...)
}

// bindConfig fills every flag the user did not set from WSO2IMG_* variables and the
// config file, the way ko does it: flags win, then the environment, then the file.
func bindConfig(cmd *cobra.Command, explicit string) error {
	v := viper.New()
	v.SetConfigType("yaml")
	cf := configFile{path: explicit}
	if explicit == "" {
		cf = findConfig()
	}
	if cf.path != "" {
		// The file alone, to see which keys it sets.
		fv := viper.New()
		fv.SetConfigType("yaml")
		fv.SetConfigFile(cf.path)
		if err := fv.ReadInConfig(); err != nil {
			return usageError{fmt.Errorf("reading config file %s: %w", cf.path, err)}
		}
		if err := checkImplicitConfig(cmd.Root(), cf, fv.AllKeys()); err != nil {
			return usageError{err}
		}
		v.SetConfigFile(cf.path)
		if err := v.ReadInConfig(); err != nil {
			return usageError{fmt.Errorf("reading config file %s: %w", cf.path, err)}
		}
	}
	v.SetEnvPrefix("WSO2IMG")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindEnv("buildkit-host", "WSO2IMG_BUILDKIT_HOST", "BUILDKIT_HOST"); err != nil {
		return err
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" || !v.IsSet(f.Name) {
			return
		}
		val := v.Get(f.Name)
		// A setting that is more than a string (builders: a list of maps) reads the
		// value as the file holds it.
		if cv, ok := f.Value.(interface{ SetConfigValue(any) error }); ok {
			if err := cv.SetConfigValue(val); err != nil {
				errs = append(errs, fmt.Errorf("setting %s from the environment or config file: %w", f.Name, err))
			}
			return
		}
		var s string
		switch x := val.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		case []string:
			s = strings.Join(x, ",")
		default:
			s = fmt.Sprint(x)
		}
		if err := f.Value.Set(s); err != nil {
			errs = append(errs, fmt.Errorf("setting %s from the environment or config file (%q): %w", f.Name, s, err))
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// lockedWriter serialises writes, so that lines written at once by several goroutines
// (BuildKit's progress display, planning and signing logs) never interleave mid-line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
