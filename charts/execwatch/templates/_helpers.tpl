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
execwatch.isLoopback: "true" when the api.address given is loopback by the agent's own rule
(isLoopbackHost in src/config.ts), empty otherwise. The agent reads "HOST:PORT", an IPv6 host in
brackets, and counts as loopback "localhost" in any case, 127.0.0.0/8 as Node's isIPv4 spells it
(four decimal parts, no leading zeros), and a bracketed address Node's isIPv6 accepts (its regular
expression below, zone included) that is ::1 or IPv4-mapped 127.x in any spelling. Any other
name (127.example.com) may resolve anywhere, so it is beyond loopback.
*/}}
{{- define "execwatch.isLoopback" -}}
{{- $v4seg := "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])" -}}
{{- $v4 := printf "(?:%s\\.){3}%s" $v4seg $v4seg -}}
{{- if regexMatch "^\\[[^\\]]*\\]$" . -}}
{{- $ip := trimSuffix "]" (trimPrefix "[" .) -}}
{{- $g := "(?:[0-9a-fA-F]{1,4})" -}}
{{- $v6 := list
  (printf "(?:%s:){7}(?:%s|:)" $g $g)
  (printf "(?:%s:){6}(?:%s|:%s|:)" $g $v4 $g)
  (printf "(?:%s:){5}(?::%s|(?::%s){1,2}|:)" $g $v4 $g)
  (printf "(?:%s:){4}(?:(?::%s){0,1}:%s|(?::%s){1,3}|:)" $g $g $v4 $g)
  (printf "(?:%s:){3}(?:(?::%s){0,2}:%s|(?::%s){1,4}|:)" $g $g $v4 $g)
  (printf "(?:%s:){2}(?:(?::%s){0,3}:%s|(?::%s){1,5}|:)" $g $g $v4 $g)
  (printf "(?:%s:){1}(?:(?::%s){0,4}:%s|(?::%s){1,6}|:)" $g $g $v4 $g)
  (printf "(?::(?:(?::%s){0,5}:%s|(?::%s){1,7}|:))" $g $v4 $g) -}}
{{- if regexMatch (printf "^(?:%s)(?:%%[0-9a-zA-Z.:-]{1,})?$" (join "|" $v6)) $ip -}}
{{- /* Drop the zone; a trailing dotted quad becomes the two groups it stands for. */ -}}
{{- $ip = lower (regexReplaceAll "%.*$" $ip "") -}}
{{- $quad := regexFind (printf "%s$" $v4) $ip -}}
{{- if $quad -}}
{{- $o := splitList "." $quad -}}
{{- $ip = printf "%s%x:%x" (trimSuffix $quad $ip) (add (mul (atoi (index $o 0)) 256) (atoi (index $o 1))) (add (mul (atoi (index $o 2)) 256) (atoi (index $o 3))) -}}
{{- end -}}
{{- /* The eight groups without leading zeros (0 is ""), "::" expanded, joined by ":". */ -}}
{{- $halves := splitList "::" $ip -}}
{{- $left := list -}}
{{- $right := list -}}
{{- with first $halves }}{{ $left = splitList ":" . }}{{ end -}}
{{- if eq (len $halves) 2 }}{{ with last $halves }}{{ $right = splitList ":" . }}{{ end }}{{ end -}}
{{- $groups := list -}}
{{- range $left }}{{ $groups = append $groups (regexReplaceAll "^0+" . "") }}{{ end -}}
{{- range until (sub 8 (add (len $left) (len $right)) | int) }}{{ $groups = append $groups "" }}{{ end -}}
{{- range $right }}{{ $groups = append $groups (regexReplaceAll "^0+" . "") }}{{ end -}}
{{- if regexMatch "^(?::{7}1|:{5}ffff:7f[0-9a-f]{2}:[0-9a-f]{0,4})$" (join ":" $groups) -}}
true
{{- end -}}
{{- end -}}
{{- else if or (eq (lower .) "localhost") (regexMatch (printf "^127\\.%s\\.%s\\.%s$" $v4seg $v4seg $v4seg) .) -}}
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
{{- fail (printf "api.address %s is beyond loopback: set api.tokenSecret.name to require a token, or api.insecure=true to serve argv without one" $api.address) -}}
{{- end -}}
- --metrics-address=0.0.0.0:{{ .Values.metrics.port }}
- --api-address={{ $api.address }}:{{ $api.port }}
{{- if $api.tokenSecret.name }}
- --api-token-file={{ include "execwatch.apiTokenDir" . }}/{{ include "execwatch.apiTokenFileName" . }}
{{- end }}
{{- if $api.insecure }}
- --api-insecure
{{- end }}
- --recent-events={{ int64 $a.recentEvents }}
- --argv-max-bytes={{ int64 $a.argvMaxBytes }}
{{- with $a.ringbufBytes }}
- --ringbuf-bytes={{ . }}
{{- end }}
- --metric-labels={{ join "," $a.metricLabels }}
{{- range $a.redact }}
- {{ printf "--redact=%s" . | quote }}
{{- end }}
{{- if $a.logEvents }}
- --log-events
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
{{- range $a.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
