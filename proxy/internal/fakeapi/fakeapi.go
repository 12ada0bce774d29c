// Package fakeapi is an API server for the proxy's tests that answers TokenReviews and
// SubjectAccessReviews from tables and counts them.
package fakeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// API is an httptest server that speaks the TokenReview and SubjectAccessReview JSON and
// protobuf APIs. Set Delay and Audiences before the first review.
type API struct {
	srv *httptest.Server

	mu    sync.Mutex
	users map[string]authnv1.UserInfo // token → user
	allow func(authzv1.SubjectAccessReviewSpec) bool
	// Audiences are those tokens are valid for; nil: any.
	Audiences []string
	// Delay is how long every answer waits.
	Delay time.Duration

	Down         atomic.Bool // answer 503
	TokenReviews atomic.Int64
	SARs         atomic.Int64
	LastSAR      atomic.Pointer[authzv1.SubjectAccessReviewSpec]
}

// New starts an API that knows no token and allows nothing; it stops when t ends.
func New(t testing.TB) *API {
	f := &API{users: map[string]authnv1.UserInfo{}, allow: func(authzv1.SubjectAccessReviewSpec) bool { return false }}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// AddToken makes token authenticate as u.
func (f *API) AddToken(token string, u authnv1.UserInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[token] = u
}

// SetAllow decides the SubjectAccessReviews from now on.
func (f *API) SetAllow(fn func(authzv1.SubjectAccessReviewSpec) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allow = fn
}

func (f *API) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	delay := f.Delay
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if f.Down.Load() {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":503}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		f.TokenReviews.Add(1)
		var tr authnv1.TokenReview
		if err := decodeBody(r, &tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		u, ok := f.users[tr.Spec.Token]
		auds := f.Audiences
		f.mu.Unlock()
		tr.Status = authnv1.TokenReviewStatus{}
		if ok {
			var matched []string
			if auds == nil {
				matched = tr.Spec.Audiences
			} else {
				for _, want := range tr.Spec.Audiences {
					for _, have := range auds {
						if want == have {
							matched = append(matched, want)
						}
					}
				}
			}
			if len(tr.Spec.Audiences) == 0 || len(matched) > 0 {
				tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: u, Audiences: matched}
			} else {
				tr.Status.Error = "token audiences are invalid"
			}
		}
		tr.Spec.Token = ""
		tr.Kind, tr.APIVersion = "TokenReview", "authentication.k8s.io/v1"
		_ = json.NewEncoder(w).Encode(tr)
	case "/apis/authorization.k8s.io/v1/subjectaccessreviews":
		f.SARs.Add(1)
		var sar authzv1.SubjectAccessReview
		if err := decodeBody(r, &sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		spec := sar.Spec
		f.LastSAR.Store(&spec)
		f.mu.Lock()
		allowed := f.allow(sar.Spec)
		f.mu.Unlock()
		sar.Status = authzv1.SubjectAccessReviewStatus{Allowed: allowed}
		sar.Kind, sar.APIVersion = "SubjectAccessReview", "authorization.k8s.io/v1"
		_ = json.NewEncoder(w).Encode(sar)
	default:
		http.NotFound(w, r)
	}
}

// decodeBody decodes JSON or protobuf (client-go's default) into obj.
func decodeBody(r *http.Request, obj runtime.Object) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	_, _, err = scheme.Codecs.UniversalDeserializer().Decode(b, nil, obj)
	return err
}

// URL is the API's address.
func (f *API) URL() string { return f.srv.URL }

// CloseClientConnections closes every connection a client has open to the API.
func (f *API) CloseClientConnections() { f.srv.CloseClientConnections() }

// Clients returns real client-go clients pointed at the API, without a rate limit.
func (f *API) Clients(t testing.TB) (authnv1client.TokenReviewInterface, authzv1client.SubjectAccessReviewInterface) {
	return ClientsFor(t, &rest.Config{Host: f.srv.URL, Timeout: 3 * time.Second, QPS: -1})
}

// ClientsFor returns real client-go clients for cfg.
func ClientsFor(t testing.TB, cfg *rest.Config) (authnv1client.TokenReviewInterface, authzv1client.SubjectAccessReviewInterface) {
	t.Helper()
	an, err := authnv1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	az, err := authzv1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return an.TokenReviews(), az.SubjectAccessReviews()
}

// Kubeconfig writes a kubeconfig for the API, so that a proxy builds its clients (and their
// rate limits) from flags, as in production.
func (f *API) Kubeconfig(t testing.TB) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["fake"] = &clientcmdapi.Cluster{Server: f.srv.URL}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["fake"] = &clientcmdapi.Context{Cluster: "fake", AuthInfo: "proxy"}
	kc.CurrentContext = "fake"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}
