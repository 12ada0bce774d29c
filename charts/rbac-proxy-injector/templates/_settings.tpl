{{/* settingArgs: the webhook's flags of its settings that are a chart value (docs/helm.md),
generated from webhook.Config by `go test ./cmd/webhook -update`; serveArgs in _helpers.tpl adds the
others. */}}
{{- define "rbac-proxy-injector.settingArgs" -}}
- {{ print "--proxy-image-pull-policy=" .Values.proxy.image.pullPolicy | quote }}
- {{ print "--proxy-port=" .Values.proxy.port | quote }}
- {{ print "--proxy-endpoints-port=" .Values.proxy.endpointsPort | quote }}
- {{ print "--sidecar-mode=" .Values.proxy.sidecarMode | quote }}
- {{ print "--proxy-cpu-request=" .Values.proxy.resources.requests.cpu | quote }}
- {{ print "--proxy-memory-request=" .Values.proxy.resources.requests.memory | quote }}
- {{ print "--proxy-cpu-limit=" .Values.proxy.resources.limits.cpu | quote }}
- {{ print "--proxy-memory-limit=" .Values.proxy.resources.limits.memory | quote }}
- {{ print "--proxy-verbosity=" .Values.proxy.verbosity | quote }}
- {{ print "--default-token-verification=" .Values.proxy.tokenVerification | quote }}
- {{ print "--cluster-domain=" .Values.clusterDomain | quote }}
{{- range .Values.allowedIssuers }}
- {{ print "--allowed-issuers=" . | quote }}
{{- end }}
{{- range .Values.allowedDNSSuffixes }}
- {{ print "--allowed-dns-suffixes=" . | quote }}
{{- end }}
{{- end -}}
