package main

import (
	"errors"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/scan"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// Exit codes, documented in the README and in `wso2img --help`.
const (
	exitOK = 0
	// exitFailure: building, pushing or signing failed.
	exitFailure = 1
	// exitUsage: bad flags or arguments, or a profile error.
	exitUsage = 2
	// exitVerification: an input (or the base) failed verification.
	exitVerification = 3
	// exitPolicy: `verify` found a bad signature or a policy violation.
	exitPolicy = 4
	// exitGate: the vulnerability gate refused the image.
	exitGate = 5
)

const exitCodesHelp = `Exit codes:
  0  success
  1  failure while building, pushing or signing
  2  usage or profile error
  3  an input or the base image failed verification
  4  verify found a bad signature or a policy violation
  5  the vulnerability gate refused the image (pushed by digest, not signed, not tagged)`

// usageError is a mistake in flags or arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode maps an error to the documented exit code. When one run fails for several
// reasons (several profiles), the highest code wins, so that a verification failure is
// never hidden behind an ordinary one.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	code := exitFailure
	walk(err, func(e error) {
		c := exitFailure
		var perr *profiles.Error
		var verr *inputs.VerifyError
		var uerr usageError
		var plerr *build.PlatformError
		var violation *verify.ViolationError
		var baseErr *verify.BaseError
		var keyErr *sign.KeyError
		var gate *scan.GateError
		switch {
		case errors.As(e, &gate):
			c = exitGate
		case errors.As(e, &violation):
			c = exitPolicy
		case errors.As(e, &verr), errors.As(e, &baseErr):
			c = exitVerification
		case errors.As(e, &perr), errors.As(e, &uerr), errors.As(e, &plerr), errors.As(e, &keyErr):
			c = exitUsage
		}
		code = max(code, c)
	})
	return code
}

// walk calls fn on err and on every error joined into it.
func walk(err error, fn func(error)) {
	fn(err)
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			walk(e, fn)
		}
	}
}
