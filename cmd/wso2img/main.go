// Command wso2img builds extended WSO2 images on the official WSO2 base images through
// BuildKit, verifying every input, and pushes, signs and tags them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

func main() {
	// BuildKit's client logs through logrus; its warnings (a filesystem without
	// fs-verity, say) are not the user's business.
	logrus.SetLevel(logrus.ErrorLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRoot()
	err := root.ExecuteContext(ctx)
	stop()
	var te *timeoutError
	if err != nil && root.Context() != nil && errors.As(context.Cause(root.Context()), &te) {
		err = fmt.Errorf("gave up: %w: %w", te, err)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wso2img:", err)
	}
	os.Exit(exitCode(err))
}
