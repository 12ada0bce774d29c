package webhook

import (
	"context"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

// CertificateController makes the side effects of injection from what the API server stored,
// never from an admission request: for each injected Pod, it verifies the Pod's workload
// (WorkloadVerifier), computes the workload's Certificate from the workload's own template
// (DesiredFor), ensures it, and publishes the scrapers' CA in the namespace when the workload
// trusts it. A forged or replayed AdmissionReview therefore changes nothing outside its response.
type CertificateController struct {
	Defaults *inject.Defaults
	// Cache reads injected Pods and Namespaces (metadata).
	Cache        client.Reader
	Workloads    *WorkloadVerifier
	Certificates *CertificateEnsurer
	// ScrapersCA is nil when the webhook has no scrapers' CA.
	ScrapersCA *ScrapersCAPublisher
	// Events, when set, tells the Pod's users why it got no Certificate.
	Events  events.EventRecorder
	Metrics *Metrics
	Log     logr.Logger
}

var _ reconcile.Reconciler = (*CertificateController)(nil)

// Reconcile handles one injected Pod.
func (c *CertificateController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := c.Log.WithValues("namespace", req.Namespace, "pod", req.Name)
	pod := &corev1.Pod{}
	if err := c.Cache.Get(ctx, req.NamespacedName, pod); err != nil {
		// A deleted Pod needs nothing: its Certificate goes with its workload.
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if pod.DeletionTimestamp != nil || !inject.IsInjected(pod) {
		return reconcile.Result{}, nil
	}
	desired, sw, err := c.desired(ctx, pod)
	if err != nil {
		return c.failed(log, pod, err)
	}
	if desired.ScrapersCA {
		if c.ScrapersCA == nil {
			return c.failed(log, pod, refused("the workload trusts the scrapers' CA and the webhook has none"))
		}
		res, err := c.ScrapersCA.Ensure(ctx, pod.Namespace)
		if err != nil {
			return c.failed(log, pod, err)
		}
		if res != CertificateExists {
			log.Info("scrapers' CA ConfigMap "+string(res), "configMap", inject.ScrapersCAConfigMap)
		}
	}
	if desired.Certificate == nil {
		return reconcile.Result{}, nil
	}
	res, err := c.Certificates.Ensure(ctx, desired.Certificate)
	if err != nil {
		return c.failed(log, pod, err)
	}
	c.Metrics.certificate(string(res))
	if res != CertificateExists {
		log.Info("certificate "+string(res), "certificate", desired.Certificate.Name, "workload", sw.Kind+"/"+sw.Name,
			"sincePodCreated", time.Since(pod.CreationTimestamp.Time).Round(time.Millisecond).String())
	}
	return reconcile.Result{}, nil
}

func (c *CertificateController) desired(ctx context.Context, pod *corev1.Pod) (*Desired, *StoredWorkload, error) {
	sw, err := c.Workloads.Verify(ctx, pod)
	if err != nil {
		return nil, nil, err
	}
	labels, err := c.namespaceLabels(ctx, pod.Namespace)
	if err != nil {
		return nil, nil, err
	}
	d, err := DesiredFor(pod, sw, c.Defaults, labels)
	return d, sw, err
}

func (c *CertificateController) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	labels, err := readNamespaceLabels(ctx, c.Cache, c.Workloads.API, name)
	if apierrors.IsNotFound(err) {
		return nil, refused("Namespace %s does not exist", name)
	}
	return labels, err
}

// failed reports err: a refusal is final for this Pod as it is (an Event and a log line, no
// retry); anything else is retried with backoff.
func (c *CertificateController) failed(log logr.Logger, pod *corev1.Pod, err error) (reconcile.Result, error) {
	if !IsRefused(err) {
		c.Metrics.certificate("error")
		return reconcile.Result{}, err
	}
	c.Metrics.certificate("refused")
	log.Info("no certificate for the Pod", "reason", err.Error())
	if c.Events != nil {
		c.Events.Eventf(pod, nil, corev1.EventTypeWarning, "CertificateRefused", "EnsureCertificate", "rbac-proxy-injector: %s", err.Error())
	}
	return reconcile.Result{}, nil
}

// PodsOfCertificate maps a deleted Certificate to the injected Pods that mount its Secret, so a
// Certificate deleted by hand or by the garbage collector (its owner recreated under the same
// name) is made again at once, not at the next resync.
func (c *CertificateController) PodsOfCertificate(ctx context.Context, obj client.Object) []reconcile.Request {
	secret := obj.GetName()
	if cert, ok := obj.(*cmapi.Certificate); ok && cert.Spec.SecretName != "" {
		secret = cert.Spec.SecretName
	}
	var pods corev1.PodList
	if err := c.Cache.List(ctx, &pods, client.InNamespace(obj.GetNamespace())); err != nil {
		c.Log.Error(err, "listing the injected Pods of a deleted Certificate", "namespace", obj.GetNamespace(), "certificate", obj.GetName())
		return nil
	}
	var out []reconcile.Request
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.Name == inject.TLSVolume && v.Secret != nil && v.Secret.SecretName == secret {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
			}
		}
	}
	return out
}
