package story

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

// The clients that scrape the proxies.
const (
	PrometheusSA = "prometheus"
	NoRBACSA     = "no-rbac"
	metricsPath  = "/metrics"
)

// result is one answer of the proxy, or the error that stood for it.
type result struct {
	status int
	body   string
	err    error
}

// do GETs url from p with an optional bearer token and client certificate,
// verifying the proxy's certificate against the issuer's CA and the Service's
// DNS name, on a fresh connection (a new TLS handshake every time).
func (p *Proxy) do(ctx context.Context, url, token string, cert *tls.Certificate) (result, error) {
	cas, err := p.CAs()
	if err != nil {
		return result{}, err
	}
	cfg := &tls.Config{RootCAs: cas, ServerName: p.ServerName, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return result{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		return result{err: err}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return result{status: res.StatusCode, body: string(b), err: err}, err
}

// Scrape GETs /metrics through the proxy as Prometheus would.
func (p *Proxy) Scrape(ctx context.Context, token string, cert *tls.Certificate) (status int, body string, err error) {
	r, err := p.do(ctx, p.URL+metricsPath, token, cert)
	return r.status, r.body, err
}

// ServingSerial returns the serial number of the certificate the proxy serves now.
func (p *Proxy) ServingSerial(ctx context.Context) (*big.Int, error) {
	cas, err := p.CAs()
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{RootCAs: cas, ServerName: p.ServerName, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", p.URL[len("https://"):])
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// identities are the callers of step 5.
type identities struct {
	prometheusToken, noRBACToken string
	// scraper is from the scrapers' CA; servingCA from the CA that signs every workload's
	// serving certificate, which anyone allowed a Certificate in a namespace can get; stranger
	// from a CA nobody trusts. All three have the allowed CommonName.
	scraper, servingCA, stranger *tls.Certificate
}

// makeIdentities creates the ServiceAccount prometheus with RBAC for /metrics,
// one without, a client certificate from the chart's scrapers' Issuer (in the
// release namespace, as an admin would), one from the serving CA ClusterIssuer
// (as any namespace editor could) and a stranger's self-signed one, all with the
// same CommonName.
func makeIdentities(ctx context.Context, s *teller, env *Env) (*identities, error) {
	cp, ns := env.CP, env.Namespace
	id := &identities{}
	var err error
	s.progress("creating the callers: ServiceAccounts %s (RBAC get %s) and %s, client certificates CN=%s from the scrapers' CA and from the serving CA", PrometheusSA, metricsPath, NoRBACSA, AllowedClient)
	if id.prometheusToken, err = cp.ServiceAccountToken(ctx, ns, PrometheusSA, nil); err != nil {
		return nil, err
	}
	env.PrometheusToken = id.prometheusToken
	if id.noRBACToken, err = cp.ServiceAccountToken(ctx, ns, NoRBACSA, nil); err != nil {
		return nil, err
	}
	role := ns + "-metrics-reader"
	_, err = cp.Clientset.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{metricsPath}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating ClusterRole %s: %w", role, err)
	}
	_, err = cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: PrometheusSA}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating ClusterRoleBinding %s: %w", role, err)
	}
	// The API server's RBAC cache follows within a moment; wait for it so the
	// proxy does not cache a denial made before the binding counted.
	err = framework.Eventually(ctx, 30*time.Second, "RBAC to allow "+PrometheusSA+" to get "+metricsPath, func(ctx context.Context) (bool, error) {
		sar, err := cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:                  "system:serviceaccount:" + ns + ":" + PrometheusSA,
				Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: metricsPath, Verb: "get"},
			}}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed, err
	})
	if err != nil {
		return nil, err
	}

	if id.scraper, err = clientCertificate(ctx, cp, framework.ReleaseNamespace, AllowedClient, cmv1.IssuerKind, framework.ScrapersIssuer); err != nil {
		return nil, err
	}
	if id.servingCA, err = clientCertificate(ctx, cp, ns, AllowedClient+"-serving-ca", cmv1.ClusterIssuerKind, framework.DefaultIssuer); err != nil {
		return nil, err
	}
	if id.stranger, err = strangerCertificate(AllowedClient); err != nil {
		return nil, err
	}
	return id, nil
}

// clientCertificate has cert-manager issue a client certificate CN=AllowedClient in ns from the
// issuer, and returns it once its Secret is there.
func clientCertificate(ctx context.Context, cp *framework.ControlPlane, ns, name, kind, issuer string) (*tls.Certificate, error) {
	cert := &cmv1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmv1.CertificateSpec{
			CommonName: AllowedClient,
			SecretName: name + "-tls",
			Usages:     []cmv1.KeyUsage{cmv1.UsageClientAuth, cmv1.UsageDigitalSignature},
			PrivateKey: &cmv1.CertificatePrivateKey{Algorithm: cmv1.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Kind: kind, Name: issuer},
		},
	}
	if err := cp.Client.Create(ctx, cert); err != nil {
		return nil, fmt.Errorf("creating the client Certificate %s/%s: %w", ns, name, err)
	}
	secret, err := WaitForSecret(ctx, cp, ns, cert.Spec.SecretName)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"])
	if err != nil {
		return nil, fmt.Errorf("loading the client certificate %s/%s: %w", ns, name, err)
	}
	return &pair, nil
}

// strangerCertificate returns a client certificate for cn from a CA nobody
// trusts: what an outsider who guessed an allowed name would present.
func strangerCertificate(cn string) (*tls.Certificate, error) {
	ca, err := testpki.NewCA("stranger")
	if err != nil {
		return nil, err
	}
	pair, err := ca.Client(cn)
	if err != nil {
		return nil, err
	}
	cert := pair.TLS()
	return &cert, nil
}
