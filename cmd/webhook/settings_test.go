package main

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// formats are the values.schema.json patterns of the format tag. Each is a first check that
// helm makes before the webhook's own validation: the samples are values both accept (ok) and
// both refuse (bad).
var formats = map[string]struct {
	pattern string
	ok, bad []string
}{
	"quantity": {`^$|^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`,
		[]string{"", "100m", "1Gi", "0.5"}, []string{"lots", "-1Mi", "1 Gi"}},
	"dnsDomain": {`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`,
		[]string{"cluster.local", "corp"}, []string{"", "Cluster_Local", "a..b", "-a.b"}},
	"allowedIssuer": {`^(Issuer/\*|(Issuer|ClusterIssuer|[A-Z][A-Za-z0-9]*\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$`,
		[]string{"Issuer/*", "ClusterIssuer/ca", "Issuer/team-ca", "VaultIssuer.vault.example.com/m"},
		[]string{"ClusterIssuer/*", "nonsense", "Issuer/", "issuer/ca", "Issuer/Team"}},
	"dnsSuffix": {`^\.?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`,
		[]string{"gpu.corp.example", ".metrics.example.org"}, []string{"com", "*.corp.example", "Corp.Example"}},
}

// TestSettingsTags: every field of webhook.Config has each view a setting needs.
func TestSettingsTags(t *testing.T) {
	flags := map[string]bool{}
	for _, s := range settings() {
		if s.key == "" || s.flag == "" || s.help == "" {
			t.Errorf("webhook.Config %v: want json, flag and help tags; have key %q, flag %q, help %q", s.index, s.key, s.flag, s.help)
		}
		if flags[s.flag] {
			t.Errorf("%s: flag --%s is taken by another setting", s.key, s.flag)
		}
		flags[s.flag] = true
		if (s.chart == "") == (s.chartFrom == "") {
			t.Errorf("%s: want a chart or a chartFrom tag, one of them", s.key)
		}
		if _, ok := formats[s.format]; s.format != "" && !ok {
			t.Errorf("%s: format %q has no pattern in formats", s.key, s.format)
		}
		for _, e := range s.enum {
			if !strings.Contains(s.help, e) {
				t.Errorf("%s: the help %q does not name the allowed value %q", s.key, s.help, e)
			}
		}
	}
}

// compileWith compiles the defaults with the setting s set to value (a list gets it as its one
// item); it returns Compile's error. The defaults have no resources, whose requests and limits
// are checked against each other.
func compileWith(s setting, value string) error {
	c := webhook.DefaultConfig("rbac-proxy:test")
	c.Resources = webhook.ResourceConfig{}
	v := s.field(&c)
	switch v.Kind() {
	case reflect.String:
		v.SetString(value)
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{value}))
	default:
		n, err := strconv.Atoi(value)
		if err != nil {
			panic(err)
		}
		v.SetInt(int64(n))
	}
	_, err := c.Compile()
	return err
}

// TestSchemaWithinCompile: what values.schema.json allows of a setting, Compile accepts, and what
// it refuses of the samples, Compile refuses too, naming the setting's key.
func TestSchemaWithinCompile(t *testing.T) {
	refused := func(s setting, value string) {
		t.Helper()
		if err := compileWith(s, value); err == nil || !strings.Contains(err.Error(), s.key) {
			t.Errorf("%s=%q: Compile says %v, want an error naming %s", s.key, value, err, s.key)
		}
	}
	accepted := func(s setting, value string) {
		t.Helper()
		if err := compileWith(s, value); err != nil {
			t.Errorf("%s=%q: the schema allows it, Compile says %v", s.key, value, err)
		}
	}
	for _, s := range settings() {
		for _, e := range s.enum {
			accepted(s, e)
		}
		if s.enum != nil {
			refused(s, "not-"+s.enum[0])
		}
		if s.min != nil {
			accepted(s, strconv.Itoa(*s.min))
			refused(s, strconv.Itoa(*s.min-1))
		}
		if s.max != nil {
			accepted(s, strconv.Itoa(*s.max))
			refused(s, strconv.Itoa(*s.max+1))
		}
		if f, ok := formats[s.format]; ok {
			re := regexp.MustCompile(f.pattern)
			for _, v := range f.ok {
				if !re.MatchString(v) {
					t.Errorf("format %s: the pattern refuses %q", s.format, v)
				}
				// An empty list item means no item to Compile's lists; the pattern alone
				// allows it for the quantities, which are no list.
				if v != "" || s.typ.Kind() != reflect.Slice {
					accepted(s, v)
				}
			}
			for _, v := range f.bad {
				if re.MatchString(v) {
					t.Errorf("format %s: the pattern allows %q", s.format, v)
				}
				refused(s, v)
			}
		}
	}
}

// TestFlagsFromConfig: each setting's flag sets its field, and its default is DefaultConfig's.
func TestFlagsFromConfig(t *testing.T) {
	o := &injectOptions{}
	fs := newInjectFlags(o)
	defaults := webhook.DefaultConfig(defaultProxyImage())
	for _, s := range settings() {
		f := fs.Lookup(s.flag)
		if f == nil {
			t.Fatalf("%s: no flag --%s", s.key, s.flag)
		}
		want := s.field(&defaults).Interface()
		if got := s.field(&o.defaults.config).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("--%s defaults to %v, want DefaultConfig's %v", s.flag, got, want)
		}
	}
	args := []string{"--proxy-port=9000", "--sidecar-mode=container", "--proxy-cpu-limit=1", "--allowed-issuers=Issuer/*,ClusterIssuer/ca", "--proxy-image-pull-policy=Always"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := defaults
	want.ProxyPort, want.SidecarMode, want.Resources.CPULimit = 9000, inject.SidecarContainer, "1"
	want.AllowedIssuers, want.ProxyImagePullPolicy = []string{"Issuer/*", "ClusterIssuer/ca"}, "Always"
	if got := o.defaults.config; !reflect.DeepEqual(got, want) {
		t.Errorf("%v gave\n%+v, want\n%+v", args, got, want)
	}
	if !slices.ContainsFunc(settings(), func(s setting) bool { return s.key == "resources.cpuLimit" }) {
		t.Error("the nested resources keys are not settings")
	}
}
