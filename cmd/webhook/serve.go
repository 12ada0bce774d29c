package main

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/rbac-proxy/rbac-proxy/webhook"
)

func (o *serveOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	return config.GetConfig()
}

// serverOptions maps the flags onto the server's options.
func (o *serveOptions) serverOptions() webhook.ServerOptions {
	return webhook.ServerOptions{
		Host:            o.webhookHost,
		Port:            o.webhookPort,
		Path:            o.webhookPath,
		CertDir:         o.certDir,
		CertName:        o.certName,
		KeyName:         o.keyName,
		ClientCAName:    o.clientCAName,
		ClientNames:     o.clientNames,
		HealthAddr:      o.healthAddr,
		MetricsAddr:     o.metricsAddr,
		MetricsSecure:   o.metricsSecure,
		ShutdownTimeout: o.shutdownTimeout,
		AccessCheckTTL:  o.accessCheckTTL,
	}
}
