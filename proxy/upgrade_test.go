package proxy

import (
	"errors"
	"net/http"
	"testing"
)

func TestUpgradePolicyCheck(t *testing.T) {
	ws := newUpgradePolicy([]string{"websocket"})
	none := newUpgradePolicy(nil)
	tests := []struct {
		name    string
		p       upgradePolicy
		h       http.Header
		upgrade bool
		err     error
	}{
		{"no upgrade", none, http.Header{"Connection": {"keep-alive"}}, false, nil},
		{"Connection: Upgrade alone", none, http.Header{"Connection": {"Upgrade"}}, false, nil},
		{"empty Upgrade", none, http.Header{"Upgrade": {" , "}}, false, nil},
		{"h2c", ws, http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}}, true, errHTTPUpgrade},
		{"H2C", ws, http.Header{"Upgrade": {"H2C"}}, true, errHTTPUpgrade},
		{"h2c draft", ws, http.Header{"Upgrade": {"h2c-14"}}, true, errHTTPUpgrade},
		{"h2", ws, http.Header{"Upgrade": {"h2"}}, true, errHTTPUpgrade},
		{"HTTP/2.0", ws, http.Header{"Upgrade": {"HTTP/2.0"}}, true, errHTTPUpgrade},
		{"h3", ws, http.Header{"Upgrade": {"h3"}}, true, errHTTPUpgrade},
		{"h2c after an unknown one", none, http.Header{"Upgrade": {"foo, h2c"}}, true, errHTTPUpgrade},
		{"h2c in a second line", ws, http.Header{"Upgrade": {"websocket", "h2c"}}, true, errHTTPUpgrade},
		{"HTTP2-Settings alone", ws, http.Header{"Http2-Settings": {"AAMAAABkAAQCAAAAAAIAAAAA"}}, false, errHTTPUpgrade},
		{"HTTP2_Settings", ws, http.Header{"Http2_settings": {"x"}}, false, errHTTPUpgrade},
		{"websocket not allowed", none, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true, errUpgradeNotAllowed},
		{"websocket allowed", ws, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true, nil},
		{"WebSocket allowed", ws, http.Header{"Upgrade": {"WebSocket"}}, true, nil},
		{"websocket with a version", ws, http.Header{"Upgrade": {"websocket/13"}}, true, nil},
		{"websocket and another", ws, http.Header{"Upgrade": {"websocket, foo"}}, true, errUpgradeNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			upgrade, err := tc.p.check(tc.h)
			if upgrade != tc.upgrade || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("got %v, %v; want %v, %v", upgrade, err, tc.upgrade, tc.err)
			}
		})
	}
}
