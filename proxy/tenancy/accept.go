package tenancy

import (
	"strconv"
	"strings"

	"github.com/munnerz/goautoneg"
)

// The media types a tenant's scrape is asked for upstream.
const (
	acceptText        = "text/plain;version=0.0.4"
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0"
)

// UpstreamAccept is the Accept header sent upstream for a tenant: the caller's preference between text
// 0.0.4 and OpenMetrics 1.0.0 (q-values honoured), never protobuf; text when the caller states none.
//
// Only clauses that name a format exactly count (text/plain, or application/openmetrics-text of
// version 0.0.1 or 1.0.0 or none); wildcards state no preference, and a tie goes to text. When
// OpenMetrics wins, text follows it at a lower q-value, so that an exporter without OpenMetrics
// still answers in a format the filter reads.
func UpstreamAccept(callerAccept string) string {
	var text, om float64
	for _, c := range goautoneg.ParseAccept(callerAccept) {
		switch {
		case strings.EqualFold(c.Type, "text") && strings.EqualFold(c.SubType, "plain"):
			text = max(text, c.Q)
		case strings.EqualFold(c.Type, "application") && strings.EqualFold(c.SubType, "openmetrics-text"):
			switch version(c.Params) {
			case "", "0.0.1", "1.0.0":
				om = max(om, c.Q)
			}
		}
	}
	if om > text {
		return acceptOpenMetrics + "," + acceptText + ";q=0.5"
	}
	return acceptText
}

// version is a media range's version parameter; goautoneg keeps parameter
// names as sent, and media type parameters are case-insensitive.
func version(params map[string]string) string {
	for k, v := range params {
		if strings.EqualFold(k, "version") {
			return v
		}
	}
	return ""
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: gzip
// (or x-gzip) with a q-value above 0, or * above 0 when gzip is not named.
func acceptsGzip(acceptEncoding string) bool {
	gzip, star := -1.0, -1.0
	for _, part := range strings.Split(acceptEncoding, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					f = 0 // an unreadable q-value allows nothing
				}
				q = f
			}
		}
		switch c := strings.ToLower(strings.TrimSpace(coding)); c {
		case "gzip", "x-gzip":
			gzip = max(gzip, q)
		case "*":
			star = max(star, q)
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}
