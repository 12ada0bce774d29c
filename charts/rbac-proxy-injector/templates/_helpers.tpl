{{/* The release's base name for every object. */}}
{{- define "rbac-proxy-injector.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rbac-proxy-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rbac-proxy-injector.labels" -}}
{{ include "rbac-proxy-injector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rbac-proxy-injector.serviceAccountName" -}}
{{- default (include "rbac-proxy-injector.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* image renders repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "rbac-proxy-injector.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "rbac-proxy-injector.proxyImage" -}}
{{- $repo := default .Values.image.repository .Values.proxy.image.repository -}}
{{- printf "%s:%s" $repo (default (default .Chart.AppVersion .Values.image.tag) .Values.proxy.image.tag) -}}
{{- end -}}

{{/* defaultIssuer is what the webhook signs Pods' proxy certificates with. */}}
{{- define "rbac-proxy-injector.defaultIssuer" -}}
{{- if .Values.defaultIssuer.name -}}
{{- printf "%s/%s" .Values.defaultIssuer.kind .Values.defaultIssuer.name -}}
{{- else if .Values.selfSignedCA.enabled -}}
{{- printf "ClusterIssuer/%s-ca" (include "rbac-proxy-injector.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* scrapersCANamespace holds the scrapers' CA: its Secret, its Issuers and the Role to read it. */}}
{{- define "rbac-proxy-injector.scrapersCANamespace" -}}
{{- default .Release.Namespace .Values.scrapersCA.namespace -}}
{{- end -}}

{{/* scrapersCASecret is the name of the scrapers' CA Secret; empty when there is none. */}}
{{- define "rbac-proxy-injector.scrapersCASecret" -}}
{{- if and .Values.scrapersCA.enabled .Values.scrapersCA.existingSecret -}}
{{- fail "scrapersCA.existingSecret names your own scrapers' CA: set scrapersCA.enabled=false with it, or leave it empty for the chart's own CA" -}}
{{- else if .Values.scrapersCA.enabled -}}
{{- printf "%s-scrapers-ca" (include "rbac-proxy-injector.fullname" .) -}}
{{- else -}}
{{- .Values.scrapersCA.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* clientCAFile is the webhook's client CA inside its cert dir, beside tls.crt and tls.key. */}}
{{- define "rbac-proxy-injector.clientCAFile" -}}
client-ca.crt
{{- end -}}

{{- define "rbac-proxy-injector.certSecret" -}}
{{- printf "%s-serving-cert" (include "rbac-proxy-injector.fullname" .) -}}
{{- end -}}

{{/* clientConfig: the Service, or webhook.url for a webhook run outside the cluster. */}}
{{- define "rbac-proxy-injector.clientConfig" -}}
{{- if .Values.webhook.url }}
url: {{ .Values.webhook.url }}
{{- else }}
service:
  name: {{ include "rbac-proxy-injector.fullname" . }}
  namespace: {{ .Release.Namespace }}
  path: /mutate-pods
  port: 443
{{- end }}
{{- end }}
{{/* common: what both webhooks of the configuration share. sideEffects None: admission only
mutates the Pod; Certificates and ConfigMaps are made by the injector's controller from stored
objects, so dry-run and replayed requests change nothing. */}}
{{- define "rbac-proxy-injector.common" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
reinvocationPolicy: IfNeeded
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
    scope: Namespaced
{{- end }}

{{/* serveArgs: `rbac-proxy-injector serve` flags from the values (docs/webhook.md lists them):
the settings the chart builds from its own values here, those that are a value by settingArgs. */}}
{{- define "rbac-proxy-injector.serveArgs" -}}
- serve
- --webhook-port={{ .Values.webhook.port }}
- --metrics-bind-address=:{{ .Values.metrics.port }}
- --metrics-secure={{ .Values.metrics.secure }}
- --health-probe-bind-address=:8081
- --log-level={{ .Values.webhook.logLevel }}
- --proxy-image={{ include "rbac-proxy-injector.proxyImage" . }}
- --default-issuer={{ include "rbac-proxy-injector.defaultIssuer" . }}
{{ include "rbac-proxy-injector.settingArgs" . }}
{{- with include "rbac-proxy-injector.scrapersCASecret" . }}
- --scrapers-ca-secret={{ include "rbac-proxy-injector.scrapersCANamespace" $ }}/{{ . }}
{{- end }}
{{- if .Values.webhook.clientAuth.enabled }}
- --webhook-client-ca-name={{ include "rbac-proxy-injector.clientCAFile" . }}
{{- range .Values.webhook.clientAuth.names }}
- {{ printf "--webhook-client-names=%s" . | quote }}
{{- end }}
{{- end }}
{{- end -}}
