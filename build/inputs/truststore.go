package inputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/wso2img/wso2img/build/truststore"
)

// maxCertificateSize bounds a certificate file: a bundle of every public CA is about
// 200 kB.
const maxCertificateSize = 1 << 20

// CertificateMaxSize is the Spec.MaxSize a trust store's certificate files are fetched
// with.
const CertificateMaxSize = maxCertificateSize

// TrustStoreSpec is a trust store input: its certificate files, each fetched and
// verified like any input (Stage.Fetch with MaxSize CertificateMaxSize), and how to
// write the store.
type TrustStoreSpec struct {
	// Profile and Field name the input, for messages.
	Profile, Field string
	// Certificates are the verified certificate files, in the profile's order; each
	// Spec.Field names the certificate in messages.
	Certificates []*Verified
	// Aliases name the entries, one per certificate file: "" derives them from the
	// subjects; a name given for a file that holds several certificates is an error.
	Aliases []string
	// Options say the format, the password and the build's time; see truststore.Build.
	Options truststore.Options
}

// TrustStore writes the trust store of s (the same bytes for the same certificates,
// aliases, password and time), keeps it in the stage and returns it as a file input
// named by its format (client-truststore.jks or .p12), with its entries. A refused
// certificate is a *VerifyError (What "trust store certificate") whose Err is the
// *truststore.CertError; several are joined.
func (st *Stage) TrustStore(ctx context.Context, s TrustStoreSpec) (*Verified, []truststore.Entry, error) {
	if len(s.Aliases) != 0 && len(s.Aliases) != len(s.Certificates) {
		return nil, nil, fmt.Errorf("profile %q, %s: %d aliases for %d certificate files", s.Profile, s.Field, len(s.Aliases), len(s.Certificates))
	}
	byField := map[string]*Verified{}
	var certs []truststore.Cert
	var errs []error
	for i, v := range s.Certificates {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		byField[v.Spec.Field] = v
		if v.Local == "" || v.Dir {
			return nil, nil, fmt.Errorf("%s: not a staged certificate file", where(s.Profile, v.Spec.Field, v.Spec.source()))
		}
		data, err := os.ReadFile(v.Local)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: reading the staged certificate: %w", where(s.Profile, v.Spec.Field, v.Spec.source()), err)
		}
		got, err := truststore.ParsePEM(v.Spec.Field, data)
		if err != nil {
			errs = append(errs, certError(v, err))
			continue
		}
		if i < len(s.Aliases) && s.Aliases[i] != "" {
			if len(got) > 1 {
				errs = append(errs, verifyErr(v.Spec, WhatTrustStore, "one certificate, for the alias "+s.Aliases[i],
					fmt.Sprintf("%d certificates in the file (drop alias to name each after its subject)", len(got))))
				continue
			}
			got[0].Alias = s.Aliases[i]
		}
		certs = append(certs, got...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	entries, err := truststore.Entries(certs, s.Options)
	if err == nil {
		var data []byte
		if data, err = truststore.Build(certs, s.Options); err == nil {
			return st.keepTrustStore(s, data, entries)
		}
	}
	return nil, nil, mapCertErrors(s, byField, err)
}

// keepTrustStore stages a built store.
func (st *Stage) keepTrustStore(s TrustStoreSpec, data []byte, entries []truststore.Entry) (*Verified, []truststore.Entry, error) {
	spec := Spec{Profile: s.Profile, Field: s.Field}
	fail := func(err error) (*Verified, []truststore.Entry, error) {
		return nil, nil, fmt.Errorf("profile %q, %s: staging the trust store: %w", s.Profile, s.Field, err)
	}
	tmp, err := st.newTemp()
	if err != nil {
		return fail(err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	local, err := st.keepFile(tmp.Name(), hexSum)
	if err != nil {
		return fail(err)
	}
	size := int64(len(data))
	v := &Verified{
		Spec:   spec,
		Local:  local,
		Digest: "sha256:" + hexSum,
		Size:   size,
		Files:  []File{{Rel: s.Options.Format.FileName(), Type: "file", Mode: 0o644, Size: size, SHA256: hexSum}},
	}
	st.f.logf("trust store %s (%s, %d entries) from %d certificate file(s)", s.Options.Format.FileName(), s.Options.Format, len(entries), len(s.Certificates))
	return v, entries, nil
}

// mapCertErrors turns truststore's errors into *VerifyErrors about the certificate
// files they concern.
func mapCertErrors(s TrustStoreSpec, byField map[string]*Verified, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var ce *truststore.CertError
		if errors.As(e, &ce) {
			if v, ok := byField[ce.Source]; ok {
				out = append(out, certError(v, ce))
				continue
			}
		}
		out = append(out, fmt.Errorf("profile %q, %s: building the trust store: %w", s.Profile, s.Field, e))
	}
	return errors.Join(out...)
}

// certError is a refused certificate of the file v, as a *VerifyError.
func certError(v *Verified, err error) error {
	var ce *truststore.CertError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: reading the certificate: %w", where(v.Spec.Profile, v.Spec.Field, v.Spec.source()), err)
	}
	expected := map[string]string{
		truststore.WhatExpired:       "a certificate valid now (allowExpired accepts others)",
		truststore.WhatNotYetValid:   "a certificate valid now (allowExpired accepts others)",
		truststore.WhatNotCA:         "a CA certificate (allowNonCA accepts a server's own)",
		truststore.WhatPrivateKey:    "certificates only",
		truststore.WhatNoCertificate: "PEM or DER certificates",
		truststore.WhatNotPEM:        "PEM or DER certificates",
		truststore.WhatDuplicate:     "each certificate once",
		truststore.WhatAlias:         "a distinct alias for each certificate",
	}[ce.What]
	found := ce.What
	if ce.Subject != "" {
		found = fmt.Sprintf("%q (SHA256 %s): %s", ce.Subject, ce.SHA256, ce.What)
	}
	if ce.Detail != "" {
		found += ": " + ce.Detail
	}
	if ce.Err != nil {
		found += ": " + ce.Err.Error()
	}
	e := verifyErr(v.Spec, WhatTrustStore, expected, found)
	e.Err = ce
	return e
}
