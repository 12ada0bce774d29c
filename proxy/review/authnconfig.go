package review

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rbac-proxy/rbac-proxy/proxy/config"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/apis/apiserver/install"
	apiservervalidation "k8s.io/apiserver/pkg/apis/apiserver/validation"
)

// authnConfigCodecs decode an AuthenticationConfiguration strictly (an
// unknown or repeated field is an error) in any version kube-apiserver
// reads, into apiserver's internal type.
var authnConfigCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	install.Install(s)
	return serializer.NewCodecFactory(s, serializer.EnableStrict)
}()

// parseAuthenticationConfig decodes and validates an
// AuthenticationConfiguration with apiserver's own types and validation,
// so that an error names the field (jwt[0].claimMappings.username). Only
// the jwt section is accepted: anonymous is refused because the proxy has
// no anonymous authentication (--ignore-paths serves paths without
// credentials).
func parseAuthenticationConfig(data []byte) (*apiserver.AuthenticationConfiguration, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the file is empty: want an AuthenticationConfiguration (apiVersion apiserver.config.k8s.io/v1)")
	}
	obj, gvk, err := authnConfigCodecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	c, ok := obj.(*apiserver.AuthenticationConfiguration)
	if !ok {
		return nil, fmt.Errorf("kind %s is not an AuthenticationConfiguration (apiVersion apiserver.config.k8s.io/v1)", gvk)
	}
	errs := apiservervalidation.ValidateAuthenticationConfiguration(celCompiler(), c, nil)
	for i, j := range c.JWT {
		for k, aud := range j.Issuer.Audiences {
			if config.IsAPIServerAudience(aud, j.Issuer.URL) {
				errs = append(errs, field.Invalid(field.NewPath("jwt").Index(i).Child("issuer", "audiences").Index(k), aud,
					"a token for the API server's own audience (or its issuer) is an API credential: accept only an audience of the proxy's own"))
			}
		}
	}
	if c.Anonymous != nil {
		errs = append(errs, field.Forbidden(field.NewPath("anonymous"), "rbac-proxy reads only the jwt section: it has no anonymous authentication (--ignore-paths serves paths without credentials)"))
	}
	return c, errs.ToAggregate()
}

// authnConfigFile keeps the JWT authenticators of --authentication-config
// in step with the file, polled as the proxy's certificates are.
type authnConfigFile struct {
	path    string
	tokens  *jwtTokens
	last    []byte
	reloads *prometheus.CounterVec // result
	log     logr.Logger
	// healthTimeout bounds the wait for a new file's issuers to answer
	// discovery before it replaces the old one.
	healthTimeout time.Duration
}

// newAuthnConfigFile loads the file once: a bad file fails the start.
func newAuthnConfigFile(ctx context.Context, path string, reg prometheus.Registerer, log logr.Logger) (*authnConfigFile, error) {
	f := &authnConfigFile{
		path:   path,
		tokens: &jwtTokens{},
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbac_proxy_authentication_config_reloads_total",
			Help: "Reloads of --authentication-config after it changed, by result: success, or error (the file is refused or its issuers do not answer; the last good configuration stays).",
		}, []string{"result"}),
		log:           log,
		healthTimeout: 30 * time.Second,
	}
	reg.MustRegister(f.reloads)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, err := f.build(ctx, data)
	if err != nil {
		return nil, err
	}
	// At start the issuers are discovered in the background, as with
	// --oidc-issuer: a token is refused until its issuer has answered.
	f.tokens.current.Store(set)
	f.last = data
	return f, nil
}

func (f *authnConfigFile) build(ctx context.Context, data []byte) (*jwtSet, error) {
	c, err := parseAuthenticationConfig(data)
	if err != nil {
		return nil, err
	}
	return newJWTSet(ctx, c.JWT, nil)
}

// run re-reads the file every interval until ctx ends.
func (f *authnConfigFile) run(ctx context.Context, interval time.Duration) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := f.refresh(ctx); err != nil {
			f.reloads.WithLabelValues("error").Inc()
			f.log.Error(err, "keeping the last good --authentication-config", "file", f.path)
		}
	}, interval)
}

// refresh installs the file if it changed, is valid and its issuers answer
// within healthTimeout (so that a reload does not refuse, for a moment,
// the tokens of issuers it kept); otherwise the set in use stays. The old
// set keeps fetching keys a minute longer, for requests that still use it.
func (f *authnConfigFile) refresh(ctx context.Context) error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	if bytes.Equal(data, f.last) {
		return nil
	}
	set, err := f.build(ctx, data)
	if err != nil {
		f.last = data // a bad file is reported once, not on every tick
		return err
	}
	var healthErr error
	waitCtx, cancel := context.WithTimeout(ctx, f.healthTimeout)
	defer cancel()
	_ = wait.PollUntilContextCancel(waitCtx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		healthErr = set.health()
		return healthErr == nil, nil
	})
	if healthErr != nil {
		set.cancel() // tried again on the next tick
		return fmt.Errorf("the issuers of the new file did not answer within %v: %w", f.healthTimeout, healthErr)
	}
	f.last = data
	old := f.tokens.current.Swap(set)
	time.AfterFunc(time.Minute, old.cancel)
	f.reloads.WithLabelValues("success").Inc()
	f.log.Info("reloaded --authentication-config", "file", f.path)
	return nil
}
