package review

import (
	"context"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/rbac-proxy/rbac-proxy/proxy/config"
)

func TestStaticAuthorizer(t *testing.T) {
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"team-a"}}
	bob := &user.DefaultInfo{Name: "bob", Groups: []string{"monitoring"}}
	carol := &user.DefaultInfo{Name: "carol"}
	metrics := func(u user.Info) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: "get", Path: "/metrics"}
	}
	svc := func(u user.Info, verb string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Namespace: "gpu", Resource: "services", Subresource: "proxy", ResourceRequest: true}
	}
	rules := []config.StaticRule{
		{User: config.StaticUser{Name: "alice"}, Verb: "get", Path: "/metrics"},
		{User: config.StaticUser{Groups: []string{"monitoring"}}, Verb: "get", ResourceRequest: true, Namespace: "gpu", Resource: "services"},
	}
	tests := []struct {
		name    string
		allowed config.AllowedSubjects
		rules   []config.StaticRule
		attrs   authorizer.AttributesRecord
		want    authorizer.Decision
	}{
		{"allowed user", config.AllowedSubjects{Users: []string{"carol"}}, nil, metrics(carol), authorizer.DecisionAllow},
		{"allowed user any attributes", config.AllowedSubjects{Users: []string{"carol"}}, nil, svc(carol, "delete"), authorizer.DecisionAllow},
		{"allowed group", config.AllowedSubjects{Groups: []string{"monitoring"}}, nil, metrics(bob), authorizer.DecisionAllow},
		{"user not allowed", config.AllowedSubjects{Users: []string{"carol"}}, nil, metrics(alice), authorizer.DecisionNoOpinion},
		{"group is not a user", config.AllowedSubjects{Users: []string{"monitoring"}}, nil, metrics(bob), authorizer.DecisionNoOpinion},
		{"rule by name and path", config.AllowedSubjects{}, rules, metrics(alice), authorizer.DecisionAllow},
		{"rule path differs", config.AllowedSubjects{}, rules, authorizer.AttributesRecord{User: alice, Verb: "get", Path: "/debug"}, authorizer.DecisionNoOpinion},
		{"rule verb differs", config.AllowedSubjects{}, rules, authorizer.AttributesRecord{User: alice, Verb: "create", Path: "/metrics"}, authorizer.DecisionNoOpinion},
		{"rule by group", config.AllowedSubjects{}, rules, svc(bob, "get"), authorizer.DecisionAllow},
		{"rule group required", config.AllowedSubjects{}, rules, svc(carol, "get"), authorizer.DecisionNoOpinion},
		{"rule resource vs non-resource", config.AllowedSubjects{}, rules, metrics(bob), authorizer.DecisionNoOpinion},
		{"nothing configured", config.AllowedSubjects{}, nil, metrics(alice), authorizer.DecisionNoOpinion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStaticAuthorizer(tc.allowed, tc.rules)
			got, _, err := s.Authorize(context.Background(), tc.attrs)
			if err != nil || got != tc.want {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}
