package controlplane

import (
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A ServiceAccount token passes a TokenReview, and a SubjectAccessReview for
// it answers by real RBAC: denied before a binding, allowed after.
func TestTokenReviewAndSubjectAccessReview(t *testing.T) {
	ctx := t.Context()
	ns, err := cp.CreateNamespace(ctx, "auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := cp.ServiceAccountToken(ctx, ns, "prometheus", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the TokenReview: %v", err)
	}
	wantUser := "system:serviceaccount:" + ns + ":prometheus"
	if !tr.Status.Authenticated || tr.Status.User.Username != wantUser {
		t.Fatalf("TokenReview: authenticated=%v user=%q error=%q, want %q", tr.Status.Authenticated, tr.Status.User.Username, tr.Status.Error, wantUser)
	}
	bad, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token + "x"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the TokenReview of a forged token: %v", err)
	}
	if bad.Status.Authenticated {
		t.Fatal("a forged token was authenticated")
	}

	sar := func() bool {
		t.Helper()
		r, err := cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User: tr.Status.User.Username, Groups: tr.Status.User.Groups,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating the SubjectAccessReview: %v", err)
		}
		return r.Status.Allowed
	}
	if sar() {
		t.Fatal("GET /metrics allowed before any RBAC binding")
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	if _, err := cp.Clientset.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
	}
	if _, err := cp.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The RBAC authorizer reads bindings through an informer: allow a moment.
	deadline := 50
	for !sar() {
		if deadline--; deadline == 0 {
			t.Fatal("GET /metrics still denied 10s after binding the ClusterRole")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
