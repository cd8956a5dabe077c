{{/*
execwatch.name: the chart name, or nameOverride.
*/}}
{{- define "execwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
execwatch.fullname: the name of every resource; the release name alone when it already contains
the chart name, so `helm install execwatch` gives "execwatch", not "execwatch-execwatch".
*/}}
{{- define "execwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
execwatch.chart: chart name and version, for the helm.sh/chart label.
*/}}
{{- define "execwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
execwatch.selectorLabels: the only labels selectors use. They must never change between
upgrades (a DaemonSet's selector is immutable), so nothing versioned goes here.
*/}}
{{- define "execwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "execwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
execwatch.labels: labels on every resource.
*/}}
{{- define "execwatch.labels" -}}
helm.sh/chart: {{ include "execwatch.chart" . }}
{{ include "execwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: execwatch
{{- end }}

{{/*
execwatch.serviceAccountName: the ServiceAccount the agent runs as.
*/}}
{{- define "execwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "execwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
execwatch.image: repository:tag, or repository@digest when a digest is set.
*/}}
{{- define "execwatch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
execwatch.apiTokenDir: where the events API token Secret is mounted. A directory, not a subPath:
the kubelet updates only directory mounts when the Secret changes.
*/}}
{{- define "execwatch.apiTokenDir" -}}
/etc/execwatch/api-token
{{- end }}

{{/*
execwatch.apiTokenFileName: the file, in execwatch.apiTokenDir, that the Secret's key is mounted as.
*/}}
{{- define "execwatch.apiTokenFileName" -}}
token
{{- end }}

{{/*
execwatch.otlpCaDir: where the OTLP receiver's CA certificate (a Secret's or a ConfigMap's key) is
mounted, as the file ca.crt: OTEL_EXPORTER_OTLP_CERTIFICATE names it.
*/}}
{{- define "execwatch.otlpCaDir" -}}
/etc/execwatch/otlp-ca
{{- end }}

{{/*
execwatch.isLoopback: "true" when api.address is written as 127.x.y.z (four decimal parts without
leading zeros), localhost (any case) or [::1], empty otherwise. The agent (isLoopbackHost in
src/http/exposure.ts) counts these as loopback and refuses every name beyond them (127.example.com may
resolve anywhere); it also takes rarer spellings of ::1, for which the chart asks for a token or
api.insecure rather than parse IPv6 here: the chart never lets through what the agent refuses.
*/}}
{{- define "execwatch.isLoopback" -}}
{{- $octet := "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])" -}}
{{- if or (eq (lower .) "localhost") (eq . "[::1]") (regexMatch (printf "^127\\.%s\\.%s\\.%s$" $octet $octet $octet) .) -}}
true
{{- end -}}
{{- end }}

{{/*
execwatch.args: the agent's command line, one "--flag=value" element per setting. The "=" form
keeps values that start with "-" (a --redact regex, say) from being read as flags.
*/}}
{{- define "execwatch.args" -}}
{{- $a := .Values.agent -}}
{{- $api := .Values.api -}}
{{- if not (or (include "execwatch.isLoopback" $api.address) $api.tokenSecret.name $api.insecure) -}}
{{- fail (printf "api.address %s is not 127.x.y.z, localhost or [::1]: set api.tokenSecret.name to require a token, or api.insecure=true to serve argv without one" $api.address) -}}
{{- end -}}
- --metrics-address=0.0.0.0:{{ .Values.metrics.port }}
- --api-address={{ $api.address }}:{{ $api.port }}
{{- if $api.tokenSecret.name }}
- --api-token-file={{ include "execwatch.apiTokenDir" . }}/{{ include "execwatch.apiTokenFileName" . }}
{{- end }}
{{- if $api.insecure }}
- --api-insecure
{{- end }}
{{- with $api.allowedHosts }}
- --api-allowed-hosts={{ join "," . }}
{{- end }}
- --recent-events={{ int64 $a.recentEvents }}
- --ancestors={{ int64 $a.ancestors }}
- --argv-max-bytes={{ int64 $a.argvMaxBytes }}
{{- with $a.ringbufBytes }}
- --ringbuf-bytes={{ . }}
{{- end }}
{{- with $a.includeNamespaces }}
- --include-namespaces={{ join "," . }}
{{- end }}
{{- with $a.excludeNamespaces }}
- --exclude-namespaces={{ join "," . }}
{{- end }}
{{- if $a.excludeHost }}
- --exclude-host
{{- end }}
{{- range $a.excludePods }}
- {{ printf "--exclude-pods=%s" . | quote }}
{{- end }}
{{- with $a.cgroupRate }}
- --cgroup-rate={{ . }}
{{- end }}
{{- if not (kindIs "invalid" $a.cgroupBurst) }}
- --cgroup-burst={{ int64 $a.cgroupBurst }}
{{- end }}
{{- with $a.excludeOrigins }}
- --exclude-origin={{ join "," . }}
{{- end }}
- --metric-labels={{ join "," $a.metricLabels }}
{{- range $a.redact }}
- {{ printf "--redact=%s" . | quote }}
{{- end }}
{{- if and (hasKey $a "defaultRedaction") (not $a.defaultRedaction) }}
- --no-default-redaction
{{- end }}
{{- if $a.logEvents }}
- --log-events
{{- end }}
{{- with $a.runAs }}
- --run-as={{ . }}
{{- end }}
{{- if $a.keepCapabilities }}
- --keep-capabilities
{{- end }}
- --log-level={{ $a.logLevel }}
{{- with $a.podGracePeriod }}
- --pod-grace-period={{ . }}
{{- end }}
{{- if not (kindIs "invalid" $a.maxSeries) }}
- --max-series={{ int64 $a.maxSeries }}
{{- end }}
{{- if not (kindIs "invalid" $a.maxStreams) }}
- --max-streams={{ int64 $a.maxStreams }}
{{- end }}
{{- with $a.enrichWait }}
- --enrich-wait={{ . }}
{{- end }}
{{- with $a.stallTimeout }}
- --stall-timeout={{ . }}
{{- end }}
{{- with $a.kubeUnreadyAfter }}
- --kube-unready-after={{ . }}
{{- end }}
{{- with .Values.otlp.endpoint }}
- --otlp-endpoint={{ . }}
- --otlp-protocol={{ $.Values.otlp.protocol }}
{{- with $.Values.otlp.filter }}
- {{ printf "--otlp-filter=%s" . | quote }}
{{- end }}
{{- end }}
{{- range $a.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
The group of agent.runAs (its GID, or its UID when no GID is given): the pod's fsGroup, so that the
service-account token and the API token Secret stay readable after the agent switches to it.
*/}}
{{- define "execwatch.runAsGroup" -}}
{{- $ids := splitList ":" (toString .Values.agent.runAs) -}}
{{- last $ids -}}
{{- end }}
