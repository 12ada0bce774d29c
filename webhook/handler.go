package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// Handler is the admission handler for Pod CREATE: decision → policy → render → patch and
// warnings. It has no side effects: the Certificate is the certificate controller's, from the Pod
// the API server stores, so a forged, replayed or dry-run AdmissionReview changes nothing.
type Handler struct {
	Defaults *inject.Defaults
	// Cache reads Namespaces (as metadata); API, when set, is asked on a cache miss only.
	Cache client.Reader
	API   client.Reader
	// Owners finds the workload of a Pod, which names its Certificate and Secret.
	Owners *OwnerResolver
	// Services, when set, lists the namespace's Services (from the cache) for the rename-mode
	// warnings; nil when the webhook may not watch them.
	Services client.Reader
	// Access, when set, checks the Pod's ServiceAccount for system:auth-delegator rights.
	Access *AccessChecker
	// Metrics may be nil.
	Metrics *Metrics
	Log     logr.Logger
}

var _ admission.Handler = (*Handler)(nil)

// Handle answers one AdmissionReview.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, outcome := h.admit(ctx, req)
	h.Metrics.observe(outcome, time.Since(start))
	log := h.Log.WithValues("uid", req.UID, "namespace", req.Namespace, "name", req.Name, "outcome", outcome)
	switch outcome {
	case OutcomeError:
		log.Error(errors.New(resp.Result.Message), "admission failed")
	case OutcomeDenied:
		log.Info("pod denied", "reason", resp.Result.Message)
	case OutcomeInjected:
		log.Info("proxy injected", "warnings", len(resp.Warnings))
	default:
		log.V(1).Info("pod admitted unchanged")
	}
	return resp
}

func (h *Handler) admit(ctx context.Context, req admission.Request) (admission.Response, Outcome) {
	if req.Operation != admissionv1.Create || req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return admission.Allowed("rbac-proxy: only Pod CREATE is handled"), OutcomeSkipped
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the Pod: %w", err)), OutcomeError
	}
	namespace := req.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}

	nsLabels, err := h.namespaceLabels(ctx, namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), OutcomeError
	}
	decision, err := Decide(pod, nsLabels)
	if err != nil {
		return admission.Denied(err.Error()), OutcomeDenied
	}
	switch decision.Verdict {
	case VerdictSkip:
		return admission.Allowed("rbac-proxy: " + decision.Reason), OutcomeSkipped
	case VerdictInjected:
		return admission.Allowed("rbac-proxy: " + decision.Reason), OutcomeAlreadyInjected
	}

	workload, err := h.Owners.Resolve(ctx, pod, namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), OutcomeError
	}
	policy, err := PolicyFor(pod, inject.PolicyInput{Defaults: h.Defaults, Namespace: namespace, Workload: workload, NamespaceLabels: nsLabels})
	if err != nil {
		return admission.Denied(err.Error()), OutcomeDenied
	}
	// The Pod was decoded for this request alone, and what follows reads only its labels and
	// ServiceAccount, which the render leaves alone: inject into it instead of into a copy.
	before := recordBefore(pod)
	inject.Render(pod, policy)

	warnings := h.accessWarnings(ctx, pod, namespace, policy)
	if policy.Mode == inject.PortModeRename {
		warnings = append(warnings, h.serviceWarnings(ctx, pod, namespace, policy)...)
		warnings = append(warnings, fmt.Sprintf("rbac-proxy: the app still listens on port %d on the Pod's address; bind it to 127.0.0.1 or restrict it with a NetworkPolicy, or clients can bypass the proxy (%s=takeover moves it when a preset or %s says how)", policy.Target.Number, inject.AnnotationPortMode, inject.AnnotationUpstreamListen))
	}

	patchType := admissionv1.PatchTypeJSONPatch
	resp := admission.Response{
		Patches:           before.patch(pod),
		AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType},
	}
	return resp.WithWarnings(warnings...), OutcomeInjected
}

// accessWarnings tells the user when the Pod's ServiceAccount cannot make the reviews the proxy
// needs. A failed check is logged, not reported.
func (h *Handler) accessWarnings(ctx context.Context, pod *corev1.Pod, namespace string, p *inject.Policy) []string {
	if h.Access == nil {
		return nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	missing, err := h.Access.Missing(ctx, namespace, sa, p.MakesSARs())
	if err != nil {
		h.Log.Error(err, "checking the ServiceAccount's access", "namespace", namespace, "serviceAccount", sa)
		return nil
	}
	if len(missing) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("rbac-proxy: ServiceAccount %s/%s cannot create %s, so the proxy will refuse requests; bind it to the ClusterRole system:auth-delegator", namespace, sa, strings.Join(missing, ", "))}
}

// serviceWarnings names every Service of the namespace (from the cache) that selects the Pod
// and targets the protected port by number: in rename mode it reaches the app, not the proxy.
// A failed read is logged, not reported.
func (h *Handler) serviceWarnings(ctx context.Context, pod *corev1.Pod, namespace string, p *inject.Policy) []string {
	if h.Services == nil {
		return nil
	}
	var list corev1.ServiceList
	if err := h.Services.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		h.Log.Error(err, "listing Services", "namespace", namespace)
		return nil
	}
	var out []string
	for i := range list.Items {
		svc := &list.Items[i]
		if _, ok := AppPortByNumber(svc, pod.Labels, p); !ok {
			continue
		}
		fix := "target the port name " + p.Target.ProxyPortName
		if p.Target.Name == "" {
			fix = fmt.Sprintf("target port %d", p.ProxyPort)
		}
		out = append(out, fmt.Sprintf("rbac-proxy: Service %s targets port %d by number and reaches the app, bypassing the proxy; %s, or set %s=takeover", svc.Name, p.Target.Number, fix, inject.AnnotationPortMode))
	}
	return out
}

// AppPortByNumber returns the index of the first port of svc that reaches the protected port by
// number on Pods labelled podLabels, which in rename mode is the app's, past the proxy; ok is
// false when it has none.
func AppPortByNumber(svc *corev1.Service, podLabels map[string]string, p *inject.Policy) (index int, ok bool) {
	sel := svc.Spec.Selector
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(podLabels)) {
		return 0, false
	}
	for i, sp := range svc.Spec.Ports {
		tp := sp.TargetPort
		byNumber := tp.Type == intstr.Int && tp.IntVal == p.Target.Number ||
			tp.Type == intstr.Int && tp.IntVal == 0 && sp.Port == p.Target.Number
		if byNumber && (sp.Protocol == "" || sp.Protocol == corev1.ProtocolTCP) {
			return i, true
		}
	}
	return 0, false
}

// namespaceLabels reads the Namespace's labels from the cache, asking the API server only when
// the cache has not seen the Namespace yet.
func (h *Handler) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	return readNamespaceLabels(ctx, h.Cache, h.API, name)
}

// readNamespaceLabels reads a Namespace's labels (as metadata) from cache, and from api (when
// set) if the cache has not seen the Namespace yet: one made a moment ago. A NotFound error
// stays one.
func readNamespaceLabels(ctx context.Context, cache, api client.Reader, name string) (map[string]string, error) {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	err := cache.Get(ctx, types.NamespacedName{Name: name}, ns)
	if apierrors.IsNotFound(err) && api != nil {
		err = api.Get(ctx, types.NamespacedName{Name: name}, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}
