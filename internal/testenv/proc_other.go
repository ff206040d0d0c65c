//go:build !linux

package testenv

import "syscall"

// daemonAttr: outside Linux there is no Pdeathsig; Close is the only way a daemon stops.
func daemonAttr() *syscall.SysProcAttr { return nil }

// unmountUnder has nothing to do outside Linux, where buildkitd does not run.
func unmountUnder(string) error { return nil }
