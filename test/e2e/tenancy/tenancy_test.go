package tenancy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbac-proxy/rbac-proxy/internal/sample"
	"github.com/rbac-proxy/rbac-proxy/internal/testpki"
	"github.com/rbac-proxy/rbac-proxy/test/framework"
)

const (
	teamA, teamB = "team-a", "team-b"
	monitoringNS = "monitoring"
	// serverName is the name the proxy's serving certificate is for, as an exporter's Service.
	serverName = "dcgm-exporter.gpu-operator.svc"
	// hostname is the exporter's Hostname label.
	hostname = "gpu-node-1"
	// measuredScrapes is how many scrapes each Prometheus makes, at least, in the window whose
	// SubjectAccessReviews are counted.
	measuredScrapes = 10
	// prometheusAccept is the Accept header Prometheus 2.42 scrapes with.
	prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

// tenantGPUs are the sample's four H100s as two teams hold them: two with team-a's training
// Pod, one with team-b's inference Pod, one idle (no namespace label: node-level, no tenant's).
func tenantGPUs() []sample.GPU {
	gpus := slices.Clone(sample.GPUs)
	gpus[0].Namespace, gpus[1].Namespace = teamA, teamA
	gpus[2].Namespace = teamB
	gpus[3].Namespace = ""
	return gpus
}

// scraper is one Prometheus and the ServiceAccount it scrapes as.
type scraper struct {
	name string
	// namespace/serviceAccount is its identity.
	namespace, serviceAccount string
	// whole: allowed the whole endpoint (a ClusterRole on the /metrics non-resource URL);
	// reads: the namespaces in which a Role lets it get pods.
	whole bool
	reads []string
	// sees are the namespace labels of the series it must store ("" for those without one);
	// none: its scrapes get 403.
	sees []string
}

var scrapers = []scraper{
	{name: "cluster", namespace: monitoringNS, serviceAccount: "prometheus", whole: true, sees: []string{teamA, teamB, ""}},
	{name: teamA, namespace: teamA, serviceAccount: "prometheus", reads: []string{teamA}, sees: []string{teamA}},
	{name: teamB, namespace: teamB, serviceAccount: "prometheus", reads: []string{teamB}, sees: []string{teamB}},
	{name: "no-namespace", namespace: monitoringNS, serviceAccount: "nobody"},
}

func (s scraper) user() string {
	return "system:serviceaccount:" + s.namespace + ":" + s.serviceAccount
}

// TestTenantScrapes runs the four Prometheus servers against one proxy with --tenancy=namespace
// and checks what each stored, that a tenant's scrape was OpenMetrics end to end, and that the
// scrapes after the first cost the API server no SubjectAccessReview.
func TestTenantScrapes(t *testing.T) {
	start := time.Now()
	ctx := t.Context()
	for _, ns := range []string{teamA, teamB, monitoringNS} {
		createNamespace(t, ns)
	}
	for _, s := range scrapers {
		grant(t, s)
	}

	gpus := tenantGPUs()
	exporter := newRecordingExporter(t, sample.HandlerWith(hostname, sample.Options{GPUs: gpus, OpenMetrics: true}))
	ca, err := testpki.NewCA("tenancy-e2e")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pair, err := ca.Server("127.0.0.1", serverName)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := pair.Write(dir, "serving")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := framework.StartTestProxy(t, proxyBin, framework.ProxyOptions{Endpoints: true, Args: []string{
		"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
		"--upstream=" + exporter.URL + "/",
		"--kubeconfig=" + cp.KubeconfigPath,
		"--auth-header-fields-enabled",
		"--tenancy=namespace",
		// A denial is cached as long as an allowance, so that no cached answer falls due
		// within the measured window: what is counted there is what a scrape costs.
		"--authorization-webhook-cache-unauthorized-ttl=5m",
	}})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}

	warmSARs := sars(t)
	proms := map[string]*prometheus{}
	tokens := map[string]string{}
	for _, s := range scrapers {
		tokens[s.name] = cp.TestToken(t, s.namespace, s.serviceAccount)
		tokenFile := filepath.Join(dir, s.name+".token")
		if err := os.WriteFile(tokenFile, []byte(tokens[s.name]), 0o600); err != nil {
			t.Fatal(err)
		}
		proms[s.name] = startPrometheus(t, s.name, scrapeTarget{addr: proxy.Addr, serverName: serverName, caFile: caFile, tokenFile: tokenFile})
	}

	// Warm-up: every Prometheus has scraped and come to its verdict.
	for _, s := range scrapers {
		p := proms[s.name]
		err := framework.Eventually(ctx, 60*time.Second, s.name+"'s first scrape", func(ctx context.Context) (bool, error) {
			tg, err := p.target(ctx)
			if err != nil || tg.LastScrape.IsZero() {
				return false, err
			}
			if s.sees == nil {
				return tg.Health == "down" && strings.Contains(tg.LastError, "403"), fmt.Errorf("health %s, last error %q", tg.Health, tg.LastError)
			}
			return tg.Health == "up", fmt.Errorf("health %s, last error %q", tg.Health, tg.LastError)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	warmedAt := time.Now()

	// The measured window: measuredScrapes scrapes by each Prometheus, after warm-up.
	sar0, tr0, codes0 := sars(t), tokenReviews(t), proxyCodes(t, client, proxy)
	err = framework.Eventually(ctx, 60*time.Second, fmt.Sprintf("%d scrapes by each Prometheus", measuredScrapes), func(context.Context) (bool, error) {
		codes := proxyCodes(t, client, proxy)
		return codes.total()-codes0.total() >= measuredScrapes*len(scrapers), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sar1, tr1, codes1 := sars(t), tokenReviews(t), proxyCodes(t, client, proxy)
	scrapes := codes1.total() - codes0.total()
	window := time.Since(warmedAt)
	t.Logf("warm-up: %d SubjectAccessReviews for the first scrapes of %d Prometheus servers", sar0-warmSARs, len(scrapers))
	// Each caller's first scrape asks about the whole endpoint and, denied, about each namespace
	// of the exposition, once: the reviews are cached and coalesced per caller.
	if want := warmUpReviews(gpus); sar0-warmSARs != want {
		t.Errorf("%d SubjectAccessReviews for the first scrapes, want %d", sar0-warmSARs, want)
	}
	t.Logf("after warm-up: %d scrapes in %s (%d answered 200, %d answered 403): %d SubjectAccessReviews, %d TokenReviews",
		scrapes, window.Round(100*time.Millisecond), codes1[200]-codes0[200], codes1[403]-codes0[403], sar1-sar0, tr1-tr0)
	if sar1 != sar0 {
		t.Errorf("%d SubjectAccessReviews for %d scrapes after warm-up, want 0", sar1-sar0, scrapes)
	}
	if got, want := codes1[403]-codes0[403], codes1[200]-codes0[200]; got == 0 || want == 0 {
		t.Errorf("after warm-up %d scrapes answered 403 and %d 200: want both", got, want)
	}

	// What each Prometheus stored, and how its target fared over the window.
	for _, s := range scrapers {
		t.Run(s.name, func(t *testing.T) {
			p := proms[s.name]
			got, err := storedSeries(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			want := expectedSeries(gpus, s.sees)
			if !slices.Equal(got, want) {
				t.Errorf("%s stored %d series:\n  %s\nwant %d:\n  %s", s.name, len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
			}
			t.Logf("%s stored %d DCGM series (namespaces %q)", s.name, len(got), s.sees)
			up := 1.0
			if s.sees == nil {
				up = 0
				tg, err := p.target(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(tg.LastError, "403 Forbidden") {
					t.Errorf("last error %q, want a 403 Forbidden", tg.LastError)
				}
			}
			window := fmt.Sprintf("%ds", int(window.Seconds())+1)
			for _, fn := range []string{"min_over_time", "max_over_time"} {
				vec, err := p.vector(ctx, fn+"(up["+window+"])")
				if err != nil {
					t.Fatal(err)
				}
				if len(vec) != 1 || float64(vec[0].Value) != up {
					t.Errorf("%s(up[%s]) = %v, want %v", fn, window, vec, up)
				}
			}
			if s.sees != nil {
				checkMetadata(ctx, t, p)
			}
		})
	}

	// OpenMetrics end to end: Prometheus asked for it, the proxy asked the exporter for it on
	// each scraper's behalf and got it; the tenants' filtered OpenMetrics was stored above. The
	// refused caller's scrapes reach the exporter too: which namespaces an exposition holds is
	// known only once it is read.
	t.Run("OpenMetrics", func(t *testing.T) {
		for _, s := range scrapers {
			got := exporter.seen(s.user())
			if got == nil {
				t.Errorf("the exporter saw no request for %s", s.name)
				continue
			}
			if !strings.HasPrefix(got.accept, "application/openmetrics-text") || strings.Contains(got.accept, "protobuf") {
				t.Errorf("%s: the exporter was asked for %q, want OpenMetrics first and no protobuf", s.name, got.accept)
			}
			if got.contentType != sample.OpenMetricsContentType {
				t.Errorf("%s: the exporter served %q, want OpenMetrics", s.name, got.contentType)
			}
		}
	})

	// The proxy's answer to a tenant, read directly: both formats, gzip as the tenant allows it,
	// only its namespace's series.
	t.Run("direct", func(t *testing.T) {
		for _, tc := range []struct {
			name, accept, acceptEncoding string
			contentType                  string
			gzip                         bool
		}{
			// Go's client, as Prometheus, asks for gzip and decodes it.
			{"Prometheus' Accept", prometheusAccept, "", "application/openmetrics-text", true},
			{"no Accept, identity", "", "identity", "text/plain", false},
			{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "", "text/plain", true},
		} {
			header := http.Header{"Authorization": {"Bearer " + tokens[teamA]}}
			if tc.accept != "" {
				header.Set("Accept", tc.accept)
			}
			if tc.acceptEncoding != "" {
				header.Set("Accept-Encoding", tc.acceptEncoding)
			}
			res, body := get(t, client, proxy.URL+"/metrics", header)
			ct := res.Header.Get("Content-Type")
			if res.StatusCode != http.StatusOK || !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("%s: %d %q, want 200 %s", tc.name, res.StatusCode, ct, tc.contentType)
				continue
			}
			if gz := res.Uncompressed || res.Header.Get("Content-Encoding") == "gzip"; gz != tc.gzip {
				t.Errorf("%s: gzip-encoded = %v, want %v", tc.name, gz, tc.gzip)
			}
			isOM := strings.HasPrefix(ct, "application/openmetrics-text")
			if hasEOF := strings.HasSuffix(body, "# EOF\n"); hasEOF != isOM {
				t.Errorf("%s: # EOF last = %v, want %v", tc.name, hasEOF, isOM)
			}
			namespaces, n, fams, err := parseExposition(body, ct)
			if err != nil {
				t.Errorf("%s: the answer does not parse: %v\n%s", tc.name, err, body)
				continue
			}
			if len(namespaces) != 1 || namespaces[teamA] != n {
				t.Errorf("%s: team-a was served series of the namespaces %v", tc.name, namespaces)
			}
			if want := len(expectedSeries(gpus, []string{teamA})); n != want || fams != len(sample.Families()) {
				t.Errorf("%s: %d series in %d families, want %d in %d", tc.name, n, fams, want, len(sample.Families()))
			}
		}
	})
	t.Logf("run time: %s (control plane up before it)", time.Since(start).Round(100*time.Millisecond))
}

// parseExposition parses body with the parser Prometheus scrapes with, as contentType says, and
// returns its series' count by namespace label ("" for none), its series and its families.
func parseExposition(body, contentType string) (namespaces map[string]int, series, families int, err error) {
	p, err := textparse.New([]byte(body), contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return nil, 0, 0, err
	}
	namespaces = map[string]int{}
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			return namespaces, series, families, nil
		}
		if err != nil {
			return nil, 0, 0, err
		}
		switch entry {
		case textparse.EntryType:
			families++
		case textparse.EntrySeries:
			var ls labels.Labels
			p.Labels(&ls)
			series++
			namespaces[ls.Get("namespace")]++
			if v := ls.Get("exported_namespace"); v != "" {
				namespaces["exported_namespace="+v]++
			}
		}
	}
}

// warmUpReviews is how many SubjectAccessReviews the scrapers' first scrapes need: one for the
// whole endpoint each, and one per namespace of gpus for each caller it denies.
func warmUpReviews(gpus []sample.GPU) int {
	namespaces := map[string]bool{}
	for _, g := range gpus {
		if g.Namespace != "" {
			namespaces[g.Namespace] = true
		}
	}
	n := 0
	for _, s := range scrapers {
		n++
		if !s.whole {
			n += len(namespaces)
		}
	}
	return n
}

// storedSeries lists the DCGM series p holds now, as "family namespace UUID".
func storedSeries(ctx context.Context, p *prometheus) ([]string, error) {
	vec, err := p.vector(ctx, `{__name__=~"DCGM_.+"}`)
	if err != nil {
		return nil, err
	}
	got := make([]string, 0, len(vec))
	for _, s := range vec {
		got = append(got, seriesKey(string(s.Metric[model.MetricNameLabel]), string(s.Metric["namespace"]), string(s.Metric["UUID"])))
	}
	sort.Strings(got)
	return got, nil
}

// expectedSeries lists the series of gpus whose namespace is one of sees, as storedSeries does.
func expectedSeries(gpus []sample.GPU, sees []string) []string {
	want := []string{}
	for _, f := range sample.Families() {
		for _, g := range gpus {
			if slices.Contains(sees, g.Namespace) {
				want = append(want, seriesKey(f, g.Namespace, g.UUID))
			}
		}
	}
	sort.Strings(want)
	return want
}

func seriesKey(family, namespace, uuid string) string {
	return fmt.Sprintf("%s namespace=%q UUID=%s", family, namespace, uuid)
}

// checkMetadata checks that p has each family's # HELP and # TYPE from its target.
func checkMetadata(ctx context.Context, t *testing.T, p *prometheus) {
	t.Helper()
	md, err := p.api.TargetsMetadata(ctx, `{job="`+scrapeJob+`"}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, m := range md {
		if m.Help != "" {
			types[m.Metric] = string(m.Type)
		}
	}
	for _, f := range sample.Families() {
		if types[f] != "gauge" {
			t.Errorf("%s: metadata of %s: %q with help, want a gauge (all: %v)", p.name, f, types[f], types)
		}
	}
}

// createNamespace creates the namespace name, deleted when t ends.
func createNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := cp.Clientset.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Clientset.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// grant gives s's ServiceAccount its RBAC, as docs/tenancy.md shows it, and waits until the
// API server's authorizer allows it (a denial cached by the proxy would outlive the test).
func grant(t *testing.T, s scraper) {
	t.Helper()
	ctx := t.Context()
	rbac := cp.Clientset.RbacV1()
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: s.namespace, Name: s.serviceAccount}
	if s.whole {
		name := "metrics-reader-" + s.name
		_, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = rbac.ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
			_ = rbac.ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
		waitAllowed(t, s, authzv1.SubjectAccessReviewSpec{NonResourceAttributes: &authzv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}})
	}
	for _, ns := range s.reads {
		_, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gpu-metrics-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gpu-metrics-reader-" + s.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "gpu-metrics-reader"},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitAllowed(t, s, authzv1.SubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods"}})
	}
}

// waitAllowed waits until the API server allows spec to s's ServiceAccount.
func waitAllowed(t *testing.T, s scraper, spec authzv1.SubjectAccessReviewSpec) {
	t.Helper()
	spec.User = s.user()
	spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + s.namespace, "system:authenticated"}
	err := framework.Eventually(t.Context(), 15*time.Second, "RBAC to allow "+s.name, func(ctx context.Context) (bool, error) {
		sar, err := cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sars is the API server's count of the SubjectAccessReviews it has answered.
func sars(t *testing.T) int { return requestsTotal(t, "subjectaccessreviews") }

// tokenReviews is the API server's count of the TokenReviews it has answered.
func tokenReviews(t *testing.T) int { return requestsTotal(t, "tokenreviews") }

func requestsTotal(t *testing.T, resource string) int {
	t.Helper()
	n, err := cp.RequestsTotal(t.Context(), resource)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// codeCounts are the proxy's rbac_proxy_requests_total, by status code.
type codeCounts map[int]int

func (c codeCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// proxyCodes reads the proxy's requests by code from its endpoints port.
func proxyCodes(t *testing.T, c *http.Client, p *framework.Proxy) codeCounts {
	t.Helper()
	res, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", p.EndpointsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	counts := codeCounts{}
	if f := fams["rbac_proxy_requests_total"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "code" {
					var code int
					_, _ = fmt.Sscan(l.GetValue(), &code)
					counts[code] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return counts
}

// get GETs url with header and returns the response (its body read and closed) and the body.
func get(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// exchange is what the exporter was asked for and served.
type exchange struct{ accept, contentType string }

// recordingExporter serves the exporter's handler and remembers the last exchange for each
// user the proxy names (--auth-header-fields-enabled).
type recordingExporter struct {
	*httptest.Server
	mu     sync.Mutex
	byUser map[string]*exchange
}

func newRecordingExporter(t *testing.T, h http.Handler) *recordingExporter {
	e := &recordingExporter{byUser: map[string]*exchange{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.byUser[r.Header.Get("X-Remote-User")] = &exchange{accept: r.Header.Get("Accept"), contentType: w.Header().Get("Content-Type")}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *recordingExporter) seen(user string) *exchange {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byUser[user]
}
