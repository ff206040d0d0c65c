package inputs

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Size caps: a detached signature is a few hundred bytes, a keyring a few kilobytes;
// anything far bigger is not what it claims to be.
const (
	maxSignatureSize = 1 << 20
	maxKeyringSize   = 16 << 20
)

var armorPublicKey = []byte("-----BEGIN " + openpgp.PublicKeyType + "-----")

// binary tells binary OpenPGP data from armored text: every binary packet starts with a
// tag byte that has its high bit set, which no text does.
func binary(data []byte) bool { return len(data) > 0 && data[0]&0x80 != 0 }

// Keyring is the set of trusted keys: the primary keys of a keyring file whose
// fingerprints are pinned, with their subkeys.
type Keyring struct {
	path    string
	trusted openpgp.EntityList
	all     openpgp.EntityList // every key in the file, to say why a signer is refused
	pinned  []string           // normalised fingerprints, for messages
}

// LoadKeyring reads an armored or binary OpenPGP keyring and keeps only the primary
// keys whose fingerprints are pinned (hex, case-insensitive, spaces ignored; v4 has
// 40 hex digits, v6 64). A malformed fingerprint, or one not found in the file as a
// primary key, is an error. An armored file may hold several public key blocks, as
// projects' KEYS files do.
func LoadKeyring(path string, fingerprints []string) (*Keyring, error) {
	if len(fingerprints) == 0 {
		return nil, fmt.Errorf("loading keyring %s: no fingerprint is pinned, so no key would be trusted", path)
	}
	all, err := readKeyring(path)
	if err != nil {
		return nil, fmt.Errorf("loading keyring %s: %w", path, err)
	}
	k := &Keyring{path: path, all: all}
	for _, raw := range fingerprints {
		fp := strings.ToUpper(strings.Join(strings.Fields(raw), ""))
		if _, err := hex.DecodeString(fp); err != nil || (len(fp) != 40 && len(fp) != 64) {
			return nil, fmt.Errorf("loading keyring %s: pinned fingerprint %q is malformed: expected 40 (v4) or 64 (v6) hex digits, found %d characters", path, raw, len(fp))
		}
		e := findPrimary(all, fp)
		if e == nil {
			if p := findSubkeyOwner(all, fp); p != nil {
				return nil, fmt.Errorf("loading keyring %s: pinned fingerprint %s is a subkey of %s; pin the primary key", path, fp, fingerprint(p))
			}
			return nil, fmt.Errorf("loading keyring %s: pinned fingerprint %s not found; the file has primary keys %s", path, fp, primaries(all))
		}
		k.pinned = append(k.pinned, fp)
		if findPrimary(k.trusted, fp) == nil {
			k.trusted = append(k.trusted, withRevocations(all, e))
		}
	}
	return k, nil
}

