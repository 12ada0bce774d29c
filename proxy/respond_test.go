package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A response that http.Transport returns after the exchange's deadline fired
// is a timeout, whatever it says: an empty one (http.NoBody, which no
// boundedBody wraps) would otherwise go out as a whole 200, and a tenant's
// would be filtered as if it were complete.
func TestRespondPastTheDeadlineIsATimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		filter func(*http.Response)
		body   bool
	}{
		{name: "empty body", filter: nil},
		{name: "with a body", filter: nil, body: true},
		{name: "tenant", filter: func(*http.Response) { t.Error("the filter ran on a response past the deadline") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(errUpstreamTimeout)
			ex := &exchange{ctx: ctx, deadline: time.NewTimer(time.Hour), filter: tc.filter}
			defer ex.deadline.Stop()
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, ContentLength: 0}
			if tc.body {
				resp.Body, resp.ContentLength = io.NopCloser(strings.NewReader("up 1\n")), -1
			}
			if err := ex.respond(resp); !errors.Is(err, errUpstreamTimeout) {
				t.Fatalf("respond past the deadline = %v, want %v", err, errUpstreamTimeout)
			}
		})
	}
}
