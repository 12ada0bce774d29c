package review

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/rbac-proxy/rbac-proxy/internal/satest"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

const testIssuer = "https://issuer.test"

// jwksServer is an API server's service-account issuer discovery: its keys
// can be changed, it can be taken down, and it counts the key set reads.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  []*satest.Key
	down  atomic.Bool
	reads atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...*satest.Key) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case discoveryPath:
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": testIssuer, "jwks_uri": "https://unreachable.example/openid/v1/jwks"})
		case jwksPath:
			s.reads.Add(1)
			s.mu.Lock()
			var set jose.JSONWebKeySet
			for _, k := range s.keys {
				set.Keys = append(set.Keys, k.JWK())
			}
			s.mu.Unlock()
			_ = json.NewEncoder(w).Encode(set)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(keys ...*satest.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *jwksServer) fetcher(t testing.TB) IssuerFetcher {
	t.Helper()
	f, err := newIssuerFetcher(&rest.Config{Host: s.URL}, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testKey(t *testing.T) *satest.Key {
	t.Helper()
	k, err := satest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func localConfig(audiences ...string) *config.Config {
	cfg := config.Default()
	cfg.Authentication.Audiences = audiences
	cfg.Authentication.ServiceAccounts.Verification = config.SATokensLocal
	return cfg
}

// newLocal starts local verification against s for audience "rbac-proxy",
// at the fixed time now.
func newLocal(t testing.TB, s *jwksServer, now time.Time, policy func(*config.ServiceAccountTokens)) *saTokenAuthenticator {
	t.Helper()
	cfg := localConfig("rbac-proxy")
	if policy != nil {
		policy(&cfg.Authentication.ServiceAccounts)
	}
	a, err := newLocalServiceAccounts(cfg, Clients{Issuer: s.fetcher(t)}, newMetrics(nil), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return now }
	return a
}

// good is a pod-bound token as the kubelet gets it: an hour, for the proxy's audience.
func good(now time.Time) satest.Token {
	return satest.Token{
		Issuer: testIssuer, Audiences: []string{"rbac-proxy"},
		Namespace: "monitoring", Name: "prometheus", UID: "sa-uid",
		PodName: "prometheus-0", PodUID: "pod-uid", NodeName: "gpu-node-7", NodeUID: "node-uid",
		ID: "jti-1", IssuedAt: now.Add(-time.Minute), Expiry: now.Add(59 * time.Minute), NotBefore: now.Add(-time.Minute),
	}
}

func TestLocalServiceAccountIdentity(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := testKey(t)
	a := newLocal(t, newJWKSServer(t, key), now, nil)
	tok, err := key.Sign(good(now))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.authenticate(tok)
	if err != nil {
		t.Fatal(err)
	}
	// What kube-apiserver's TokenReview answers for this token.
	want := &user.DefaultInfo{
		Name:   "system:serviceaccount:monitoring:prometheus",
		UID:    "sa-uid",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"},
		Extra: map[string][]string{
			"authentication.kubernetes.io/pod-name":      {"prometheus-0"},
			"authentication.kubernetes.io/pod-uid":       {"pod-uid"},
			"authentication.kubernetes.io/node-name":     {"gpu-node-7"},
			"authentication.kubernetes.io/node-uid":      {"node-uid"},
			"authentication.kubernetes.io/credential-id": {"JTI=jti-1"},
		},
	}
	if d := cmp.Diff(want, resp.User); d != "" {
		t.Fatalf("identity (-TokenReview's +local):\n%s", d)
	}
	if d := cmp.Diff([]string{"rbac-proxy"}, []string(resp.Audiences)); d != "" {
		t.Fatalf("audiences: %s", d)
	}
}

func TestLocalServiceAccountRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key, other := testKey(t), testKey(t)
	s := newJWKSServer(t, key)
	cases := []struct {
		name   string
		signer *satest.Key
		edit   func(*satest.Token)
		policy func(*config.ServiceAccountTokens)
		want   string // "" accepted, "review" sent to a TokenReview, else part of the refusal
	}{
		{"valid", key, nil, nil, ""},
		{"no key id: every key is tried", key, func(t *satest.Token) { t.OmitKeyID = true }, nil, ""},
		{"within the minute of skew after expiry", key, func(t *satest.Token) { t.Expiry = now.Add(-30 * time.Second) }, nil, ""},
		{"the API server's audience", key, func(t *satest.Token) { t.Audiences = []string{testIssuer} }, nil, "audience"},
		{"the proxy's and the API server's audience", key, func(t *satest.Token) { t.Audiences = []string{"rbac-proxy", testIssuer} }, nil, "also for the API server"},
		{"the proxy's and kubernetes.default.svc", key, func(t *satest.Token) { t.Audiences = []string{"https://kubernetes.default.svc", "rbac-proxy"} }, nil, "also for the API server"},
		{"another audience", key, func(t *satest.Token) { t.Audiences = []string{"grafana"} }, nil, "audience"},
		{"expired", key, func(t *satest.Token) { t.Expiry = now.Add(-2 * time.Minute) }, nil, "expired"},
		{"not yet valid", key, func(t *satest.Token) { t.NotBefore = now.Add(2 * time.Minute) }, nil, "not valid yet"},
		{"issued in the future", key, func(t *satest.Token) { t.IssuedAt = now.Add(2 * time.Minute) }, nil, "future"},
		{"no expiry", key, func(t *satest.Token) { t.Expiry = time.Time{} }, nil, "no expiry"},
		{"no issue time", key, func(t *satest.Token) { t.IssuedAt = time.Time{} }, nil, "lives longer"},
		{"a year long", key, func(t *satest.Token) { t.Expiry = t.IssuedAt.Add(365 * 24 * time.Hour) }, nil, "lives longer"},
		{"a year long, reviewed by choice", key, func(t *satest.Token) { t.Expiry = t.IssuedAt.Add(365 * 24 * time.Hour) },
			func(p *config.ServiceAccountTokens) { p.LongLived = config.SATokensSendToReview }, "review"},
		{"a day and a second", key, func(t *satest.Token) { t.Expiry = t.IssuedAt.Add(24*time.Hour + time.Second) }, nil, "lives longer"},
		{"legacy Secret token", key, func(t *satest.Token) { t.Legacy = true }, nil, "Secret-based"},
		{"legacy Secret token, reviewed by choice", key, func(t *satest.Token) { t.Legacy = true },
			func(p *config.ServiceAccountTokens) { p.Legacy = config.SATokensSendToReview }, "review"},
		{"another cluster's issuer: reviewed", other, func(t *satest.Token) { t.Issuer = "https://other.test" }, nil, "review"},
		{"this issuer, an unpublished key", other, nil, nil, "not signed by a key"},
		{"this issuer, an unpublished key, no key id", other, func(t *satest.Token) { t.OmitKeyID = true }, nil, "not signed by a key"},
		{"subject of another ServiceAccount", key, func(t *satest.Token) { t.Subject = "system:serviceaccount:kube-system:admin" }, nil, "another than its subject"},
		{"no ServiceAccount UID", key, func(t *satest.Token) { t.UID = "" }, nil, "names no ServiceAccount"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newLocal(t, s, now, tc.policy)
			tok := good(now)
			if tc.edit != nil {
				tc.edit(&tok)
			}
			signed, err := tc.signer.Sign(tok)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.authenticate(signed)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "review" && !errors.Is(err, errNotLocal):
				t.Fatalf("got %v, want it sent to a TokenReview", err)
			case tc.want != "" && tc.want != "review" && (err == nil || errors.Is(err, errNotLocal) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
	// Not a JWT, or a JWT with an algorithm the API server never signs
	// with (HS256 with the public key as secret, none): not ours to judge.
	a := newLocal(t, s, now, nil)
	for _, tok := range []string{"opaque-static-token", "a.b.c",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0In0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0In0."} {
		if _, err := a.authenticate(tok); !errors.Is(err, errNotLocal) {
			t.Errorf("%q: %v, want it sent to a TokenReview", tok, err)
		}
	}
}

// TestLocalServiceAccountKeyRotation: a token signed with a key the proxy
// has not seen has the key set read again, at once the first time and then
// at most once per unknownKeyRefresh however many unknown key ids arrive.
func TestLocalServiceAccountKeyRotation(t *testing.T) {
	now := time.Now()
	oldKey, newKey := testKey(t), testKey(t)
	s := newJWKSServer(t, oldKey)
	a := newLocal(t, s, now, nil)
	if n := s.reads.Load(); n != 1 {
		t.Fatalf("%d key set reads at start, want 1", n)
	}
	old, _ := oldKey.Sign(good(now))
	s.publish(oldKey, newKey) // the API server restarted with a second key
	tok, _ := newKey.Sign(good(now))
	if _, err := a.authenticate(tok); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if n := s.reads.Load(); n != 2 {
		t.Fatalf("%d key set reads, want 2 (one for the new key id)", n)
	}
	for range 100 {
		made, _ := testKey(t).Sign(good(now))
		if _, err := a.authenticate(made); err == nil || errors.Is(err, errNotLocal) {
			t.Fatalf("a token of an unpublished key: %v, want refused", err)
		}
	}
	if n := s.reads.Load(); n != 2 {
		t.Fatalf("%d key set reads after 100 unknown key ids within %v, want still 2", n, unknownKeyRefresh)
	}
	// The old key withdrawn: refused once the set is read again, though
	// verified (and remembered) before.
	if _, err := a.authenticate(old); err != nil {
		t.Fatal(err)
	}
	s.publish(newKey)
	if err := a.keys.refresh(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.authenticate(old); err == nil {
		t.Fatal("a token of a withdrawn key accepted")
	}
}

// TestLocalServiceAccountOutage: with the API server down the last key set
// stays, and a token never seen before but validly signed is accepted.
func TestLocalServiceAccountOutage(t *testing.T) {
	now := time.Now()
	key := testKey(t)
	s := newJWKSServer(t, key)
	a := newLocal(t, s, now, nil)
	s.down.Store(true)
	if err := a.keys.refresh(); err == nil {
		t.Fatal("refresh succeeded while down")
	}
	fresh := good(now)
	fresh.ID, fresh.PodName = "jti-never-seen", "prometheus-1"
	tok, _ := key.Sign(fresh)
	if resp, err := a.authenticate(tok); err != nil || resp.User.GetExtra()["authentication.kubernetes.io/pod-name"][0] != "prometheus-1" {
		t.Fatalf("a new token during the outage: %v", err)
	}
}

func TestLocalServiceAccountStart(t *testing.T) {
	s := newJWKSServer(t, testKey(t))
	clients := Clients{Issuer: s.fetcher(t)}
	if _, err := newLocalServiceAccounts(localConfig(testIssuer+"/"), clients, newMetrics(nil), logr.Discard()); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("the issuer as audience: %v, want refused", err)
	}
	s.down.Store(true)
	if _, err := newLocalServiceAccounts(localConfig("rbac-proxy"), clients, newMetrics(nil), logr.Discard()); err == nil {
		t.Fatal("started without the issuer's keys")
	}
	s.down.Store(false)
	s.publish()
	if _, err := newLocalServiceAccounts(localConfig("rbac-proxy"), clients, newMetrics(nil), logr.Discard()); err == nil {
		t.Fatal("started with an empty key set")
	}
}

// TestLocalServiceAccountsBeforeTokenReview: a ServiceAccount token of the
// issuer costs no TokenReview; any other token is reviewed as before.
func TestLocalServiceAccountsBeforeTokenReview(t *testing.T) {
	now := time.Now()
	key := testKey(t)
	api := fakeapi.New(t)
	api.AddToken("static-token", authnv1.UserInfo{Username: "alice"})
	m := newMetrics(nil)
	ra := &requestAuthenticator{
		metrics: m,
		token:   newTokenAuthenticator(clientsOf(t, api).Tokens, []string{"rbac-proxy"}, testCache(), time.Second, m),
		local:   newLocal(t, newJWKSServer(t, key), now, nil),
	}
	sa, _ := key.Sign(good(now))
	for _, tc := range []struct{ token, user string }{
		{sa, "system:serviceaccount:monitoring:prometheus"},
		{"static-token", "alice"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.Header.Set("Authorization", "Bearer "+tc.token)
		resp, ok, err := ra.AuthenticateRequest(r)
		if !ok || err != nil || resp.User.GetName() != tc.user {
			t.Fatalf("got %v %v, want %s", resp, err, tc.user)
		}
	}
	if n := api.TokenReviews.Load(); n != 1 {
		t.Fatalf("%d TokenReviews, want 1 (the static token's)", n)
	}
}

// TestLocalRefusalsCountAgainstTheClient: a token local verification refuses is charged to its
// client in the TokenReview admission, as a rejected review is, so forged tokens of the issuer
// are throttled; a refused token is never reviewed.
func TestLocalRefusalsCountAgainstTheClient(t *testing.T) {
	now := time.Now()
	key, other := testKey(t), testKey(t)
	api := fakeapi.New(t)
	m := newMetrics(nil)
	tokens := newTokenAuthenticator(clientsOf(t, api).Tokens, []string{"rbac-proxy"}, testCache(), time.Second, m)
	tokens.admission = newTokenAdmission(1, 1, 3*time.Second)
	ra := &requestAuthenticator{metrics: m, token: tokens, local: newLocal(t, newJWKSServer(t, key), now, nil)}
	use := func(addr netip.Addr) int {
		a := tokens.admission
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.useLocked(addr, a.now())
	}
	forged, _ := other.Sign(good(now))
	valid, _ := key.Sign(good(now))
	for _, tc := range []struct {
		name, token, from string
		ok                bool
		charged           int
	}{
		{"a valid token costs nothing", valid, "10.0.0.1:4000", true, 0},
		{"a forged token of the issuer is charged", forged, "10.0.0.2:4000", false, rejectionCost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			r.RemoteAddr = tc.from
			r.Header.Set("Authorization", "Bearer "+tc.token)
			if _, ok, _ := ra.AuthenticateRequest(r); ok != tc.ok {
				t.Fatalf("accepted %v, want %v", ok, tc.ok)
			}
			if got := use(clientKey(tc.from)); got != tc.charged {
				t.Fatalf("client charged %d, want %d", got, tc.charged)
			}
		})
	}
	if n := api.TokenReviews.Load(); n != 0 {
		t.Fatalf("%d TokenReviews, want 0", n)
	}
}

// BenchmarkLocalServiceAccount is the cost of a request's local verification: verifying the
// signature (a token cache TTL of 0), and a token verified before.
func BenchmarkLocalServiceAccount(b *testing.B) {
	now := time.Now()
	ec, _ := satest.NewKey()
	rsa, _ := satest.NewRSAKey(2048)
	for _, k := range []struct {
		name string
		key  *satest.Key
		ttl  time.Duration
	}{{"ES256/verify", ec, 0}, {"ES256/cached", ec, time.Minute}, {"RS256-2048/verify", rsa, 0}, {"RS256-2048/cached", rsa, time.Minute}} {
		b.Run(k.name, func(b *testing.B) {
			a := newLocal(b, newJWKSServer(b, k.key), now, nil)
			a.ttl = k.ttl
			tok, _ := k.key.Sign(good(now))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.authenticate(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLocalServiceAccountRemembered: a verified token is verified again
// after the token cache TTL, and never accepted past its expiry.
func TestLocalServiceAccountRemembered(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := testKey(t)
	a := newLocal(t, newJWKSServer(t, key), now, nil)
	a.ttl = 2 * time.Minute
	short := good(now)
	short.Expiry = now.Add(90 * time.Second)
	tok, _ := key.Sign(short)
	count := func(result string) float64 {
		var m dto.Metric
		if err := a.metrics.saTokens.WithLabelValues(result).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	results := func() (verified, cached float64) { return count("verified"), count("cached") }
	for range 3 {
		if _, err := a.authenticate(tok); err != nil {
			t.Fatal(err)
		}
	}
	if v, c := results(); v != 1 || c != 2 {
		t.Fatalf("verified %v, cached %v; want 1 and 2", v, c)
	}
	a.now = func() time.Time { return now.Add(100 * time.Second) } // past exp, within the TTL and the minute of skew
	if _, err := a.authenticate(tok); err != nil {
		t.Fatal(err)
	}
	if v, _ := results(); v != 2 {
		t.Fatalf("verified %v times, want 2: the cache kept the token past its expiry", v)
	}
	a.now = func() time.Time { return now.Add(3 * time.Minute) }
	if _, err := a.authenticate(tok); err == nil {
		t.Fatal("an expired token accepted")
	}
}
