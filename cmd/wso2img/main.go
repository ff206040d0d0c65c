// Command wso2img builds extended WSO2 images on the official WSO2 base images through
// BuildKit, verifying every input, and pushes, signs and tags them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wso2img:", err)
	}
	os.Exit(exitCode(err))
}
