package review

import (
	"context"
	"crypto/x509"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"github.com/rbac-proxy/rbac-proxy/proxy/internal/fakeapi"
)

// tenantsOf builds the review steps of cfg over api and returns its Tenants.
func tenantsOf(t *testing.T, api *fakeapi.API, cfg *config.Config) *Tenants {
	t.Helper()
	clients := clientsOf(t, api)
	_, _, tenants, err := New(cfg, Options{Clients: &clients, Context: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	return tenants
}

func tenancyConfig(mode config.AuthzMode) *config.Config {
	cfg := config.Default()
	cfg.Authorization.Mode = mode
	cfg.Authorization.Allowed.Users = []string{"cluster-prometheus"} // static needs a rule
	if mode == config.AuthzSAR {
		cfg.Authorization.Allowed.Users = nil
	}
	cfg.Authorization.Tenancy.Mode = config.TenancyNamespace
	return cfg
}

// TestTenantsReviewEachNamespace: a tenant's namespace is one resource review ("get pods in
// namespace N" by default, the configured verb and resource otherwise) with the caller's whole
// identity, under --authz=static as under sar.
func TestTenantsReviewEachNamespace(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", UID: "u1", Groups: []string{"team-a"}, Extra: map[string][]string{"k": {"v"}}}
	for _, tc := range []struct {
		name                     string
		mode                     config.AuthzMode
		verb, resource           string
		wantVerb, wantGroup, res string
	}{
		{"sar, defaults", config.AuthzSAR, "", "", "get", "", "pods"},
		{"static, defaults", config.AuthzStatic, "", "", "get", "", "pods"},
		{"a resource of a group", config.AuthzSAR, "list", "pytorchjobs.kubeflow.org", "list", "kubeflow.org", "pytorchjobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := fakeapi.New(t)
			api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool {
				return s.User == "alice" && s.ResourceAttributes != nil && s.ResourceAttributes.Namespace == "team-a"
			})
			cfg := tenancyConfig(tc.mode)
			if tc.verb != "" {
				cfg.Authorization.Tenancy.Verb = tc.verb
				gr := strings.SplitN(tc.resource, ".", 2)
				cfg.Authorization.Tenancy.Resource, cfg.Authorization.Tenancy.APIGroup = gr[0], gr[1]
			}
			allow := tenantsOf(t, api, cfg).Allow(alice)
			for ns, want := range map[string]bool{"team-a": true, "team-b": false} {
				got, err := allow(t.Context(), ns)
				if err != nil || got != want {
					t.Fatalf("allow(%s) = %v, %v; want %v", ns, got, err, want)
				}
			}
			s := api.LastSAR.Load()
			ra := s.ResourceAttributes
			if s.User != "alice" || s.UID != "u1" || s.Groups[0] != "team-a" || s.Extra["k"][0] != "v" || s.NonResourceAttributes != nil ||
				ra == nil || ra.Verb != tc.wantVerb || ra.Group != tc.wantGroup || ra.Resource != tc.res || ra.Subresource != "" || ra.Name != "" {
				t.Fatalf("SubjectAccessReview %+v (resource attributes %+v)", s, ra)
			}
		})
	}
}

// TestTenantsCachedAndCoalesced: concurrent scrapes of one tenant share one review per
// namespace, and later scrapes make none (SARs per scrape after warm-up: 0) until the TTL ends.
func TestTenantsCachedAndCoalesced(t *testing.T) {
	api := fakeapi.New(t)
	api.Delay = 50 * time.Millisecond
	api.SetAllow(func(s authzv1.SubjectAccessReviewSpec) bool { return s.ResourceAttributes.Namespace == "team-a" })
	tenants := tenantsOf(t, api, tenancyConfig(config.AuthzSAR))
	bob := &user.DefaultInfo{Name: "bob"}
	scrape := func() (allowed int64) {
		var wg sync.WaitGroup
		var n atomic.Int64
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				allow := tenants.Allow(bob)
				for _, ns := range []string{"team-a", "team-b", "team-c"} {
					if ok, err := allow(context.Background(), ns); err == nil && ok {
						n.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return n.Load()
	}
	if got := scrape(); got != 20 || api.SARs.Load() != 3 {
		t.Fatalf("20 concurrent scrapes of 3 namespaces: %d allowed with %d SARs, want 20 with 3", got, api.SARs.Load())
	}
	if got := scrape(); got != 20 || api.SARs.Load() != 3 {
		t.Fatalf("after warm-up: %d allowed with %d SARs in all, want 20 with still 3", got, api.SARs.Load())
	}
}

// TestTenantsFailClosed: a review that cannot be made is an error, never an allow; a namespace
// name that cannot be one is denied with no review (an empty one would be a cluster-wide review).
func TestTenantsFailClosed(t *testing.T) {
	api := fakeapi.New(t)
	api.SetAllow(func(authzv1.SubjectAccessReviewSpec) bool { return true })
	allow := tenantsOf(t, api, tenancyConfig(config.AuthzSAR)).Allow(&user.DefaultInfo{Name: "eve"})
	for _, ns := range []string{"", "Team-A", "team_a", "a/b", "team-a\n", strings.Repeat("a", 64), "-a"} {
		if ok, err := allow(t.Context(), ns); ok || err != nil {
			t.Errorf("allow(%q) = %v, %v; want false without an error", ns, ok, err)
		}
	}
	if n := api.SARs.Load(); n != 0 {
		t.Fatalf("%d SARs for names that cannot be namespaces", n)
	}
	api.Down.Store(true)
	if ok, err := allow(t.Context(), "team-a"); ok || err == nil {
		t.Fatalf("API down: allow = %v, %v; want false with an error", ok, err)
	}
}

// TestTenancyBuildsTheSARClientUnderStatic: --authz=static with --tenancy needs
// SubjectAccessReviews, so they get their share of the API budget.
func TestTenancyBuildsTheSARClientUnderStatic(t *testing.T) {
	k := config.KubeAPIConfig{QPS: 50, Burst: 100}
	for _, tc := range []struct {
		mode    config.AuthzMode
		tenancy config.TenancyMode
		sarQPS  float32
	}{
		{config.AuthzStatic, config.TenancyOff, 0},
		{config.AuthzStatic, config.TenancyNamespace, 25},
		{config.AuthzSAR, config.TenancyOff, 25},
		{config.AuthzSAR, config.TenancyNamespace, 25},
	} {
		_, sars := reviewBudgets(k, config.AuthorizationConfig{Mode: tc.mode, Tenancy: config.Tenancy{Mode: tc.tenancy}})
		if sars.QPS != tc.sarQPS {
			t.Errorf("%s, tenancy %q: SubjectAccessReviews get %v QPS, want %v", tc.mode, tc.tenancy, sars.QPS, tc.sarQPS)
		}
	}
	// Client certificates, no kubeconfig, not in a cluster: without tenancy no client is
	// needed; with it the proxy refuses to start rather than leave tenants without reviews.
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster, wherever the test runs
	noCA := func() *x509.CertPool { return nil }
	cfg := tenancyConfig(config.AuthzStatic)
	cfg.Authorization.Tenancy.Mode = config.TenancyOff
	if _, _, _, err := New(cfg, Options{ClientCA: noCA}); err != nil {
		t.Fatalf("static with client certificates and no API server: %v", err)
	}
	cfg.Authorization.Tenancy.Mode = config.TenancyNamespace
	if _, _, _, err := New(cfg, Options{ClientCA: noCA}); err == nil || !strings.Contains(err.Error(), "in-cluster") {
		t.Fatalf("static with tenancy, client certificates and no API server: %v, want the in-cluster configuration's error", err)
	}
}
