package story

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
)

// scrape is step 5: every caller against the proxy it is meant for.
func scrape(ctx context.Context, s *teller, env *Env) ([]Check, error) {
	id, err := makeIdentities(ctx, s, env)
	if err != nil {
		return nil, err
	}
	s.progress("scraping %s through the proxies", metricsPath)
	sar, static := env.SAR, env.Static
	ok200 := "200 + DCGM metrics"
	refused := "refused (401 or TLS handshake)"
	cases := []struct {
		p        *Proxy
		who      string
		token    string
		cert     *tls.Certificate
		expected string
		ok       func(result) bool
	}{
		{sar, "ServiceAccount " + PrometheusSA + " (RBAC get " + metricsPath + ")", id.prometheusToken, nil, ok200, isMetrics},
		{sar, "ServiceAccount " + NoRBACSA + " (no RBAC)", id.noRBACToken, nil, "403", status(403)},
		{sar, "no credentials", "", nil, "401", status(401)},
		{static, "client certificate CN=" + AllowedClient + " from the scrapers' CA", "", id.scraper, ok200, isMetrics},
		{static, "certificate CN=" + AllowedClient + " from the serving CA (any namespace editor can get one)", "", id.servingCA, refused, isRefused},
		{static, "stranger's self-signed certificate CN=" + AllowedClient, "", id.stranger, refused, isRefused},
		{static, "no credentials", "", nil, "401", status(401)},
		{static, "ServiceAccount " + PrometheusSA + " token (not an allowed client)", id.prometheusToken, nil, "403", status(403)},
	}
	var checks []Check
	for _, c := range cases {
		r, _ := c.p.do(ctx, c.p.URL+metricsPath, c.token, c.cert)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		checks = append(checks, Check{Name: c.p.Deployment + ": " + c.who, Expected: c.expected, Got: describe(r), OK: c.ok(r)})
	}
	return checks, nil
}

func isRefused(r result) bool { return r.status == 401 || isTLSRefusal(r.err) }

func status(code int) func(result) bool {
	return func(r result) bool { return r.err == nil && r.status == code }
}

func isMetrics(r result) bool {
	return r.err == nil && r.status == 200 && strings.Contains(r.body, "DCGM_FI_DEV_GPU_UTIL{")
}

// isTLSRefusal reports whether the server ended the handshake (a TLS alert).
func isTLSRefusal(err error) bool {
	var alert tls.AlertError
	var opErr *net.OpError
	return err != nil && (errors.As(err, &alert) || (errors.As(err, &opErr) && strings.Contains(err.Error(), "tls")))
}

// describe says what a caller got, in a few words.
func describe(r result) string {
	switch {
	case r.err != nil && isTLSRefusal(r.err):
		return "TLS handshake refused (" + shorten(r.err.Error(), 60) + ")"
	case r.err != nil:
		return "error: " + shorten(r.err.Error(), 60)
	case r.status == 200:
		n := strings.Count(r.body, "DCGM_FI_DEV_GPU_UTIL{")
		return fmt.Sprintf("200, %d GPUs, %d DCGM samples", n, strings.Count(r.body, "\nDCGM_FI_"))
	default:
		return fmt.Sprintf("%d %s", r.status, shorten(strings.TrimSpace(r.body), 40))
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