func readKeyring(path string) (openpgp.EntityList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyringSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyringSize {
		return nil, fmt.Errorf("bigger than %d MiB, which no keyring is", maxKeyringSize>>20)
	}
	if binary(data) {
		return openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	// ReadArmoredKeyRing reads the first block only; decode each one.
	var all openpgp.EntityList
	for rest := data; ; {
		i := bytes.Index(rest, armorPublicKey)
		if i < 0 {
			break
		}
		block, err := armor.Decode(bytes.NewReader(rest[i:]))
		if err != nil {
			return nil, fmt.Errorf("decoding armor: %w", err)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, err
		}
		all = append(all, el...)
		rest = rest[i+len(armorPublicKey):]
	}
	if len(all) == 0 {
		return nil, errors.New("no armored public key block in it")
	}
	return all, nil
}

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func findPrimary(el openpgp.EntityList, fp string) *openpgp.Entity {
	for _, e := range el {
		if fingerprint(e) == fp {
			return e
		}
	}
	return nil
}

// withRevocations is e with the revocations of every copy of the same key in the file
// (a KEYS file that lists a key, and further down the same key with its revocation):
// a revocation anywhere wins over a copy without it.
func withRevocations(all openpgp.EntityList, e *openpgp.Entity) *openpgp.Entity {
	merged := *e
	merged.Revocations = append([]*packet.Signature(nil), e.Revocations...)
	merged.Subkeys = append([]openpgp.Subkey(nil), e.Subkeys...)
	for _, other := range all {
		if other == e || fingerprint(other) != fingerprint(e) {
			continue
		}
		merged.Revocations = append(merged.Revocations, other.Revocations...)
		for _, osk := range other.Subkeys {
			for i := range merged.Subkeys {
				if bytes.Equal(merged.Subkeys[i].PublicKey.Fingerprint, osk.PublicKey.Fingerprint) {
					merged.Subkeys[i].Revocations = append(append([]*packet.Signature(nil), merged.Subkeys[i].Revocations...), osk.Revocations...)
				}
			}
		}
	}
	return &merged
}

func findSubkeyOwner(el openpgp.EntityList, fp string) *openpgp.Entity {
	for _, e := range el {
		for _, sk := range e.Subkeys {
			if strings.ToUpper(hex.EncodeToString(sk.PublicKey.Fingerprint)) == fp {
				return e
			}
		}
	}
	return nil
}

func primaries(el openpgp.EntityList) string {
	fps := make([]string, len(el))
	for i, e := range el {
		fps[i] = fingerprint(e)
	}
	return strings.Join(fps, ", ")
}

// verifySignature checks the detached signature of s against the verified file at
// local and returns the fingerprint of the pinned primary key that made it.
func (f *Fetcher) verifySignature(ctx context.Context, s Spec, local string) (string, error) {
	sig, err := f.readSignature(ctx, s)
	if err != nil {
		return "", err
	}
	file, err := os.Open(local)
	if err != nil {
		return "", fmt.Errorf("%s: opening it to check its signature: %w", where(s.Profile, s.Field, s.source()), err)
	}
	defer file.Close()
	signer, err := s.Keyring.check(ctxReader{ctx, file}, sig)
	if err == nil {
		return signer, nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s: checking the signature: %w", where(s.Profile, s.Field, s.source()), ctx.Err())
	}
	e := verifyErr(s, whatGPG,
		fmt.Sprintf("a valid signature by a pinned key (%s)", strings.Join(s.Keyring.pinned, ", ")),
		fmt.Sprintf("%s (signature %s)", err, s.Signature))
	e.Err = errors.Unwrap(err)
	return "", e
}

// readSignature reads the signature file of s, from https or a local path, and
// refuses one bigger than maxSignatureSize.
func (f *Fetcher) readSignature(ctx context.Context, s Spec) ([]byte, error) {
	// Problems with the signature file itself are reported against it.
	ss := s
	ss.Field += ".signature"
	ss.URL, ss.Path = "", ""
	var r io.Reader
	if filepath.IsAbs(s.Signature) {
		ss.Path = s.Signature
		file, err := os.Open(s.Signature)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the signature: %w", where(ss.Profile, ss.Field, ss.Path), err)
		}
		defer file.Close()
		r = file
	} else {
		ss.URL = s.Signature
		if u, err := url.Parse(s.Signature); err == nil && u.Scheme == "" {
			return nil, fmt.Errorf("%s: a signature is an https URL or an absolute path", where(ss.Profile, ss.Field, ss.URL))
		}
		u, err := parseHTTPS(ss, s.Signature)
		if err != nil {
			return nil, err
		}
		// The input's credentials go with it to its own host only.
		if own, perr := url.Parse(s.URL); s.URL == "" || perr != nil || !sameHost(own, u) {
			ss.Auth = nil
		}
		resp, err := f.client.get(ctx, ss, u)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		r = resp.Body
	}
	sig, err := io.ReadAll(io.LimitReader(r, maxSignatureSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the signature: %w", where(ss.Profile, ss.Field, ss.source()), err)
	}
	if len(sig) > maxSignatureSize {
		return nil, verifyErr(ss, whatGPG, fmt.Sprintf("a signature file of at most %d MiB", maxSignatureSize>>20), "a bigger file")
	}
	return sig, nil
}

// weakHashes are the hashes whose signatures are refused, by name.
var weakHashes = map[crypto.Hash]string{crypto.SHA1: "SHA-1", crypto.MD5: "MD5", crypto.RIPEMD160: "RIPEMD-160"}

// rejectHashes is weakHashes for go-crypto, so that nothing it parses differently
// slips through.
var rejectHashes = map[crypto.Hash]bool{crypto.SHA1: true, crypto.MD5: true, crypto.RIPEMD160: true}

// sigError is why a signature was refused, phrased to follow "found".
type sigError struct {
	found string
	err   error
}

func (e *sigError) Error() string { return e.found }
func (e *sigError) Unwrap() error { return e.err }

// check verifies sig (armored or binary) over signed against the pinned keys. go-crypto
// returns the signer together with an error for an expired or revoked key, so any
// error is a failure.
func (k *Keyring) check(signed io.Reader, sig []byte) (string, error) {
	body := sig
	if !binary(sig) {
		block, err := armor.Decode(bytes.NewReader(sig))
		if errors.Is(err, io.EOF) {
			return "", &sigError{"neither a binary nor an armored OpenPGP signature", err}
		}
		if err != nil {
			return "", &sigError{"an unreadable armored signature: " + err.Error(), err}
		}
		if block.Type != openpgp.SignatureType {
			return "", &sigError{fmt.Sprintf("an armored %q block, not a signature", block.Type), nil}
		}
		if body, err = io.ReadAll(block.Body); err != nil {
			return "", &sigError{"an unreadable armored signature: " + err.Error(), err}
		}
	}
	if sig := firstSignature(body); sig != nil && weakHashes[sig.Hash] != "" {
		return "", &sigError{fmt.Sprintf("a signature by %s made with %s, which is refused: collisions make such signatures forgeable (ask the vendor for a SHA-256 or SHA-512 signature)", k.issuer(body), weakHashes[sig.Hash]), nil}
	}
	signer, err := openpgp.CheckDetachedSignature(k.trusted, signed, bytes.NewReader(body), &packet.Config{RejectMessageHashAlgorithms: rejectHashes})
	if err == nil && signer != nil {
		return fingerprint(signer), nil
	}
	if err == nil {
		err = errors.New("no signer") // not expected from go-crypto; fail closed anyway
	}
	by := k.issuer(body)
	if signer != nil {
		by = describeKey(by, fingerprint(signer))
	}
	var bad pgperrors.SignatureError
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", &sigError{k.whyUnknown(body), err}
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return "", &sigError{fmt.Sprintf("a signature by %s, which is revoked", by), err}
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "", &sigError{fmt.Sprintf("a signature by %s, which has expired", by), err}
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return "", &sigError{fmt.Sprintf("an expired signature by %s", by), err}
	case errors.As(err, &bad):
		return "", &sigError{fmt.Sprintf("a bad signature by %s: it does not match the content (%v)", by, err), err}
	default:
		return "", &sigError{fmt.Sprintf("a signature by %s that could not be checked: %v", by, err), err}
	}
}

