package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// fakeAPI is an httptest server that speaks the TokenReview and
// SubjectAccessReview JSON APIs and counts the reviews it answers.
type fakeAPI struct {
	srv *httptest.Server

	mu        sync.Mutex
	users     map[string]authnv1.UserInfo // token → user
	audiences []string                    // audiences tokens are valid for; nil: any
	allow     func(authzv1.SubjectAccessReviewSpec) bool
	delay     time.Duration

	down         atomic.Bool // answer 503
	tokenReviews atomic.Int64
	sars         atomic.Int64
	lastSAR      atomic.Pointer[authzv1.SubjectAccessReviewSpec]
}

func newFakeAPI(t testing.TB) *fakeAPI {
	f := &fakeAPI{users: map[string]authnv1.UserInfo{}, allow: func(authzv1.SubjectAccessReviewSpec) bool { return false }}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) addToken(token string, u authnv1.UserInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[token] = u
}

func (f *fakeAPI) setAllow(fn func(authzv1.SubjectAccessReviewSpec) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allow = fn
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if f.down.Load() {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":503}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/apis/authentication.k8s.io/v1/tokenreviews":
		f.tokenReviews.Add(1)
		var tr authnv1.TokenReview
		if err := decodeBody(r, &tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		u, ok := f.users[tr.Spec.Token]
		auds := f.audiences
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
		f.sars.Add(1)
		var sar authzv1.SubjectAccessReview
		if err := decodeBody(r, &sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		spec := sar.Spec
		f.lastSAR.Store(&spec)
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

// reviewers returns real client-go clients pointed at the fake.
func (f *fakeAPI) reviewers(t testing.TB) *Reviewers {
	t.Helper()
	r, err := newReviewers(&rest.Config{Host: f.srv.URL, Timeout: 3 * time.Second}, reviewBudget{QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return &r
}
