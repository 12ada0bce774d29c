package webhook

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
)

// TestRequireClientNames: with a client CA and names, the webhook server completes only the
// handshakes of a certificate from that CA with one of the names.
func TestRequireClientNames(t *testing.T) {
	apiCA, err := testpki.NewCA("api server clients")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("someone else")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	srv.TLS = &tls.Config{ClientCAs: apiCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	requireClientNames([]string{"kube-apiserver-webhook-client"})(srv.TLS)
	srv.StartTLS()
	defer srv.Close()

	cert := func(ca *testpki.CA, cn string) *tls.Certificate {
		pair, err := ca.Client(cn)
		if err != nil {
			t.Fatal(err)
		}
		c := pair.TLS()
		return &c
	}
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"the API server", cert(apiCA, "kube-apiserver-webhook-client"), true},
		{"another name from the same CA", cert(apiCA, "system:serviceaccount:team:web"), false},
		{"the right name from another CA", cert(other, "kube-apiserver-webhook-client"), false},
		{"no certificate", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := srv.Client()
			tr := client.Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = nil
			if tc.cert != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{*tc.cert}
			}
			client.Transport = tr
			resp, err := client.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if ok := err == nil && resp.StatusCode == http.StatusNoContent; ok != tc.ok {
				t.Errorf("got %v (%v), want success %v", resp, err, tc.ok)
			}
		})
	}
}
