package framework

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/rbac-proxy/rbac-proxy/webhook"
)

// NewScheme returns the webhook's scheme (built-in types and cert-manager's)
// plus CRDs, which envtest installs.
func NewScheme() *runtime.Scheme {
	s := webhook.NewScheme()
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}
