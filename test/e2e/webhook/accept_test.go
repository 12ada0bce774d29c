package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rbac-proxy/rbac-proxy/test/framework"
	"github.com/rbac-proxy/rbac-proxy/webhook"
	"github.com/rbac-proxy/rbac-proxy/webhook/inject"
)

const testdata = "../../../webhook/testdata"

// Every Pod the golden mutation tests inject, and every manifest the golden inject -f test writes,
// is accepted by the real API server (server-side dry run, so all of its validation and admission
// runs, and nothing is stored).
func TestRenderedPodsAreAccepted(t *testing.T) {
	ctx := t.Context()
	ns := plainNamespace(t, "accept")
	if err := cp.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}); err != nil {
		t.Fatal(err)
	}

	goldens, err := filepath.Glob(filepath.Join(testdata, "mutation", "*.golden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	injected := 0
	for _, path := range goldens {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var golden struct {
			Outcome string          `json:"outcome"`
			Pod     json.RawMessage `json:"pod"`
		}
		if err := yaml.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
		if golden.Outcome != string(webhook.OutcomeInjected) {
			continue
		}
		injected++
		var pod corev1.Pod
		if err := json.Unmarshal(golden.Pod, &pod); err != nil {
			t.Fatal(err)
		}
		pod.Namespace = ns
		if sa := pod.Spec.ServiceAccountName; sa != "" && sa != "web" {
			err := cp.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
		if err := cp.Client.Create(ctx, &pod, client.DryRunAll); err != nil {
			t.Errorf("%s: the API server refuses the injected Pod: %v", filepath.Base(path), err)
		}
	}
	if injected < 40 {
		t.Fatalf("only %d injected golden Pods found", injected)
	}

	for _, file := range []string{"workloads.golden.yaml", "exporters.golden.yaml"} {
		acceptDocuments(t, ns, file, readDocuments(t, filepath.Join(testdata, "inject", file)))
	}
}

func acceptDocuments(t *testing.T, ns, file string, docs [][]byte) {
	ctx := t.Context()
	for i, doc := range docs {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			t.Fatal(err)
		}
		if obj.Object == nil {
			continue
		}
		obj.SetNamespace(ns)
		if err := cp.Client.Create(ctx, obj, client.DryRunAll); err != nil {
			t.Errorf("inject -f %s document %d (%s %s): the API server refuses it: %v", file, i+1, obj.GetKind(), obj.GetName(), err)
		}
	}
}

func readDocuments(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
}

// A Deployment injected offline (inject -f) and applied to a labelled namespace: its Pods are not
// injected twice, and the webhook ensures the Certificate their Secret comes from.
func TestOfflineInjectedDeployment(t *testing.T) {
	ctx := t.Context()
	ns := labelledNamespace(t, "offline")
	manifest, err := yaml.Marshal(deployment(ns, "offline", 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	defaults := inj.server.Handler.Defaults
	var out bytes.Buffer
	if err := (&webhook.Injector{Defaults: defaults}).Inject(bytes.NewReader(manifest), &out); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	d.Kind, d.APIVersion = "", ""
	if err := cp.Client.Create(ctx, &d); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, ns, "offline", 2)
	for i := range pods {
		p := &pods[i]
		n := strings.Count(strings.Join(append(names(p.Spec.InitContainers), names(p.Spec.Containers)...), ","), inject.ContainerName)
		if n != 1 {
			t.Errorf("Pod %s has %d proxies", p.Name, n)
		}
		checkInjected(t, p, "rbac-proxy-deployment-offline")
	}
	var cert cmapi.Certificate
	err = framework.Eventually(ctx, 30*time.Second, "the offline Deployment's Certificate", func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rbac-proxy-deployment-offline"}, &cert)
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.OwnerReferences) != 1 || cert.OwnerReferences[0].UID != d.UID {
		t.Errorf("Certificate owners %+v, want the Deployment %s", cert.OwnerReferences, d.UID)
	}
	waitSecret(t, ns, "rbac-proxy-deployment-offline", "offline."+ns+".svc")
}
