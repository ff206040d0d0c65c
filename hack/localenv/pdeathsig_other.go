//go:build !linux

package main

// dieWithParent: only Linux can tie a process's life to its parent's.
func dieWithParent() {}
