package review

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
)

// requestAuthenticator identifies a caller by client certificate first (no
// TokenReview is made when a valid certificate is presented), then by bearer
// token: verified by the JWT authenticators when they are configured (and
// then by them alone, as kube-rbac-proxy does with --oidc-issuer), else by
// a TokenReview. Any may be absent. Every decision is counted by the method
// that made it (or was attempted: x509, jwt, token, none) and its result.
type requestAuthenticator struct {
	x509  authenticator.Request // nil without --client-ca-file
	jwt   authenticator.Token   // nil without --oidc-issuer or --authentication-config
	token *tokenAuthenticator   // nil when tokens cannot be reviewed, or jwt is set
	// local verifies ServiceAccount tokens before token reviews them; nil
	// unless --service-account-token-verification=local.
	local   *saTokenAuthenticator
	metrics *metrics
}

// errNoCredentials is returned when the request carries nothing to verify.
var errNoCredentials = errors.New("no client certificate or bearer token")

// errNotBearer: the Authorization header is not "Bearer <token>".
var errNotBearer = errors.New("invalid bearer token")

// AuthenticateRequest implements authenticator.Request. A caller that is not
// authenticated always comes with an error that says why.
func (a *requestAuthenticator) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	resp, method, err := a.authenticate(r)
	result := "success"
	switch {
	case errors.Is(err, errReviewFailed):
		result = "error"
	case err != nil:
		result = "failure"
	}
	a.metrics.authn.WithLabelValues(method, result).Inc()
	if err != nil {
		return nil, false, err
	}
	return resp, true, nil
}

func (a *requestAuthenticator) authenticate(r *http.Request) (*authenticator.Response, string, error) {
	method := "none"
	var certErr error
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		method = "x509"
		if a.x509 == nil {
			certErr = errors.New("client certificates are not accepted (no --client-ca-file)")
		} else {
			resp, ok, err := a.x509.AuthenticateRequest(r)
			if ok {
				return resp, method, nil
			}
			if err == nil {
				err = errors.New("client certificate has no common name")
			}
			certErr = fmt.Errorf("client certificate: %w", err)
		}
	}
	if r.Header.Get("Authorization") != "" && a.jwt != nil {
		return a.authenticateJWT(r)
	}
	if r.Header.Get("Authorization") != "" {
		method = "token"
		if a.token == nil {
			return nil, method, errors.New("bearer tokens are not accepted (no API server configured)")
		}
		token, ok := bearerToken(r)
		if !ok {
			return nil, method, errNotBearer
		}
		// A token that could be no one's is refused (and counted against its client) by
		// token.authenticate before anything decodes it; one that local verification refuses
		// counts against its client too, so forged tokens are throttled like rejected ones.
		if a.local != nil && plausibleToken(token) {
			resp, err := a.local.authenticate(token)
			if err == nil {
				return resp, method, nil
			}
			if !errors.Is(err, errNotLocal) {
				if a.token.admission != nil {
					a.token.admission.rejected(clientKey(r.RemoteAddr))
				}
				return nil, method, err
			}
		}
		resp, ok, err := a.token.authenticate(r.Context(), token, clientKey(r.RemoteAddr))
		if ok {
			return resp, method, nil
		}
		if err == nil {
			err = errNotBearer
		}
		return nil, method, err
	}
	if certErr != nil {
		return nil, method, certErr
	}
	return nil, method, errNoCredentials
}

// authenticateJWT verifies the bearer token locally. A token none of the
// issuers accepts is refused: it is never sent to a TokenReview.
func (a *requestAuthenticator) authenticateJWT(r *http.Request) (*authenticator.Response, string, error) {
	const method = "jwt"
	token, ok := bearerToken(r)
	if !ok {
		return nil, method, errNotBearer
	}
	if !plausibleToken(token) {
		a.metrics.tokenRefused.WithLabelValues("malformed").Inc()
		return nil, method, errMalformedToken
	}
	resp, ok, err := a.jwt.AuthenticateToken(r.Context(), token)
	switch {
	case err != nil:
		return nil, method, fmt.Errorf("bearer token: %w", err)
	case !ok:
		return nil, method, errors.New("bearer token: not issued by a configured JWT issuer")
	}
	return resp, method, nil
}

// bearerToken is the token of "Authorization: Bearer <token>", read as the
// API server's own authenticator (k8s.io/apiserver's bearertoken) reads it:
// the header trimmed, the scheme matched in any case, the token ending at
// the next space; false when there is none.
func bearerToken(r *http.Request) (string, bool) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, rest, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token, _, _ := strings.Cut(rest, " ")
	return token, token != ""
}
