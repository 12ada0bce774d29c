package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// ruleStaleProxy: Pods whose proxy runs another image than the injector's now, from before an
// upgrade; the certificate controller no longer serves them (inject.CheckInjectedProxy).
func ruleStaleProxy(a *analysis, x *assessed) {
	var stale []string
	images := map[string]bool{}
	for _, p := range x.pods {
		c := inject.ProxyContainer(p)
		if !runsProxy(p) || c.Image == a.c.Defaults.Image {
			continue
		}
		stale = append(stale, p.Name)
		images[c.Image] = true
	}
	if len(stale) == 0 {
		return
	}
	var old []string
	for img := range images {
		old = append(old, img)
	}
	sort.Strings(old)
	a.find(CodeStaleProxy, x.ref, x, fmt.Sprintf("%s %s the proxy from %s, not the injector's %s", x.podsPhrase(stale), verb(stale, "runs", "run"), strings.Join(old, ", "), a.c.Defaults.Image), x.restartFix(stale))
}
