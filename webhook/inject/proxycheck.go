package inject

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

// checkProxyArgs runs the command line the render gives the proxy through the proxy's own flag
// parsing and validation, and refuses the Pod where the proxy would refuse to start or would read
// a list otherwise than the webhook did. The webhook's own checks come first and explain the
// usual mistakes; this one makes what the webhook admits and what the proxy starts with the same
// thing by construction rather than by a second copy of the proxy's rules. A proxy that exits on
// its flags never lets the Pod run (a native sidecar holds the whole Pod back for ever), and a
// list the proxy reads otherwise enforces a policy nobody wrote.
func checkProxyArgs(p *Policy, ann map[string]string, errs *problems) {
	checkArgs(proxyArgs(p), policyLists(p), ann, errs)
}

// checkArgs is checkProxyArgs on a command line and the lists it must carry.
func checkArgs(args []string, lists []policyList, ann map[string]string, errs *problems) {
	flags := config.NewFlags("rbac-proxy")
	if err := flags.Parse(args); err != nil {
		// pflag says which flag it could not parse; a list flag fails on what CSV refuses.
		var invalid *pflag.InvalidValueError
		if errors.As(err, &invalid) {
			flag := "--" + invalid.GetFlag().Name
			for _, l := range lists {
				if l.Flag == flag {
					addListError(errs, ann, l, nil, invalid.Unwrap())
					return
				}
			}
			addProxyError(errs, ann, lists, flag, err)
			return
		}
		addProxyError(errs, ann, lists, "", err)
		return
	}
	cfg, err := flags.Config()
	if err != nil {
		addProxyError(errs, ann, lists, proxyErrorFlag(err), err)
		return
	}
	got := proxyConfigLists(cfg)
	for _, l := range lists {
		if !slices.Equal(l.Values, got[l.Flag]) {
			addListError(errs, ann, l, got[l.Flag], nil)
		}
	}
	// The render writes no deprecated or ignored flag, so a warning means the proxy would leave
	// out part of what was admitted (a client CA without a TLS listener authenticates nobody):
	// refused like an error, since the proxy would run a different policy than the Pod asks for.
	if w := flags.Warnings(); len(w) > 0 {
		errs.add(AnnotationInject, "true", "the proxy would ignore part of its command line: "+strings.Join(w, "; "), "annotations the proxy applies as written")
	}
}

// proxyConfigLists are the lists of the proxy's validated Config by the flag that sets each:
// what the proxy will enforce, to compare with what the webhook parsed.
func proxyConfigLists(cfg *config.Config) map[string][]string {
	return map[string][]string{
		FlagAuthTokenAudiences: cfg.Authentication.Audiences,
		FlagAllowPaths:         cfg.Paths.Allow,
		FlagIgnorePaths:        cfg.Paths.Ignore,
		FlagAllowedUsers:       cfg.Authorization.Allowed.Users,
		FlagAllowedGroups:      cfg.Authorization.Allowed.Groups,
	}
}

// configFieldFlags are the proxy Config fields its errors name instead of the flag that set
// them: --resource-attributes is parsed first and its values are compiled as templates later,
// when only the attribute is known.
var configFieldFlags = []struct{ prefix, flag string }{
	{"authorization.resourceAttributes.", FlagResourceAttributes},
}

// proxyErrorFlag is the flag a proxy configuration error is about, empty when it names none.
func proxyErrorFlag(err error) string {
	errs := config.FieldErrors(err)
	if len(errs) == 0 {
		return ""
	}
	fe := errs[0]
	for _, f := range configFieldFlags {
		if strings.HasPrefix(fe.Field, f.prefix) {
			return f.flag
		}
	}
	return fe.Field
}

// responsibleAnnotation is the annotation that sets flag, from the Flags lists of Annotations():
// the only one that lists it, else the only one of those the Pod sets.
func responsibleAnnotation(flag string, ann map[string]string) (AnnotationSpec, bool) {
	if flag == "" {
		return AnnotationSpec{}, false
	}
	var all, set []AnnotationSpec
	for _, a := range Annotations() {
		if slices.Contains(a.Flags, flag) {
			all = append(all, a)
			if _, ok := ann[a.Name]; ok {
				set = append(set, a)
			}
		}
	}
	switch {
	case len(all) == 1:
		return all[0], true
	case len(set) == 1:
		return set[0], true
	}
	return AnnotationSpec{}, false
}

// allowedOf is what an annotation allows, as its documentation says it, without the Markdown.
func allowedOf(a AnnotationSpec) string {
	return strings.ReplaceAll(a.Allowed, "`", "")
}

// addProxyError reports the proxy's refusal on the annotation behind flag, or on
// rbac-proxy.io/inject where no one annotation is.
func addProxyError(errs *problems, ann map[string]string, lists []policyList, flag string, err error) {
	problem := "the proxy would refuse to start: " + err.Error()
	a, ok := responsibleAnnotation(flag, ann)
	if !ok {
		errs.add(AnnotationInject, "true", problem, "annotations whose flags the proxy accepts")
		return
	}
	v, set := ann[a.Name]
	if !set {
		// The value came from the webhook's defaults; setting the annotation is the way out.
		errs.addUnset(a.Name, problem, allowedOf(a))
		return
	}
	// A quoted item can parse and still be refused: '""' is one empty group to the proxy.
	if slices.ContainsFunc(lists, func(l policyList) bool { return l.Flag == flag }) {
		problem = quoteHint(v, problem)
	}
	errs.add(a.Name, v, problem, allowedOf(a))
}

// quoteHint puts first, on a list value with a double quote, that quotes are not allowed: pflag
// reads list flags as CSV, where a `"` opens or breaks a quoted field, so it is the usual reason
// the proxy reads a list otherwise than the webhook.
func quoteHint(value, problem string) string {
	if strings.Contains(value, `"`) {
		return "items may not contain a double quote: " + problem
	}
	return problem
}

// addListError reports a list the proxy reads otherwise than the webhook parsed it: got is the
// proxy's list, or parseErr why it could not read the flag at all.
func addListError(errs *problems, ann map[string]string, l policyList, got []string, parseErr error) {
	a, ok := responsibleAnnotation(l.Flag, ann)
	value, set := ann[a.Name]
	if !ok || !set {
		// Every list comes from its one annotation; anything else is the render's bug.
		errs.add(AnnotationInject, "true", fmt.Sprintf("the render writes %s=%q, which no annotation set", l.Flag, strings.Join(l.Values, ",")), "annotations the proxy applies as written")
		return
	}
	problem := fmt.Sprintf("the proxy reads %s as CSV and would get %q, not %q", l.Flag, got, l.Values)
	if parseErr != nil {
		problem = fmt.Sprintf("the proxy reads %s as CSV and refuses it (%v)", l.Flag, parseErr)
	}
	errs.add(a.Name, value, quoteHint(value, problem), allowedOf(a))
}