// whyUnknown says who made a signature that no pinned key made.
func (k *Keyring) whyUnknown(body []byte) string {
	id, ok := issuerKeyID(body)
	if !ok {
		return "a signature that names no issuer"
	}
	keys := k.all.KeysById(id)
	if len(keys) == 0 {
		return fmt.Sprintf("a signature by %s, which is not in keyring %s", k.issuer(body), k.path)
	}
	owner := fingerprint(keys[0].Entity)
	if findPrimary(k.trusted, owner) != nil {
		return fmt.Sprintf("a signature by %s, which is not valid for signing", describeKey(k.issuer(body), owner))
	}
	return fmt.Sprintf("a signature by %s, which is in keyring %s but not pinned", describeKey(k.issuer(body), owner), k.path)
}

// describeKey names the key that made a signature: issuer as issuer() gives it, and
// the fingerprint of its primary key, which says more when the issuer is a subkey.
func describeKey(issuer, primary string) string {
	if issuer == "key "+primary {
		return issuer
	}
	return fmt.Sprintf("sub%s of key %s", issuer, primary)
}

// issuer names the key that made a signature: its fingerprint, or its key ID when the
// signature carries only that.
func (k *Keyring) issuer(body []byte) string {
	sig := firstSignature(body)
	switch {
	case sig == nil:
		return "an unknown key"
	case len(sig.IssuerFingerprint) > 0:
		return "key " + strings.ToUpper(hex.EncodeToString(sig.IssuerFingerprint))
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("key ID %016X", *sig.IssuerKeyId)
	}
	return "an unknown key"
}

func issuerKeyID(body []byte) (uint64, bool) {
	sig := firstSignature(body)
	if sig == nil || sig.IssuerKeyId == nil {
		return 0, false
	}
	return *sig.IssuerKeyId, true
}

func firstSignature(body []byte) *packet.Signature {
	packets := packet.NewReader(bytes.NewReader(body))
	for {
		p, err := packets.Next()
		if err != nil {
			return nil
		}
		if sig, ok := p.(*packet.Signature); ok {
			return sig
		}
	}
}
