package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	evanjsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"
)

// testScheme is built once: building a scheme costs more than an admission.
var testScheme = sync.OnceValue(NewScheme)

const testNamespace = "team"

// testConfig is the webhook configuration the tests start from.
func testConfig() Config {
	c := DefaultConfig("rbac-proxy:test")
	c.DefaultIssuer = "ClusterIssuer/rbac-proxy-ca"
	c.ScrapersCASecret = "rbac-proxy/rbac-proxy-scrapers-ca"
	return c
}

// env is a handler over fake clients that records what it writes: admission must write nothing.
type env struct {
	handler *Handler
	cache   client.Client
	// writes are the objects created or updated, in order; SubjectAccessReviews are not writes.
	writes []objectWrite
	// reviews counts the SubjectAccessReviews made.
	reviews int
}

type objectWrite struct {
	Action string        `json:"action"`
	Object client.Object `json:"object"`
}

type envOptions struct {
	config          Config
	namespaceLabels map[string]string
	objects         []client.Object
	// deniedServiceAccounts lack system:auth-delegator.
	deniedServiceAccounts []string
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	defaults, err := o.config.Compile()
	if err != nil {
		t.Fatal(err)
	}
	scheme := testScheme()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace, Labels: o.namespaceLabels}}
	e := &env{}
	e.cache = fake.NewClientBuilder().WithScheme(scheme).WithObjects(append([]client.Object{ns}, o.objects...)...).Build()
	writer := interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).Build(), interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			switch obj := obj.(type) {
			case *authorizationv1.SubjectAccessReview:
				e.reviews++
				obj.Status.Allowed = !slices.Contains(o.deniedServiceAccounts, obj.Spec.User)
				return nil
			}
			e.writes = append(e.writes, objectWrite{"create", obj.DeepCopyObject().(client.Object)})
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			e.writes = append(e.writes, objectWrite{"update", obj.DeepCopyObject().(client.Object)})
			return c.Update(ctx, obj, opts...)
		},
	})
	e.handler = &Handler{
		Defaults: defaults,
		Cache:    e.cache,
		Services: e.cache,
		Owners:   &OwnerResolver{Cache: e.cache},
		Access:   &AccessChecker{Client: writer, TTL: time.Minute},
		Log:      logr.Discard(),
	}
	return e
}

// request builds the AdmissionReview request the API server would send for a Pod.
func request(t testing.TB, pod *corev1.Pod, op admissionv1.Operation, dryRun bool) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "test",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: testNamespace,
		Name:      pod.Name,
		Operation: op,
		DryRun:    &dryRun,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// applyPatch applies the response's patch to the request's Pod, as the API server does.
func applyPatch(t testing.TB, req admission.Request, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patches) == 0 {
		return req.Object.Raw
	}
	raw, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := evanjsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decoding the patch: %v", err)
	}
	out, err := patch.Apply(req.Object.Raw)
	if err != nil {
		t.Fatalf("applying the patch %s: %v", raw, err)
	}
	return out
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// decodeObjects decodes typed objects (by apiVersion and kind) from raw JSON documents.
func decodeObjects(t testing.TB, raws []json.RawMessage) []client.Object {
	t.Helper()
	decoder := serializer.NewCodecFactory(NewScheme()).UniversalDeserializer()
	var objs []client.Object
	for _, raw := range raws {
		obj, _, err := decoder.Decode(raw, nil, nil)
		if err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
		objs = append(objs, obj.(client.Object))
	}
	return objs
}

func toYAML(t testing.TB, v any) []byte {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
