// Package satest mints ServiceAccount tokens as kube-apiserver signs them, with a key of the test's choosing, for tests of local verification.
package satest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is a signing key and the key id kube-apiserver derives for it.
type Key struct {
	Private crypto.Signer
	ID      string
}

// NewKey generates an ECDSA P-256 key (fast to make; the API server signs
// with ES256 for it).
func NewKey() (*Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return keyOf(k)
}

// NewRSAKey generates an RSA key of bits (RS256).
func NewRSAKey(bits int) (*Key, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	return keyOf(k)
}

// keyOf derives the key id as kube-apiserver does (pkg/serviceaccount
// keyIDFromPublicKey): the unpadded base64url SHA-256 of the public key's
// DER, the id it publishes in its key set.
func keyOf(k crypto.Signer) (*Key, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	return &Key{Private: k, ID: keyID(der)}, nil
}

// WriteFiles writes the private key (PKCS#8 PEM) and its public key (PKIX
// PEM) for kube-apiserver's --service-account-signing-key-file and
// --service-account-key-file.
func (k *Key) WriteFiles(private, public string) error {
	p8, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Private.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

// JWK is the public key as the issuer publishes it.
func (k *Key) JWK() jose.JSONWebKey {
	alg := string(jose.ES256)
	if _, ok := k.Private.(*rsa.PrivateKey); ok {
		alg = string(jose.RS256)
	}
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: alg, Use: "sig"}
}

// Token describes a ServiceAccount token. Zero times are left out.
type Token struct {
	Issuer            string
	Audiences         []string
	Namespace, Name   string
	UID               string
	PodName, PodUID   string
	NodeName, NodeUID string
	ID                string // jti
	IssuedAt, Expiry  time.Time
	NotBefore         time.Time
	Subject           string // default system:serviceaccount:NS:NAME
	Legacy            bool   // a Secret-based token: legacy claims, no expiry
	SecretName        string // with Legacy
	OmitKeyID         bool
}

// Sign signs t with k as kube-apiserver does.
func (k *Key) Sign(t Token) (string, error) {
	alg := jose.ES256
	if _, ok := k.Private.(*rsa.PrivateKey); ok {
		alg = jose.RS256
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if !t.OmitKeyID {
		opts = opts.WithHeader("kid", k.ID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.Private}, opts)
	if err != nil {
		return "", err
	}
	sub := t.Subject
	if sub == "" {
		sub = fmt.Sprintf("system:serviceaccount:%s:%s", t.Namespace, t.Name)
	}
	if t.Legacy {
		return jwt.Signed(signer).Claims(map[string]any{
			"iss":                                    "kubernetes/serviceaccount",
			"sub":                                    sub,
			"kubernetes.io/serviceaccount/namespace": t.Namespace,
			"kubernetes.io/serviceaccount/secret.name":          t.SecretName,
			"kubernetes.io/serviceaccount/service-account.name": t.Name,
			"kubernetes.io/serviceaccount/service-account.uid":  t.UID,
		}).Serialize()
	}
	public := jwt.Claims{Issuer: t.Issuer, Subject: sub, Audience: t.Audiences, ID: t.ID}
	if !t.IssuedAt.IsZero() {
		public.IssuedAt = jwt.NewNumericDate(t.IssuedAt)
	}
	if !t.Expiry.IsZero() {
		public.Expiry = jwt.NewNumericDate(t.Expiry)
	}
	if !t.NotBefore.IsZero() {
		public.NotBefore = jwt.NewNumericDate(t.NotBefore)
	}
	kube := map[string]any{
		"namespace":      t.Namespace,
		"serviceaccount": map[string]string{"name": t.Name, "uid": t.UID},
	}
	if t.PodName != "" {
		kube["pod"] = map[string]string{"name": t.PodName, "uid": t.PodUID}
	}
	if t.NodeName != "" {
		kube["node"] = map[string]string{"name": t.NodeName, "uid": t.NodeUID}
	}
	return jwt.Signed(signer).Claims(public).Claims(map[string]any{"kubernetes.io": kube}).Serialize()
}

func keyID(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
